//! Configuration: `config/default.toml` (embedded, so the binary runs from anywhere), an
//! optional `--config FILE` layered over it, and `NASHRA__SECTION__KEY` variables over both.
//!
//! Everything is checked once at start-up, and parsed into domain types (a schedule's crontab
//! in its time zone, the sending window, the subject template); a bad value stops the process
//! with a message that names the key, so an operator never discovers a typo at 07:00 when the
//! digest should go out. An unknown key stops it too (`unknown`): a misspelt setting left
//! at its default looks live when it is not. This module depends on `domain` only.
//!
//! One file per section, each with its struct and its own check; `settings` holds the whole
//! and the checks that span sections, `load` the layering. Defaults live in one place,
//! `config/default.toml`, which every configuration starts from; only an array's entries
//! (`[[feeds]]`, `[[schedules]]`, `[[sections]]`), which a file replaces whole, keep their
//! optional keys' defaults in code, documented in the TOML beside them. Secrets are
//! `secrecy::SecretString`: printing the settings never shows them.

mod alerts;
mod bounces;
mod database;
mod delivery;
mod dkim;
mod dns;
mod feeds;
mod guard;
mod load;
mod newsletter;
mod providers;
mod relays;
mod schedules;
mod sections;
mod security;
mod server;
mod settings;
mod smtp;
mod unknown;
mod webhooks;

pub use alerts::{Alerts, Approval, MAX_PER_DAY as MAX_ALERTS_PER_DAY, parse_quiet};
pub use bounces::Bounces;
pub use database::{Database, redact_url};
pub use delivery::{Delivery, Transport, Warmup};
pub use dkim::DkimKeyConfig;
pub use dns::Dns;
pub use feeds::Feed;
pub use guard::Guard;
pub use load::DEFAULT_TOML;
pub use newsletter::{Calendar, Digits, Newsletter};
pub use providers::Providers;
pub use relays::{Relay, Role};
pub use schedules::{Deliver, Schedule};
pub use sections::Section;
pub use security::Security;
pub use server::Server;
pub use settings::Settings;
pub use smtp::{Smtp, Tls};
pub use webhooks::Webhooks;
