//! The SQLite engine: one file, WAL, `BEGIN IMMEDIATE` for every write transaction.
//!
//! SQLite has one writer at a time, so `BEGIN IMMEDIATE` (which takes the write lock up
//! front) is all the mutual exclusion read-then-write transactions need, across processes
//! too; the advisory locks PostgreSQL takes are no-ops here.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    Connection, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::NewReader;
use super::clock::now_ms;

pub type DB = sqlx::Sqlite;
pub type Conn = sqlx::SqliteConnection;
pub type Tx = sqlx::Transaction<'static, DB>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQL that differs between the engines, as literals for `concat!`.
macro_rules! engine_sql {
    // Claims: SQLite's single writer already keeps two claims apart.
    (skip_locked) => {
        ""
    };
    // Address prefix search between two bounds, in byte order (SQLite's BINARY collation).
    (email_c) => {
        "email_norm"
    };
    (source_c) => {
        "source"
    };
    (email_order) => {
        "email_norm"
    };
    // Where a text first holds another, from 1 (0: nowhere); the arguments in the same order.
    (strpos) => {
        "instr"
    };
}
pub(crate) use engine_sql;

/// Readers whose address or name contains `q` (three characters or more): the FTS5 trigram
/// index (`subscriber_search`, migration 0009) drives the query, newest first, so a search
/// that matches most readers stops at the first page as one that matches few does.
/// Pushes ` FROM … WHERE …`; [`SEARCH_ORDER`] orders the rows.
pub(crate) fn push_search_from(qb: &mut sqlx::QueryBuilder<DB>, q: &str) {
    // One FTS5 phrase: the text as it is, quotes doubled; case folded by the tokenizer.
    qb.push(
        " FROM subscriber_search JOIN subscribers ON subscribers.id = subscriber_search.rowid
          WHERE subscriber_search MATCH ",
    )
    .push_bind(format!("\"{}\"", q.replace('"', "\"\"")));
}

/// The order of [`push_search_from`]'s rows: the index's own, newest reader first.
pub(crate) const SEARCH_ORDER: &str = " ORDER BY subscriber_search.rowid DESC";

/// The FTS5 index already walks the newest readers first: no window to look in first.
pub(crate) const SEARCH_WINDOW: Option<i64> = None;

#[derive(Clone)]
pub struct Db {
    pub(super) pool: SqlitePool,
    /// One connection for write transactions. SQLite has one writer anyway; on one connection
    /// its page cache stays valid from one write to the next, where a pool's connections each
    /// found theirs stale after another's write and read the ledger's pages again (half of
    /// the sender's CPU went to the SQLite thread before).
    writer: SqlitePool,
    /// The database file as opened. SQLite keeps writing into a file that was deleted or
    /// replaced under it, and every such write is lost at the next start: each commit checks
    /// the path still names this file.
    file: Option<FileIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileIdentity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileIdentity {
            path: path.to_owned(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    fn check(&self) -> anyhow::Result<()> {
        match FileIdentity::of(&self.path) {
            Ok(now) if now == *self => Ok(()),
            Ok(_) => anyhow::bail!(
                "the database file {} was replaced while open; restart to use the new one",
                self.path.display()
            ),
            Err(e) => anyhow::bail!(
                "the database file {} is gone ({e}); writes would be lost",
                self.path.display()
            ),
        }
    }
}

impl Db {
    /// Opens (creating if needed) the database and applies migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        let opts = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("database.url `{url}` is not a SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            // SQLite's default page cache (2 MB a connection) and no mmap: memory stays flat
            // however large the list (mmap'd pages of a million-row ledger count as RSS).
            .foreign_keys(true);
        if let Some(dir) = Path::new(opts.get_filename()).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let path = opts.get_filename().to_owned();
        let in_memory = path.as_os_str().is_empty() || path.as_os_str() == ":memory:";
        // SQLite serialises writers; a handful of connections is plenty for readers.
        let options = |n: u32| {
            SqlitePoolOptions::new()
                .max_connections(n)
                // A connection whose transaction could not be rolled back (SQLite had already
                // rolled it back itself, or the file turned read-only) would carry a stale
                // transaction into the next request: close it instead of reusing it. The ping
                // first flushes the rollback a dropped transaction queued.
                .after_release(|conn, _meta| {
                    Box::pin(async move {
                        conn.ping().await?;
                        let clean = !conn.is_in_transaction();
                        if !clean {
                            tracing::warn!(
                                "closing a database connection left inside a transaction"
                            );
                        }
                        Ok(clean)
                    })
                })
        };
        let pool = options(8)
            .connect_with(opts.clone())
            .await
            .with_context(|| format!("cannot open database {url}"))?;
        // An in-memory database is one per connection: its writes must share the pool's.
        let writer = if in_memory {
            pool.clone()
        } else {
            options(1)
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot open database {url}"))?
        };
        let file = if in_memory {
            None
        } else {
            Some(
                FileIdentity::of(&path)
                    .with_context(|| format!("cannot stat database {}", path.display()))?,
            )
        };
        MIGRATOR
            .run(&pool)
            .await
            .context("failed to apply migrations")?;
        Ok(Db { pool, writer, file })
    }

    /// `BEGIN IMMEDIATE`: takes the write lock up front, so read-then-write transactions in two
    /// processes serialise instead of failing with SQLITE_BUSY at commit. The transaction rolls
    /// back when dropped uncommitted, so every early `?` leaves the store as it was.
    pub(super) async fn begin_write(&self) -> anyhow::Result<Tx> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("cannot begin a write transaction")
    }

