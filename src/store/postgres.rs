//! The PostgreSQL engine: one database shared by any number of processes.
//!
//! Reads that decide a write take an advisory transaction lock on what they decide about
//! (one sign-up's inbox, one schedule's digest, the article table), claims skip rows another
//! worker has locked (`FOR UPDATE SKIP LOCKED`), and imports go through `COPY`. The
//! database, never timing, decides who sends what.

use std::time::Duration;

use anyhow::Context;
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::NewReader;
use super::clock::now_ms;

pub type DB = sqlx::Postgres;
pub type Conn = sqlx::PgConnection;
pub type Tx = sqlx::Transaction<'static, DB>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL that differs between the engines, as literals for `concat!`.
macro_rules! engine_sql {
    // Claims: a row another worker is claiming is skipped, not waited for or taken twice.
    (skip_locked) => {
        "FOR UPDATE SKIP LOCKED"
    };
    // Address prefix search between two bounds, in byte order whatever the database's
    // collation (an index on `email_norm COLLATE "C"` serves it, in this order).
    (email_c) => {
        "(email_norm COLLATE \"C\")"
    };
    (email_order) => {
        "email_norm COLLATE \"C\""
    };
    // Where a reader signed up, by prefix, in byte order (indexed the same way).
    (source_c) => {
        "(source COLLATE \"C\")"
    };
    // Where a text first holds another, from 1 (0: nowhere); the arguments in the same order.
    (strpos) => {
        "strpos"
    };
}
pub(crate) use engine_sql;

/// Readers whose address or name contains `q` (three characters or more), case-insensitively:
/// the trigram GIN indexes on `email_norm` and `name` (pg_trgm, migration 0007) serve a
/// rare text, and for a common one the planner walks the newest readers and stops at a page.
/// Pushes ` FROM … WHERE …`; [`SEARCH_ORDER`] orders the rows.
pub(crate) fn push_search_from(qb: &mut sqlx::QueryBuilder<DB>, q: &str) {
    let pattern = format!(
        "%{}%",
        q.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    qb.push(" FROM subscribers WHERE (email_norm LIKE ")
        .push_bind(pattern.clone())
        .push(" ESCAPE '\\' OR name ILIKE ")
        .push_bind(pattern)
        .push(" ESCAPE '\\')");
}

/// The order of [`push_search_from`]'s rows: newest reader first, by `id + 0` so that the
/// primary key's order is not walked. Matches cluster (readers of `reader1…`, of one domain,
/// signed up in one week): walking the newest readers for a page read 800,000 rows before the
/// first match at a million (632 ms); sorting the matches costs what finding them does (the
/// trigram index, or one parallel scan when nearly everyone matches).
pub(crate) const SEARCH_ORDER: &str = " ORDER BY id + 0 DESC";

/// A search looks among this many newest readers first, walking the primary key: a text most
/// readers match fills its page there in milliseconds, where sorting every match took 215 ms
/// at a million. Only a page it cannot fill (a rarer text, a later page) sorts the matches.
pub(crate) const SEARCH_WINDOW: Option<i64> = Some(20_000);

/// Connections per process: the dispatcher, the ledger writer, the mail queue and a few
/// requests at a time. Several processes share the server's `max_connections` (100 by
/// default), so this stays small.
const POOL_SIZE: u32 = 10;

#[derive(Clone)]
pub struct Db {
    pub(super) pool: PgPool,
}

impl Db {
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        let redacted = crate::config::redact_url(url);
        let opts: PgConnectOptions = url
            .parse()
            .with_context(|| format!("database.url `{redacted}` is not a PostgreSQL URL"))?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot connect to {redacted}"))?;
        // Two processes starting at once both try to migrate: sqlx takes an advisory lock.
        MIGRATOR
            .run(&pool)
            .await
            .context("failed to apply migrations")?;
        Ok(Db { pool })
    }

    /// READ COMMITTED; what a transaction reads to decide a write is guarded by [`Db::lock`].
    pub(super) async fn begin_write(&self) -> anyhow::Result<Tx> {
        self.pool
            .begin()
            .await
            .context("cannot begin a write transaction")
    }

    pub(super) async fn commit(&self, tx: Tx) -> anyhow::Result<()> {
        tx.commit().await.context("commit failed")
    }

    pub(super) fn check_file(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Mutual exclusion on `key` until the transaction ends, across every process.
    pub(super) async fn lock(tx: &mut Conn, key: &str) -> anyhow::Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await
            .context("cannot take an advisory lock")?;
        Ok(())
    }

    /// Adds (or leaves alone) subscribers in one transaction: `COPY` into a temporary table,
    /// then one `INSERT … SELECT … ON CONFLICT DO NOTHING`. Returns (added, already present).
    pub(crate) async fn import(
        &self,
        rows: &[impl NewReader],
        confirmed: bool,
        source: &str,
    ) -> anyhow::Result<(u64, u64)> {
        let now = now_ms();
        let status = if confirmed { "confirmed" } else { "pending" };
        let kept = self.unsuppressed(rows).await?;
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::with_capacity(rows.len() * 64));
        for r in &kept {
            let zone = r.zone().map(|z| z.name()).unwrap_or_default();
            let e = r.email();
            csv.write_record([e.as_str(), &e.normalized(), r.name().as_str(), zone])?;
        }
        let data = csv.into_inner().context("cannot build the COPY data")?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "CREATE TEMPORARY TABLE import_rows (email TEXT, email_norm TEXT, name TEXT, timezone TEXT) ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await?;
        let mut copy = tx
            .copy_in_raw(
                // An empty timezone is NULL: the newsroom's zone.
                "COPY import_rows (email, email_norm, name, timezone) FROM STDIN (FORMAT csv, FORCE_NOT_NULL (email, email_norm, name))",
            )
            .await
            .context("cannot start COPY")?;
        copy.send(data).await.context("COPY failed")?;
        copy.finish().await.context("COPY failed")?;
        // Each added reader's consent history starts with the import.
        let added = sqlx::query(
            "WITH added AS (
                 INSERT INTO subscribers (email, email_norm, name, status, source, created_at, consented_at, confirmed_at, timezone)
                 SELECT email, email_norm, name, $1, $2, $3, $3, $4, timezone FROM import_rows
                 ON CONFLICT (email_norm) DO NOTHING RETURNING id)
             INSERT INTO consent_events (subscriber_id, at, event, source)
             SELECT id, $3, 'import', $2 FROM added",
        )
        .bind(status)
        .bind(source)
        .bind(now)
        .bind(confirmed.then_some(now))
        .execute(&mut *tx)
        .await
        .context("failed to import subscribers")?
        .rows_affected();
        self.commit(tx).await?;
        // After a large import the planner's statistics are stale until autovacuum gets to
        // them, and a search would meanwhile be planned as if the table were empty.
        if added >= 10_000 {
            sqlx::query("ANALYZE subscribers")
                .execute(&self.pool)
                .await
                .context("cannot refresh the planner's statistics")?;
        }
        Ok((added, rows.len() as u64 - added))
    }

    pub(crate) async fn health(&self) -> anyhow::Result<()> {
        self.write_heartbeat().await
    }
}
