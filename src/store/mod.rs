//! All SQL lives here: one `Store` over two engines, SQLite (the zero-setup default, one
//! file) and PostgreSQL (shared by any number of processes).
//!
//! Shape. `Store` is an enum over the two engines (`sqlite::Db`, `postgres::Db`), and each
//! of its methods forwards to the engine's own (the [`facade!`] below). Enum dispatch rather
//! than a trait object: the set of engines is closed, async methods in a `dyn` trait would
//! need boxed futures on the hot path, and a generic store would spread sqlx's per-database
//! trait bounds through every caller. The SQL itself is written once: each aggregate's file
//! (`subscribers`, `articles`, `schedules`, `digests`, `ledger`, `mailq`, `upgrades`) puts its
//! methods inside [`for_each_engine!`], which compiles the same code once against
//! `sqlite::Db` and once against `postgres::Db`. The SQL is the dialect both accept (`$N`
//! parameters, `CAST(… AS BIGINT)`, `ON CONFLICT`, `RETURNING`, CTEs); what differs stays
//! in the engine's file: connecting and migrating, transactions and locks (SQLite's
//! `BEGIN IMMEDIATE` serialises writers; PostgreSQL takes advisory transaction locks where a
//! read decides a write), claims (`FOR UPDATE SKIP LOCKED`), bulk import (`COPY`), and a few
//! fragments ([`engine_sql!`]).
//!
//! Queries are checked at run time (`query_as` + `FromRow`), so the crate builds without a
//! database and one test suite drives both engines. States are Rust enums (`models`) stored as
//! their lower-case names; numbers are BIGINT on PostgreSQL and decode as `i64` on both.

use std::time::Duration;

use crate::domain::{SubscriberEmail, SubscriberName};

mod models;
pub use models::*;

/// Compiles the items given once for each engine, in a module of its own where `Db`, `DB`
/// (the sqlx database), `Conn`, `Tx` and `engine_sql!` are that engine's.
macro_rules! for_each_engine {
    ($($body:tt)*) => {
        mod on_sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::store::sqlite::{Conn, DB, Db, Tx, engine_sql};
            $($body)*
        }
        mod on_postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::store::postgres::{Conn, DB, Db, Tx, engine_sql};
            $($body)*
        }
    };
}

mod postgres;
mod sqlite;

mod articles;
mod digests;
mod ledger;
mod mailq;
mod schedules;
mod subscribers;
mod upgrades;

/// One inbox gets another confirmation email at most this often…
pub const CONFIRM_RESEND_MS: i64 = 10 * 60 * 1000;
/// …and at most this many a day, however many addresses and clients ask for it.
pub const CONFIRMS_PER_DAY: i64 = 3;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Milliseconds since the Unix epoch: the one time unit in the store.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

impl Store {
    /// Opens (creating if needed) the database `url` names and applies its migrations:
    /// `sqlite://PATH` or `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(postgres::Db::connect(url).await?))
        } else {
            Ok(Store::Sqlite(sqlite::Db::connect(url).await?))
        }
    }

    /// Which engine, for logs and the benchmark.
    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// `Store`'s methods, each forwarded to the engine's method of the same name.