    /// Commits, then makes sure the data went to the file readers of this database will
    /// open: a write into a deleted file answers "ok" and is lost.
    pub(super) async fn commit(&self, tx: Tx) -> anyhow::Result<()> {
        tx.commit().await.context("commit failed")?;
        self.check_file()
    }

    pub(super) fn check_file(&self) -> anyhow::Result<()> {
        self.file.as_ref().map_or(Ok(()), FileIdentity::check)
    }

    /// Mutual exclusion on `key` for the rest of the transaction: `BEGIN IMMEDIATE` already
    /// holds the database's one write lock.
    pub(super) async fn lock(_tx: &mut Conn, _key: &str) -> anyhow::Result<()> {
        Ok(())
    }

    /// Adds (or leaves alone) subscribers in one transaction, 2,000 rows a statement (SQLite
    /// allows 32,766 parameters per statement). Returns (added, already present).
    pub(crate) async fn import(
        &self,
        rows: &[impl NewReader],
        confirmed: bool,
        source: &str,
    ) -> anyhow::Result<(u64, u64)> {
        let now = now_ms();
        let status = if confirmed { "confirmed" } else { "pending" };
        let mut added = 0;
        let kept = self.unsuppressed(rows).await?;
        let mut tx = self.begin_write().await?;
        // The write lock is ours: every id above this one is a reader this import adds.
        let before: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM subscribers")
                .fetch_one(&mut *tx)
                .await?;
        for chunk in kept.chunks(2000) {
            let mut qb = sqlx::QueryBuilder::<DB>::new(
                "INSERT INTO subscribers (email, email_norm, name, status, source, created_at, consented_at, confirmed_at, timezone) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.email().as_str())
                    .push_bind(r.email().normalized())
                    .push_bind(r.name().as_str())
                    .push_bind(status)
                    .push_bind(source)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(confirmed.then_some(now))
                    .push_bind(r.zone().map(|z| z.name()));
            });
            qb.push(" ON CONFLICT (email_norm) DO NOTHING");
            added += qb
                .build()
                .execute(&mut *tx)
                .await
                .context("failed to import subscribers")?
                .rows_affected();
        }
        // Each added reader's consent history starts with the import.
        sqlx::query(
            "INSERT INTO consent_events (subscriber_id, at, event, source)
             SELECT id, created_at, 'import', source FROM subscribers WHERE id > $1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok((added, rows.len() as u64 - added))
    }

    /// Whether the store takes writes that last: the file is the one we opened and a write
    /// commits.
    pub(crate) async fn health(&self) -> anyhow::Result<()> {
        self.check_file()?;
        self.write_heartbeat().await?;
        self.check_file()
    }
}
