//! Nashra's integration tests: the real HTTP surface on port 0, a fresh SQLite file per test
//! and a real SMTP server in the process. `TEST_LOG=1` shows the app's logs.

mod helpers;
mod smtp;

mod admin;
mod articles;
mod browser;
mod cli;
mod crash;
mod delivery;
mod digest;
mod http;
mod reading;
mod resilience;
mod story;
mod subscribe;
