//! Nashra (نشرة): an email newsletter publisher for Arabic news sites.
//!
//! Readers subscribe under an article (double opt-in), new articles arrive from feeds or the
//! API, and on a schedule Nashra renders what is new into one right-to-left Arabic digest and
//! delivers it through a per-recipient ledger that never skips and never doubles.

pub mod app;
pub mod auth;
/// The delivery benchmark: built only when asked for (`--features bench`), not shipped.
#[cfg(feature = "bench")]
pub mod bench;
pub mod bounces;
pub mod cli;
pub mod config;
pub mod csv_io;
pub mod delivery;
pub mod dkim;
pub mod dns;
pub mod domain;
pub mod feeds;
pub mod metrics;
pub mod render;
pub mod schedule;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod web;

/// Logs to stderr; `RUST_LOG` sets the level (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
