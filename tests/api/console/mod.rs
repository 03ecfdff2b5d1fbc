//! The console over HTTP, as a browser (or an attacker's page) talks to it, one file per story:
//! signing in and the session, the second factor, roles and API tokens with the audit log,
//! the defences (cross-site requests, headers, strict reading), the readers, the sends, and
//! «عاجل» with a local-hour send's waves.
//! The browser tests (`console_browser`) drive the same pages in Chromium; the session
//! helpers they share live in `helpers::console`.

mod alerts;
mod later;
mod readers;
mod roles;
mod second_factor;
mod security;
mod sends;
mod sign_in;
