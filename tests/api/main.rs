//! Nashra's integration tests: the real HTTP surface on port 0, a fresh database per test and
//! a real SMTP server in the process. `TEST_LOG=1` shows the app's logs.
//!
//! Most tests are written once with `both_engines!` and run twice: `…::sqlite` always, and
//! `…::postgres` when `NASHRA_TEST_POSTGRES_URL` names a PostgreSQL server (without it they
//! are listed as ignored, with that reason). A few are about one engine and name it
//! (`Engine::Sqlite`, `Engine::Postgres`); no helper picks an engine by itself.

/// Runs `$body`, a closure `|engine| async move { … }`, as two tests in a module named
/// `$name`: on SQLite, and on PostgreSQL (ignored, with the reason, when
/// `NASHRA_TEST_POSTGRES_URL` is not set). The body passes `engine` to whatever spawns an app.
macro_rules! both_engines {
    ($name:ident, $body:expr) => {
        both_engines!(@[tokio::test] $name, $body);
    };
    (multi_thread, $name:ident, $body:expr) => {
        both_engines!(@[tokio::test(flavor = "multi_thread", worker_threads = 2)] $name, $body);
    };
    (@[$($attr:tt)*] $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[$($attr)*]
            async fn sqlite() {
                ($body)(crate::helpers::Engine::Sqlite).await
            }

            #[$($attr)*]
            #[cfg_attr(
                not(pg_tests),
                ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to run on"
            )]
            async fn postgres() {
                ($body)(crate::helpers::Engine::Postgres).await
            }
        }
    };
}

mod helpers;

mod admin;
mod articles;
mod browser;
mod choice;
mod cli;
mod clock;
mod console;
mod console_browser;
mod crash;
mod deliverability;
mod delivery;
mod desk;
mod digest;
mod dmarc;
mod doctor_dns;
mod guard;
mod http;
mod later;
mod local_hour;
mod nul;
mod processes;
mod reader_zone;
mod reading;
mod relays;
mod report;
mod resilience;
mod schema;
mod story;
mod subject_test;
mod subscribe;
mod warmup;
mod webhooks;
mod welcome;