macro_rules! facade {
    ($( $(#[$m:meta])* pub async fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(db) => db.$name($($arg),*).await,
                        Store::Postgres(db) => db.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

facade! {
    // ------------------------------------------------------------ health, upgrades
    /// Whether the store takes writes that last (see each engine's `health`).
    pub async fn health(&self) -> anyhow::Result<()>;
    /// One-time rewrites of what earlier versions stored (see `upgrades`).
    pub async fn upgrade_data(&self, canonical_url: fn(&str) -> String) -> anyhow::Result<()>;

    // ------------------------------------------------------------ subscribers
    /// Records a sign-up and queues its confirmation unless that inbox had one recently.
    pub async fn subscribe(&self, email: &SubscriberEmail, name: &SubscriberName, source: &str, now: i64) -> anyhow::Result<bool>;
    pub async fn confirm(&self, id: i64, issued: i64, now: i64) -> anyhow::Result<ConfirmOutcome>;
    pub async fn confirm_state(&self, id: i64, issued: i64) -> anyhow::Result<ConfirmOutcome>;
    /// Unsubscribes and takes the reader out of every send's queue.
    pub async fn unsubscribe(&self, id: i64, now: i64) -> anyhow::Result<bool>;
    pub async fn import(&self, rows: &[(SubscriberEmail, SubscriberName)], confirmed: bool, source: &str) -> anyhow::Result<(u64, u64)>;
    pub async fn subscribers_after(&self, after_id: i64, limit: i64) -> anyhow::Result<Vec<SubscriberRow>>;
    pub async fn list_subscribers(&self, status: Option<SubscriberStatus>, q: Option<&str>, page: i64, per_page: i64) -> anyhow::Result<(Vec<SubscriberRow>, i64)>;
    pub async fn count_subscribers(&self, status: SubscriberStatus) -> anyhow::Result<i64>;
    /// GDPR erasure; returns the erased subscriber's id.
    pub async fn erase_subscriber(&self, email: &SubscriberEmail) -> anyhow::Result<Option<i64>>;
    /// How many of the reader's deliveries are claimed by a live worker right now.
    pub async fn deliveries_in_flight_to(&self, subscriber: i64, now: i64) -> anyhow::Result<i64>;
    /// Of `ids`, the subscribers who are still confirmed.
    pub async fn still_confirmed(&self, ids: &[i64]) -> anyhow::Result<Vec<i64>>;

    // ------------------------------------------------------------ mail queue
    pub async fn claim_mail(&self, limit: i64, lease: Duration, now: i64) -> anyhow::Result<Vec<QueuedMail>>;
    pub async fn record_mail(&self, m: &QueuedMail, outcome: MailOutcome<'_>) -> anyhow::Result<()>;
    pub async fn purge_mail(&self, before: i64) -> anyhow::Result<u64>;
    pub async fn next_mail_due(&self) -> anyhow::Result<Option<i64>>;

    // ------------------------------------------------------------ articles
    pub async fn upsert_article(&self, a: &NewArticle) -> anyhow::Result<(i64, bool)>;
    /// The articles the next digest of `schedule` would carry, newest first.
    pub async fn new_articles(&self, schedule: &str, first_since: i64, max: u32) -> anyhow::Result<Vec<Article>>;
    pub async fn article_count(&self) -> anyhow::Result<i64>;

    // ------------------------------------------------------------ schedules, feeds, pacing
    pub async fn schedule_last_slot(&self, name: &str) -> anyhow::Result<Option<i64>>;
    pub async fn mark_slot(&self, name: &str, slot: i64) -> anyhow::Result<()>;
    pub async fn reset_schedule(&self, name: &str) -> anyhow::Result<()>;
    /// Takes this process's turn to poll `url` if it is due (one process per turn).
    pub async fn take_feed_turn(&self, url: &str, every: Duration, now: i64) -> anyhow::Result<bool>;
    /// Reserves `n` send times, `interval_us` apart, from the deployment-wide pacing row;
    /// returns the first (µs since the epoch).
    pub async fn reserve_sends(&self, n: i64, interval_us: f64, now_us: i64) -> anyhow::Result<i64>;

    // ------------------------------------------------------------ digests
    /// Stores a digest rendered from `articles` and its whole audience, in one transaction.
    pub async fn create_digest(&self, req: DigestRequest<'_>, articles: &[i64], rendered: Option<&RenderedDigest>) -> anyhow::Result<DigestOutcome>;
    pub async fn digest_status(&self, id: i64) -> anyhow::Result<Option<DigestStatus>>;
    pub async fn digest(&self, id: i64) -> anyhow::Result<Option<Digest>>;
    pub async fn archive(&self, limit: i64) -> anyhow::Result<Vec<ArchiveEntry>>;
    pub async fn progress(&self, id: i64) -> anyhow::Result<Option<Progress>>;
    pub async fn set_digest_status(&self, id: i64, to: DigestStatus) -> anyhow::Result<bool>;
    pub async fn fail_digest(&self, id: i64, error: &str) -> anyhow::Result<()>;
    pub async fn retry_failed(&self, id: i64) -> anyhow::Result<u64>;
    pub async fn failures(&self, id: i64, limit: i64) -> anyhow::Result<Vec<Failure>>;

    // ------------------------------------------------------------ the ledger
    /// Claims due deliveries with a lease.
    pub async fn claim(&self, limit: i64, lease: Duration, now: i64) -> anyhow::Result<Vec<Claimed>>;
    /// Writes a batch of outcomes in one transaction.
    pub async fn record(&self, outcomes: &[Outcome]) -> anyhow::Result<()>;
    pub async fn finish_digests(&self, bounce_after: u32) -> anyhow::Result<Vec<i64>>;
    pub async fn next_due(&self) -> anyhow::Result<Option<i64>>;
    pub async fn queue_depth(&self) -> anyhow::Result<i64>;
}

/// Per-digest counter changes gathered from `RETURNING digest_id` rows.
#[derive(Default)]
pub(crate) struct CounterDelta(std::collections::BTreeMap<i64, i64>);

impl CounterDelta {
    pub(crate) fn add(&mut self, digest: i64, n: i64) {
        *self.0.entry(digest).or_default() += n;
    }

    pub(crate) fn extend(&mut self, digests: impl IntoIterator<Item = i64>, n: i64) {
        for d in digests {
            self.add(d, n);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.0
            .iter()
            .map(|(d, n)| (*d, *n))
            .filter(|(_, n)| *n != 0)
    }
}
