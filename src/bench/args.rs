//! `nashra bench`'s arguments: how big a send, how many sessions, which database, and which
//! measurement (the wire rate, scale-out, sections, DKIM, a breaking-news alert, local-hour
//! delivery).

use std::time::Duration;

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// How many subscribers receive the digest.
    #[arg(long, default_value_t = 100_000)]
    pub subscribers: usize,
    /// SMTP sessions in flight (delivery.concurrency; also smtp-source's -s).
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Messages smtp-source sends for the reference rate (default: min(N, 50000)).
    #[arg(long)]
    pub reference_messages: Option<usize>,
    /// Keep the benchmark's database and print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Run on a fresh database on this PostgreSQL server (`postgres://…`) instead of a
    /// temporary SQLite file.
    #[arg(long)]
    pub database: Option<String>,
    /// Scale-out: measure one worker process, then this many, against a sink that answers
    /// each message after `--relay-delay`.
    #[arg(long)]
    pub workers: Option<usize>,
    /// How long the scale-out sink takes to answer each message.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub relay_delay: Duration,
    /// Import the readers and time the reads (search, console), without sending.
    #[arg(long)]
    pub reads_only: bool,
    /// Sign every message with a fresh RSA-2048 DKIM key (and an Ed25519 one beside it with
    /// `--dkim-ed25519`), and time one signature alone for comparison.
    #[arg(long)]
    pub dkim: bool,
    #[arg(long, requires = "dkim")]
    pub dkim_ed25519: bool,
    /// After the usual send, a second digest with this many sections, each reader choosing
    /// one, ten new articles in each: CPU per message against the first (one edition).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=12))]
    pub sections: Option<u32>,
    /// Breaking news: N readers who take alerts (quiet hours off, approval auto) and one
    /// urgent article pushed; the time from the push to the first message the relay (the
    /// bench's own sink) accepts, to the last, and the rate.
    #[arg(long, conflicts_with_all = ["workers", "reads_only", "sections", "local"])]
    pub alert: bool,
    /// Local-hour delivery: the same readers, spread over seven time zones, sent one digest at
    /// once and one with `deliver = "local"` whose zones' hour has passed (every row due at
    /// once), each twice; the sender's CPU per message of each and their ratio.
    #[arg(long, conflicts_with_all = ["workers", "reads_only", "sections"])]
    pub local: bool,
}
