//! All SQL lives here. One `Store` over SQLite (WAL) today; its methods are the seam a
//! PostgreSQL implementation slots in behind.
//!
//! Queries are checked at run time (`query_as` + `FromRow`), so the crate builds without a
//! database and one test suite can drive every engine.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    Connection, Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::domain::{SubscriberEmail, SubscriberName};

mod models;
pub use models::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
pub struct Store {
    pool: SqlitePool,
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

impl Store {
    /// Opens (creating if needed) the database and applies migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A connection whose transaction could not be rolled back (SQLite had already
            // rolled it back itself, or the file turned read-only) would carry a stale
            // transaction into the next request: close it instead of reusing it. The ping
            // first flushes the rollback a dropped transaction queued.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.ping().await?;
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!("closing a database connection left inside a transaction");
                    }
                    Ok(clean)
                })
            })
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open database {url}"))?;
        let file = if in_memory {
            None
        } else {
            Some(
                FileIdentity::of(&path)
                    .with_context(|| format!("cannot stat database {}", path.display()))?,
            )
        };
        let store = Store { pool, file };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("failed to apply migrations")
    }

    /// `BEGIN IMMEDIATE`: takes the write lock up front, so read-then-write transactions in two
    /// processes serialise instead of failing with SQLITE_BUSY at commit. The transaction rolls
    /// back when dropped uncommitted, so every early `?` leaves the store as it was.
    async fn begin_write(&self) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("cannot begin a write transaction")
    }

    /// Commits, then makes sure the data went to the file readers of this database will
    /// open: a write into a deleted file answers "ok" and is lost.
    async fn commit(&self, tx: sqlx::Transaction<'static, sqlx::Sqlite>) -> anyhow::Result<()> {
        tx.commit().await.context("commit failed")?;
        self.check_file()
    }

    fn check_file(&self) -> anyhow::Result<()> {
        self.file.as_ref().map_or(Ok(()), FileIdentity::check)
    }

    /// Whether the store takes writes that last: the file is the one we opened and a write
    /// commits. `/health` reports the reason when not.
    pub async fn health(&self) -> anyhow::Result<()> {
        self.check_file()?;
        let write = sqlx::query(
            "INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now_ms())
        .execute(&self.pool);
        tokio::time::timeout(Duration::from_secs(5), write)
            .await
            .context("a write did not finish within 5 s")?
            .context("the database refuses writes")?;
        self.check_file()
    }

    // ---------------------------------------------------------------- one-time upgrades

    /// Rewrites what earlier versions stored in a form this one no longer produces, once per
    /// database: addresses to their A-label form (`user@مثال.إختبار` is now
    /// `user@xn--mgbh0fb.xn--kgbechtv`, so a new sign-up finds the old row and an erasure by
    /// either spelling works), and articles' canonical URLs (copied raw by the migration).
    pub async fn upgrade_data(&self, canonical_url: fn(&str) -> String) -> anyhow::Result<()> {
        if self.begin_upgrade("addresses-a-label").await? {
            let (mut after, mut changed, mut clashes) = (0i64, 0u64, 0u64);
            loop {
                let page = self.subscribers_after(after, 5_000).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for row in &page {
                    let Ok(e) = SubscriberEmail::parse(&row.email) else {
                        continue;
                    };
                    if e.as_str() == row.email {
                        continue;
                    }
                    let r = sqlx::query(
                        "UPDATE subscribers SET email = $1, email_norm = $2 WHERE id = $3",
                    )
                    .bind(e.as_str())
                    .bind(e.normalized())
                    .bind(row.id)
                    .execute(&self.pool)
                    .await;
                    match r {
                        Ok(_) => changed += 1,
                        Err(err)
                            if err
                                .as_database_error()
                                .is_some_and(|d| d.is_unique_violation()) =>
                        {
                            // Both spellings were signed up before: two rows stay, as they were.
                            clashes += 1
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            }
            tracing::info!(
                changed,
                clashes,
                "addresses rewritten to their A-label form"
            );
            self.finish_upgrade("addresses-a-label").await?;
        }
        if self.begin_upgrade("articles-canonical-url").await? {
            let mut after = 0i64;
            loop {
                let page: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, url FROM articles WHERE id > $1 ORDER BY id LIMIT 5000",
                )
                .bind(after)
                .fetch_all(&self.pool)
                .await?;
                let Some(last) = page.last() else { break };
                after = last.0;
                let mut tx = self.begin_write().await?;
                for (id, url) in &page {
                    sqlx::query("UPDATE articles SET canonical_url = $1 WHERE id = $2")
                        .bind(canonical_url(url))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                self.commit(tx).await?;
            }
            self.finish_upgrade("articles-canonical-url").await?;
        }
        Ok(())
    }

    async fn begin_upgrade(&self, name: &str) -> anyhow::Result<bool> {
        let done: Option<i64> = sqlx::query_scalar("SELECT at FROM data_upgrades WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(done.is_none())
    }

    async fn finish_upgrade(&self, name: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO data_upgrades (name, at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- subscribers

    /// Records a sign-up and, in the same transaction, queues its confirmation email unless
    /// that inbox had one recently. Returns whether a confirmation was queued; the caller
    /// answers the reader the same either way.
    ///
    /// A sign-up for a known address changes nothing a stranger could abuse: the name is taken
    /// only with a fresh consent (after the reader left), and confirmations are limited per
    /// inbox (plus-address and case variants count as one), not only per address.
    pub async fn subscribe(
        &self,
        email: &SubscriberEmail,
        name: &SubscriberName,
        source: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO subscribers (email, email_norm, name, status, source, created_at, consented_at)
             VALUES ($1, $2, $3, 'pending', $4, $5, $5)
             ON CONFLICT (email_norm) DO UPDATE SET
                 name = CASE WHEN status IN ('unsubscribed', 'bounced') THEN $3 ELSE name END,
                 source = CASE WHEN status IN ('unsubscribed', 'bounced') THEN $4 ELSE source END,
                 consented_at = CASE WHEN status IN ('unsubscribed', 'bounced') THEN $5 ELSE consented_at END,
                 status = CASE WHEN status IN ('unsubscribed', 'bounced') THEN 'pending' ELSE status END
             RETURNING id, status, consented_at",
        )
        .bind(email.as_str())
        .bind(email.normalized())
        .bind(name.as_str())
        .bind(source)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .context("failed to store the subscription")?;
        let (id, status, issued): (i64, String, i64) =
            (row.get("id"), row.get("status"), row.get("consented_at"));
        let mailbox = email.mailbox_key();
        let queued = if status == "pending" {
            // Recent: confirmations of this inbox still unanswered (a reader who confirmed,
            // left and comes back is not held up by the mail they answered).
            let (recent, today, open): (i64, i64, i64) = sqlx::query_as(
                "SELECT
                     COALESCE(SUM(CASE WHEN q.created_at > $2 AND q.state <> 'failed'
                                        AND s.status = 'pending' AND s.consented_at = q.issued THEN 1 ELSE 0 END), 0),
                     COALESCE(SUM(CASE WHEN q.created_at > $3 THEN 1 ELSE 0 END), 0),
                     COALESCE(SUM(CASE WHEN q.subscriber_id = $4 AND q.state IN ('pending', 'sending') THEN 1 ELSE 0 END), 0)
                 FROM mail_queue q LEFT JOIN subscribers s ON s.id = q.subscriber_id
                 WHERE q.mailbox = $1 AND q.created_at > $3",
            )
            .bind(&mailbox)
            .bind(now - CONFIRM_RESEND_MS)
            .bind(now - DAY_MS)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            recent == 0 && today < CONFIRMS_PER_DAY && open == 0
        } else {
            false
        };
        if queued {
            sqlx::query(
                "INSERT INTO mail_queue (kind, subscriber_id, mailbox, issued, state, next_attempt_at, created_at)
                 VALUES ('confirm', $1, $2, $3, 'pending', $4, $4)",
            )
            .bind(id)
            .bind(&mailbox)
            .bind(issued)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("failed to queue the confirmation email")?;
        }
        self.commit(tx).await?;
        Ok(queued)
    }

    /// Claims due one-off emails (confirmations) with a lease, like the delivery ledger.
    pub async fn claim_mail(
        &self,
        limit: i64,
        lease: Duration,
        now: i64,
    ) -> anyhow::Result<Vec<QueuedMail>> {
        let mut tx = self.begin_write().await?;
        let lease_until = now + lease.as_millis() as i64;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE mail_queue SET state = 'sending', lease_until = $1, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM mail_queue
                 WHERE (state = 'pending' AND next_attempt_at <= $2) OR (state = 'sending' AND lease_until < $2)
                 ORDER BY next_attempt_at, id LIMIT $3)
             RETURNING id",
        )
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .context("failed to claim queued mail")?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            // The address only while the sign-up it was queued for still waits for it.
            rows.push(
                sqlx::query_as::<_, QueuedMail>(
                    "SELECT q.id, q.kind, q.subscriber_id, q.issued, q.attempts, q.lease_until, q.created_at,
                            s.email AS email
                     FROM mail_queue q LEFT JOIN subscribers s
                         ON s.id = q.subscriber_id AND s.status = 'pending' AND s.consented_at = q.issued
                     WHERE q.id = $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?,
            );
        }
        self.commit(tx).await?;
        Ok(rows)
    }

    /// Writes what became of a queued email, if its lease still holds.
    pub async fn record_mail(
        &self,
        m: &QueuedMail,
        outcome: MailOutcome<'_>,
    ) -> anyhow::Result<()> {
        let q = match outcome {
            MailOutcome::Sent => sqlx::query(
                "UPDATE mail_queue SET state = 'sent', sent_at = $3, lease_until = NULL, last_error = NULL
                 WHERE id = $1 AND lease_until = $2",
            )
            .bind(m.id)
            .bind(m.lease_until)
            .bind(now_ms()),
            MailOutcome::Skipped => sqlx::query(
                "UPDATE mail_queue SET state = 'skipped', lease_until = NULL WHERE id = $1 AND lease_until = $2",
            )
            .bind(m.id)
            .bind(m.lease_until),
            MailOutcome::Retry { at, error, counts } => sqlx::query(
                "UPDATE mail_queue SET state = 'pending', next_attempt_at = $3, last_error = $4,
                     attempts = attempts - $5, lease_until = NULL
                 WHERE id = $1 AND lease_until = $2",
            )
            .bind(m.id)
            .bind(m.lease_until)
            .bind(at)
            .bind(error)
            .bind(if counts { 0 } else { 1 }),
            MailOutcome::Failed { error } => sqlx::query(
                "UPDATE mail_queue SET state = 'failed', last_error = $3, lease_until = NULL
                 WHERE id = $1 AND lease_until = $2",
            )
            .bind(m.id)
            .bind(m.lease_until)
            .bind(error),
        };
        q.execute(&self.pool)
            .await
            .context("failed to record a queued email")?;
        self.check_file()
    }

    /// Forgets one-off emails that ended (sent, failed, skipped) before `before`: the limits
    /// look back a day, nothing else reads them.
    pub async fn purge_mail(&self, before: i64) -> anyhow::Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM mail_queue WHERE created_at < $1 AND state IN ('sent', 'failed', 'skipped')",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// When the next queued email is due, if any.
    pub async fn next_mail_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN state = 'pending' THEN next_attempt_at ELSE lease_until END)
             FROM mail_queue WHERE state IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Confirms the sign-up a confirm token was issued for.
    pub async fn confirm(&self, id: i64, issued: i64, now: i64) -> anyhow::Result<ConfirmOutcome> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT status, consented_at FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(ConfirmOutcome::Unknown);
        };
        let (status, consented): (String, i64) = (row.get("status"), row.get("consented_at"));
        if consented != issued {
            return Ok(ConfirmOutcome::Stale);
        }
        let out = match status.as_str() {
            "confirmed" => ConfirmOutcome::AlreadyConfirmed,
            "pending" => {
                sqlx::query(
                    "UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, bounces = 0 WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("failed to confirm")?;
                ConfirmOutcome::Confirmed
            }
            _ => ConfirmOutcome::Stale,
        };
        self.commit(tx).await?;
        Ok(out)
    }

    /// Whether a confirm token still means something (the page the link opens asks first).
    pub async fn confirm_state(&self, id: i64, issued: i64) -> anyhow::Result<ConfirmOutcome> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT status, consented_at FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            None => ConfirmOutcome::Unknown,
            Some((_, c)) if c != issued => ConfirmOutcome::Stale,
            Some((s, _)) if s == "confirmed" => ConfirmOutcome::AlreadyConfirmed,
            Some((s, _)) if s == "pending" => ConfirmOutcome::Confirmed,
            Some(_) => ConfirmOutcome::Stale,
        })
    }

    /// Unsubscribes at once, and takes the reader out of every send still under way
    /// (claimed rows too: the dispatcher re-checks before it starts a message). Idempotent;
    /// returns whether anything changed.
    pub async fn unsubscribe(&self, id: i64, now: i64) -> anyhow::Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $1
             WHERE id = $2 AND status IN ('pending', 'confirmed')",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("failed to unsubscribe")?;
        Self::skip_deliveries(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(r.rows_affected() > 0)
    }

    async fn skip_deliveries(
        conn: &mut sqlx::SqliteConnection,
        subscriber: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE deliveries SET state = 'skipped', lease_until = NULL
             WHERE subscriber_id = $1 AND state IN ('pending', 'sending')",
        )
        .bind(subscriber)
        .execute(&mut *conn)
        .await
        .context("failed to take the reader out of sends under way")?;
        Ok(())
    }

    /// Adds (or re-confirms) subscribers in one transaction; `confirmed` means the operator
    /// vouches for consent given elsewhere. Returns (added, already present).
    pub async fn import(
        &self,
        rows: &[(SubscriberEmail, SubscriberName)],
        confirmed: bool,
        source: &str,
    ) -> anyhow::Result<(u64, u64)> {
        let now = now_ms();
        let status = if confirmed { "confirmed" } else { "pending" };
        let mut added = 0;
        let mut conn = self.begin_write().await?;
        // Chunked multi-row inserts: SQLite allows 32766 parameters per statement.
        for chunk in rows.chunks(2000) {
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO subscribers (email, email_norm, name, status, source, created_at, consented_at, confirmed_at) ",
            );
            qb.push_values(chunk, |mut b, (email, name)| {
                b.push_bind(email.as_str())
                    .push_bind(email.normalized())
                    .push_bind(name.as_str())
                    .push_bind(status)
                    .push_bind(source)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(confirmed.then_some(now));
            });
            qb.push(" ON CONFLICT (email_norm) DO NOTHING");
            added += qb
                .build()
                .execute(&mut *conn)
                .await
                .context("failed to import subscribers")?
                .rows_affected();
        }
        self.commit(conn).await?;
        Ok((added, rows.len() as u64 - added))
    }

    /// Every subscriber, in id order, a page at a time (export streams through this).
    pub async fn subscribers_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<SubscriberRow>> {
        Ok(sqlx::query_as::<_, SubscriberRow>(
            "SELECT id, email, name, status, source, created_at, consented_at, confirmed_at, unsubscribed_at, bounces
             FROM subscribers WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn list_subscribers(
        &self,
        status: Option<&str>,
        q: Option<&str>,
        page: i64,
        per_page: i64,
    ) -> anyhow::Result<(Vec<SubscriberRow>, i64)> {
        let like = q.map(|q| format!("%{}%", q.to_lowercase().replace(['%', '_'], "")));
        let rows = sqlx::query_as::<_, SubscriberRow>(
            "SELECT id, email, name, status, source, created_at, consented_at, confirmed_at, unsubscribed_at, bounces
             FROM subscribers
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR email_norm LIKE ?2)
             ORDER BY id LIMIT ?3 OFFSET ?4",
        )
        .bind(status)
        .bind(like.as_deref())
        .bind(per_page)
        .bind((page.clamp(1, 1_000_000) - 1) * per_page)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscribers WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR email_norm LIKE ?2)",
        )
        .bind(status)
        .bind(like.as_deref())
        .fetch_one(&self.pool)
        .await?;
        Ok((rows, total))
    }

    pub async fn count_subscribers(&self, status: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE status = ?")
                .bind(status)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// GDPR erasure: the row goes, with its queued emails; ledger rows keep only the number,
    /// which now points nowhere. Deliveries to them still under way are skipped.
    pub async fn erase_subscriber(&self, email: &SubscriberEmail) -> anyhow::Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM subscribers WHERE email_norm = $1")
                .bind(email.normalized())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = id {
            Self::skip_deliveries(&mut tx, id).await?;
            sqlx::query("DELETE FROM mail_queue WHERE subscriber_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM subscribers WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("failed to erase subscriber")?;
        }
        self.commit(tx).await?;
        Ok(id)
    }

    // ---------------------------------------------------------------- articles

    /// Stores an article, or updates the one it already is, which keeps its arrival order (an
    /// edit never makes it "new" again). Identity: the same guid from the same source (a feed
    /// or the API), else the same canonical URL from any source. An article first seen by URL
    /// adopts the guid it later arrives with, so a later edit of its URL still finds it.
    pub async fn upsert_article(&self, a: &NewArticle) -> anyhow::Result<(i64, bool)> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let by_guid: Option<i64> =
            match &a.guid {
                Some(g) => sqlx::query_scalar(
                    "SELECT id FROM articles WHERE source = $1 AND guid = $2 ORDER BY id LIMIT 1",
                )
                .bind(&a.source)
                .bind(g)
                .fetch_optional(&mut *tx)
                .await?,
                None => None,
            };
        // By URL: the same article from another source, or one that had no guid. Two items
        // of one feed with their own guids stay two even when they share a link.
        let existing = match by_guid {
            Some(id) => Some(id),
            None => {
                sqlx::query_scalar(
                    "SELECT id FROM articles WHERE canonical_url = $1
                       AND ($2 IS NULL OR guid IS NULL OR source <> $3)
                     ORDER BY id LIMIT 1",
                )
                .bind(&a.canonical_url)
                .bind(&a.guid)
                .bind(&a.source)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let tags = serde_json::to_string(&a.tags)?;
        let out = if let Some(id) = existing {
            sqlx::query(
                "UPDATE articles SET url = $1, canonical_url = $2, title = $3, author = $4, summary = $5,
                     content_html = $6, image = $7, image_alt = $8, tags = $9,
                     published_at = COALESCE($10, published_at), updated_at = $11,
                     source = CASE WHEN guid IS NULL AND $12 IS NOT NULL THEN $13 ELSE source END,
                     guid = COALESCE(guid, $12)
                 WHERE id = $14",
            )
            .bind(&a.url)
            .bind(&a.canonical_url)
            .bind(&a.title)
            .bind(&a.author)
            .bind(&a.summary)
            .bind(&a.content_html)
            .bind(&a.image)
            .bind(&a.image_alt)
            .bind(&tags)
            .bind(a.published_at)
            .bind(now)
            .bind(&a.guid)
            .bind(&a.source)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("failed to update article")?;
            (id, false)
        } else {
            // The key is unique by construction (a guid within its source; a URL only for
            // an article without one) but a row whose URL moved may still carry an old key.
            let key = match &a.guid {
                Some(g) => format!("guid:{}:{g}", a.source),
                None => format!("url:{}", a.canonical_url),
            };
            let taken: Option<i64> =
                sqlx::query_scalar("SELECT id FROM articles WHERE dedup_key = $1")
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let key = match taken {
                Some(_) => format!("{key}#{}", uuid::Uuid::new_v4().simple()),
                None => key,
            };
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO articles (dedup_key, guid, url, canonical_url, title, author, summary, content_html,
                                       image, image_alt, tags, published_at, source, arrived_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id",
            )
            .bind(&key)
            .bind(&a.guid)
            .bind(&a.url)
            .bind(&a.canonical_url)
            .bind(&a.title)
            .bind(&a.author)
            .bind(&a.summary)
            .bind(&a.content_html)
            .bind(&a.image)
            .bind(&a.image_alt)
            .bind(&tags)
            .bind(a.published_at)
            .bind(&a.source)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .context("failed to store article")?;
            (id, true)
        };
        self.commit(tx).await?;
        Ok(out)
    }

    /// The articles the next digest of `schedule` would carry: those that arrived since its
    /// last digest, newest first by publication time (a date in the future counts as the
    /// arrival time), at most `max`.
    pub async fn new_articles(
        &self,
        schedule: &str,
        first_since: i64,
        max: u32,
    ) -> anyhow::Result<Vec<Article>> {
        let mut conn = self.pool.acquire().await?;
        Self::select_new_articles(&mut conn, schedule, first_since, max).await
    }

    async fn select_new_articles(
        conn: &mut sqlx::SqliteConnection,
        schedule: &str,
        first_since: i64,
        max: u32,
    ) -> anyhow::Result<Vec<Article>> {
        let watermark: Option<Option<i64>> =
            sqlx::query_scalar("SELECT watermark FROM schedule_state WHERE name = $1")
                .bind(schedule)
                .fetch_optional(&mut *conn)
                .await?;
        // Before a schedule's first digest, "new" means arrived during the last period, not
        // the whole archive.
        let (watermark, since) = match watermark.flatten() {
            Some(w) => (w, 0),
            None => (0, first_since),
        };
        Ok(sqlx::query_as::<_, Article>(
            "SELECT * FROM articles WHERE id > $1 AND arrived_at >= $2
             ORDER BY CASE WHEN published_at IS NULL OR published_at > arrived_at THEN arrived_at
                           ELSE published_at END DESC, id DESC
             LIMIT $3",
        )
        .bind(watermark)
        .bind(since)
        .bind(max as i64)
        .fetch_all(&mut *conn)
        .await?)
    }

    pub async fn article_count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM articles")
            .fetch_one(&self.pool)
            .await?)
    }

    // ---------------------------------------------------------------- schedules

    pub async fn schedule_last_slot(&self, name: &str) -> anyhow::Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT last_slot FROM schedule_state WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records that `slot` was handled (fired, or skipped as too late) without a digest.
    pub async fn mark_slot(&self, name: &str, slot: i64) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO schedule_state (name, last_slot) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_slot = MAX(last_slot, ?2)",
        )
        .bind(name)
        .bind(slot)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes a schedule's next digest start from the first article (the demo uses this).
    pub async fn reset_schedule(&self, name: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO schedule_state (name, last_slot, watermark) VALUES (?1, ?2, 0)
             ON CONFLICT (name) DO UPDATE SET watermark = 0",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- digests

    /// Stores a digest rendered from `articles` and its whole audience, in one transaction.
    ///
    /// The digest was rendered before this, outside any lock. Under the write lock: a
    /// scheduled slot that already has a digest returns it; the new articles are read again,
    /// and if they are no longer the ones rendered (an article arrived meanwhile) the caller
    /// renders again ([`DigestOutcome::Stale`]). Otherwise the digest is stored, one ledger row
    /// per confirmed subscriber is written (the audience is fixed here) and the schedule's
    /// watermark moves past every article that has arrived. Two triggers at once therefore
    /// produce one digest and one "nothing new". With no articles and no rendering, only the
    /// slot is recorded.
    pub async fn create_digest(
        &self,
        req: DigestRequest<'_>,
        articles: &[i64],
        rendered: Option<&RenderedDigest>,
    ) -> anyhow::Result<DigestOutcome> {
        let mut tx = self.begin_write().await?;
        let out = Self::create_digest_tx(&mut tx, req, articles, rendered).await?;
        self.commit(tx).await?;
        Ok(out)
    }

    async fn create_digest_tx(
        conn: &mut sqlx::SqliteConnection,
        req: DigestRequest<'_>,
        rendered_ids: &[i64],
        rendered: Option<&RenderedDigest>,
    ) -> anyhow::Result<DigestOutcome> {
        if let Some(slot) = req.slot {
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM digests WHERE schedule = $1 AND slot = $2")
                    .bind(req.schedule)
                    .bind(slot)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some(id) = existing {
                return Ok(DigestOutcome::Exists(id));
            }
        }
        let ids: Vec<i64> =
            Self::select_new_articles(conn, req.schedule, req.first_since, req.max_articles)
                .await?
                .iter()
                .map(|a| a.id)
                .collect();
        if ids != rendered_ids {
            return Ok(DigestOutcome::Stale);
        }
        let advance = |slot: Option<i64>, watermark: Option<i64>| {
            sqlx::query(
                "INSERT INTO schedule_state (name, last_slot, watermark) VALUES ($1, COALESCE($2, $4), $3)
                 ON CONFLICT (name) DO UPDATE SET
                     last_slot = CASE WHEN $2 IS NOT NULL AND $2 > last_slot THEN $2 ELSE last_slot END,
                     watermark = COALESCE($3, watermark)",
            )
            .bind(req.schedule)
            .bind(slot)
            .bind(watermark)
            .bind(now_ms())
        };
        let Some(rendered) = rendered.filter(|_| !ids.is_empty()) else {
            if req.test_to.is_none() {
                advance(req.slot, None).execute(&mut *conn).await?;
            }
            return Ok(DigestOutcome::NothingNew);
        };
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO digests (schedule, kind, slot, subject, html, text, web_html, slot_key, preheader,
                                  article_ids, test_to, status, created_at, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'sending', $12, $12) RETURNING id",
        )
        .bind(req.schedule)
        .bind(req.kind.as_str())
        .bind(req.slot)
        .bind(&rendered.subject)
        .bind(&rendered.html)
        .bind(&rendered.text)
        .bind(&rendered.web_html)
        .bind(&rendered.slot_key)
        .bind(&rendered.preheader)
        .bind(serde_json::to_string(&ids)?)
        .bind(req.test_to)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        let total = if req.test_to.is_some() {
            sqlx::query(
                "INSERT INTO deliveries (digest_id, subscriber_id, state) VALUES ($1, 0, 'pending')",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        } else {
            let n = sqlx::query(
                "INSERT INTO deliveries (digest_id, subscriber_id, state)
                 SELECT $1, id, 'pending' FROM subscribers WHERE status = 'confirmed' ORDER BY id",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let max_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM articles")
                .fetch_one(&mut *conn)
                .await?;
            advance(req.slot, Some(max_id)).execute(&mut *conn).await?;
            n
        };
        let status = if total == 0 { "done" } else { "sending" };
        sqlx::query(
            "UPDATE digests SET total = $1, status = $2,
                 finished_at = CASE WHEN $2 = 'done' THEN $3 END WHERE id = $4",
        )
        .bind(total as i64)
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        Ok(DigestOutcome::Created {
            id,
            recipients: total as i64,
        })
    }

    pub async fn digest_status(&self, id: i64) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT status FROM digests WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn digest(&self, id: i64) -> anyhow::Result<Option<Digest>> {
        Ok(
            sqlx::query_as::<_, Digest>("SELECT * FROM digests WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sent digests for the public archive (test sends are not published).
    pub async fn archive(&self, limit: i64) -> anyhow::Result<Vec<ArchiveEntry>> {
        Ok(sqlx::query_as::<_, ArchiveEntry>(
            "SELECT id, schedule, subject, created_at FROM digests WHERE kind <> 'test' AND status <> 'cancelled' ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn progress(&self, id: i64) -> anyhow::Result<Option<Progress>> {
        let Some(d) = self.digest(id).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM deliveries WHERE digest_id = ? GROUP BY state",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut p = Progress {
            id,
            status: d.status,
            total: d.total,
            error: d.error,
            ..Default::default()
        };
        for r in rows {
            let n: i64 = r.get("n");
            match r.get::<String, _>("state").as_str() {
                "sent" => p.sent = n,
                "failed" => p.failed = n,
                "pending" => p.pending += n,
                "sending" => {
                    p.pending += n;
                    p.in_flight = n
                }
                "skipped" => p.skipped = n,
                "cancelled" => p.cancelled = n,
                _ => {}
            }
        }
        p.started_at = d.started_at;
        p.finished_at = d.finished_at;
        Ok(Some(p))
    }

    /// Moves a digest between queued/sending/paused/cancelled. Returns false when the digest
    /// is not in a state that allows the change.
    ///
    /// Resuming a send that was stopped (failed) puts its failed deliveries back in the queue:
    /// the failures that stopped it were the relay's, and say nothing about the readers.
    pub async fn set_digest_status(&self, id: i64, to: &str) -> anyhow::Result<bool> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let r = match to {
            "paused" => sqlx::query(
                "UPDATE digests SET status = 'paused' WHERE id = $1 AND status IN ('queued', 'sending')",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?,
            "sending" => {
                let was: Option<String> =
                    sqlx::query_scalar("SELECT status FROM digests WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if was.as_deref() == Some("failed") {
                    Self::requeue_failed(&mut tx, id).await?;
                }
                sqlx::query(
                    "UPDATE digests SET status = 'sending', error = NULL, finished_at = NULL
                     WHERE id = $1 AND status IN ('paused', 'failed')",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?
            }
            "cancelled" => {
                let r = sqlx::query(
                    "UPDATE digests SET status = 'cancelled', finished_at = $1
                     WHERE id = $2 AND status IN ('queued', 'sending', 'paused', 'failed')",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE deliveries SET state = 'cancelled' WHERE digest_id = $1 AND state = 'pending'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                r
            }
            _ => anyhow::bail!("unknown digest status {to}"),
        };
        self.commit(tx).await?;
        Ok(r.rows_affected() > 0)
    }

    /// Failed deliveries back to the queue with fresh attempts, for readers still subscribed.
    async fn requeue_failed(conn: &mut sqlx::SqliteConnection, digest: i64) -> anyhow::Result<u64> {
        Ok(sqlx::query(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, permanent = 0
             WHERE digest_id = $1 AND state = 'failed'
               AND (subscriber_id = 0 OR subscriber_id IN (SELECT id FROM subscribers WHERE status = 'confirmed'))",
        )
        .bind(digest)
        .execute(&mut *conn)
        .await?
        .rows_affected())
    }

    /// Stops a send that cannot make progress, keeping its ledger for a later resume.
    pub async fn fail_digest(&self, id: i64, error: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE digests SET status = 'failed', error = ? WHERE id = ? AND status = 'sending'",
        )
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Puts a send's failed deliveries back in the queue (readers still subscribed; a
    /// failure already counted as a bounce after a finished send stays counted, but is
    /// retried all the same).
    pub async fn retry_failed(&self, id: i64) -> anyhow::Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = Self::requeue_failed(&mut tx, id).await?;
        if n > 0 {
            sqlx::query("UPDATE digests SET status = 'sending', error = NULL, finished_at = NULL WHERE id = $1 AND status <> 'cancelled'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await?;
        Ok(n)
    }

    pub async fn failures(&self, id: i64, limit: i64) -> anyhow::Result<Vec<Failure>> {
        Ok(sqlx::query_as::<_, Failure>(
            "SELECT COALESCE(s.email, g.test_to, '') AS email, d.attempts, COALESCE(d.last_error, '') AS error
             FROM deliveries d JOIN digests g ON g.id = d.digest_id
             LEFT JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.digest_id = ? AND d.state = 'failed' ORDER BY d.id LIMIT ?",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    // ---------------------------------------------------------------- delivery queue

    /// Claims up to `limit` deliveries that are due (pending and past their retry time, or
    /// leased by a worker whose lease ran out) from digests that are sending.
    pub async fn claim(
        &self,
        limit: i64,
        lease: Duration,
        now: i64,
    ) -> anyhow::Result<Vec<Claimed>> {
        let mut conn = self.begin_write().await?;
        let res: anyhow::Result<Vec<Claimed>> = async {
            // Index-friendly pieces rather than one OR: rows whose lease ran out (a worker
            // died), then due rows of each sending digest in (next_attempt_at, id) order.
            let lease_until = now + lease.as_millis() as i64;
            let mut ids: Vec<(i64, i64)> = sqlx::query_as(
                "UPDATE deliveries SET lease_until = ?1, attempts = attempts + 1
                 WHERE id IN (
                     SELECT d.id FROM deliveries d JOIN digests g ON g.id = d.digest_id
                     WHERE d.state = 'sending' AND d.lease_until < ?2 AND g.status = 'sending'
                     LIMIT ?3)
                 RETURNING id, digest_id",
            )
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
            let digests: Vec<i64> = sqlx::query_scalar("SELECT id FROM digests WHERE status = 'sending' ORDER BY id")
                .fetch_all(&mut *conn)
                .await?;
            for digest in digests {
                let room = limit - ids.len() as i64;
                if room <= 0 {
                    break;
                }
                let more: Vec<(i64, i64)> = sqlx::query_as(
                    "UPDATE deliveries SET state = 'sending', lease_until = ?1, attempts = attempts + 1
                     WHERE id IN (
                         SELECT id FROM deliveries
                         WHERE digest_id = ?2 AND state = 'pending' AND next_attempt_at <= ?3
                         ORDER BY next_attempt_at, id LIMIT ?4)
                     RETURNING id, digest_id",
                )
                .bind(lease_until)
                .bind(digest)
                .bind(now)
                .bind(room)
                .fetch_all(&mut *conn)
                .await?;
                ids.extend(more);
            }
            if ids.is_empty() {
                return Ok(vec![]);
            }
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT d.id, d.digest_id, d.subscriber_id, d.attempts, d.lease_until,
                        COALESCE(s.email, g.test_to) AS email, COALESCE(s.name, '') AS name,
                        CASE WHEN d.subscriber_id = 0 THEN 'confirmed' ELSE COALESCE(s.status, 'erased') END AS status
                 FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 LEFT JOIN subscribers s ON s.id = d.subscriber_id AND d.subscriber_id <> 0
                 WHERE d.id IN (",
            );
            let mut sep = qb.separated(", ");
            for (id, _) in &ids {
                sep.push_bind(*id);
            }
            qb.push(") ORDER BY d.id");
            Ok(qb.build_query_as::<Claimed>().fetch_all(&mut *conn).await?)
        }
        .await;
        let v = res.context("failed to claim deliveries")?;
        conn.commit().await?;
        Ok(v)
    }

    /// Writes a batch of outcomes in one transaction: this is the "sent" mark whose delay
    /// bounds what a crash can duplicate.
    ///
    /// The ledger says what happened. A "sent" is a fact and lands on a row still `sending`,
    /// or on one skipped while its message was already on the wire (the reader left or was
    /// erased during it: their request waited for it, so it arrived before they were told
    /// they were out). Every other outcome applies only to a row still `sending` under the
    /// same lease: a row skipped, cancelled or claimed again meanwhile keeps its state.
    pub async fn record(&self, outcomes: &[Outcome]) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        // "Sent" is nearly every outcome: one statement for all of them.
        let sent: Vec<(&i64, &String, &i64)> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Sent { id, message_id, at } => Some((id, message_id, at)),
                _ => None,
            })
            .collect();
        for chunk in sent.chunks(300) {
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "WITH v (id, message_id, sent_at) AS (VALUES ",
            );
            let mut sep = qb.separated(", ");
            for (id, mid, at) in chunk {
                sep.push("(")
                    .push_bind_unseparated(**id)
                    .push_unseparated(", ")
                    .push_bind_unseparated(mid.as_str())
                    .push_unseparated(", ")
                    .push_bind_unseparated(**at)
                    .push_unseparated(")");
            }
            qb.push(
                ") UPDATE deliveries SET state = 'sent', message_id = v.message_id, sent_at = v.sent_at,
                     lease_until = NULL, last_error = NULL
                 FROM v WHERE deliveries.id = v.id AND deliveries.state IN ('sending', 'skipped')",
            );
            qb.build()
                .execute(&mut *tx)
                .await
                .context("failed to record sent deliveries")?;
        }
        for o in outcomes {
            let q = match o {
                Outcome::Sent { .. } => continue,
                Outcome::Retry {
                    id,
                    lease,
                    error,
                    next_attempt_at,
                } => sqlx::query(
                    "UPDATE deliveries SET last_error = $1, next_attempt_at = $2, lease_until = NULL,
                         state = CASE WHEN (SELECT status FROM digests g WHERE g.id = deliveries.digest_id) = 'cancelled'
                                      THEN 'cancelled' ELSE 'pending' END
                     WHERE id = $3 AND state = 'sending' AND lease_until = $4",
                )
                .bind(error)
                .bind(next_attempt_at)
                .bind(id)
                .bind(lease),
                Outcome::Failed {
                    id,
                    lease,
                    error,
                    permanent,
                } => sqlx::query(
                    "UPDATE deliveries SET state = 'failed', last_error = $1, lease_until = NULL, permanent = $2
                     WHERE id = $3 AND state = 'sending' AND lease_until = $4",
                )
                .bind(error)
                .bind(*permanent as i64)
                .bind(id)
                .bind(lease),
                Outcome::Skipped { id } => sqlx::query(
                    "UPDATE deliveries SET state = 'skipped', lease_until = NULL WHERE id = $1 AND state = 'sending'",
                )
                .bind(id),
                // Back to the queue without spending the attempt, or to 'cancelled' if its send
                // was cancelled meanwhile.
                Outcome::Released { id, lease } => sqlx::query(
                    "UPDATE deliveries SET lease_until = NULL,
                         attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                         state = CASE WHEN (SELECT status FROM digests g WHERE g.id = deliveries.digest_id) = 'cancelled'
                                      THEN 'cancelled' ELSE 'pending' END
                     WHERE id = $1 AND state = 'sending' AND lease_until = $2",
                )
                .bind(id)
                .bind(lease),
            };
            q.execute(&mut *tx)
                .await
                .context("failed to record delivery outcomes")?;
        }
        self.commit(tx).await?;
        Ok(())
    }

    /// Marks sending digests whose ledger has nothing left in flight as done, and only then
    /// counts their permanent failures toward each reader's `bounce_after`: a send stopped
    /// because the relay rejected everything never gets here, so it bounces nobody.
    pub async fn finish_digests(&self, bounce_after: u32) -> anyhow::Result<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let done: Vec<i64> = sqlx::query_scalar(
            "UPDATE digests SET status = 'done', finished_at = $1
             WHERE status = 'sending'
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.state IN ('pending', 'sending'))
             RETURNING id",
        )
        .bind(now_ms())
        .fetch_all(&mut *tx)
        .await?;
        for id in &done {
            sqlx::query(
                "UPDATE subscribers SET bounces = bounces + 1,
                     status = CASE WHEN bounces + 1 >= $2 AND status = 'confirmed' THEN 'bounced' ELSE status END
                 WHERE id IN (SELECT subscriber_id FROM deliveries
                              WHERE digest_id = $1 AND state = 'failed' AND permanent = 1 AND bounce_counted = 0)",
            )
            .bind(id)
            .bind(bounce_after as i64)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE deliveries SET bounce_counted = 1
                 WHERE digest_id = $1 AND state = 'failed' AND permanent = 1 AND bounce_counted = 0",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        self.commit(tx).await?;
        Ok(done)
    }

    /// When the next pending delivery becomes due (for sleeping until then), if any.
    pub async fn next_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(t) FROM (
                 SELECT (SELECT MIN(d.next_attempt_at) FROM deliveries d WHERE d.digest_id = g.id AND d.state = 'pending') AS t
                 FROM digests g WHERE g.status = 'sending'
                 UNION ALL
                 SELECT MIN(lease_until) FROM deliveries WHERE state = 'sending')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn queue_depth(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM digests g JOIN deliveries d ON d.digest_id = g.id
             WHERE g.status = 'sending' AND d.state IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
