//! All SQL lives here. One `Store` over SQLite (WAL) today; its methods are the seam a
//! PostgreSQL implementation slots in behind.
//!
//! Queries are checked at run time (`query_as` + `FromRow`), so the crate builds without a
//! database and one test suite can drive every engine.

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::domain::SubscriberEmail;

mod models;
pub use models::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A pending sign-up gets another confirmation email at most this often.
pub const CONFIRM_RESEND_MS: i64 = 10 * 60 * 1000;

/// Milliseconds since the Unix epoch: the one time unit in the store.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
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
        // SQLite serialises writers; a handful of connections is plenty for readers.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open database {url}"))?;
        let store = Store { pool };
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

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    // ---------------------------------------------------------------- subscribers

    /// Records a sign-up. Returns the subscriber and the consent time its confirm link must
    /// carry, or `None` when the address is already confirmed (nothing to send; the caller
    /// answers exactly as for a new address).
    pub async fn subscribe(
        &self,
        email: &SubscriberEmail,
        name: &str,
        source: &str,
        now: i64,
    ) -> anyhow::Result<Option<(i64, i64)>> {
        // A sign-up for a known address changes nothing a stranger could abuse: the name is
        // taken only with a fresh consent, and a confirmation is re-sent at most every
        // CONFIRM_RESEND_MS.
        let row = sqlx::query(
            "INSERT INTO subscribers (email, email_norm, name, status, source, created_at, consented_at, confirm_sent_at)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?5, ?5)
             ON CONFLICT (email_norm) DO UPDATE SET
                 name = CASE WHEN status IN ('unsubscribed', 'bounced') THEN ?3 ELSE name END,
                 source = CASE WHEN status IN ('unsubscribed', 'bounced') THEN ?4 ELSE source END,
                 consented_at = CASE WHEN status IN ('unsubscribed', 'bounced') THEN ?5 ELSE consented_at END,
                 confirm_sent_at = CASE
                     WHEN status IN ('unsubscribed', 'bounced') THEN ?5
                     WHEN status = 'pending' AND COALESCE(confirm_sent_at, 0) <= ?5 - ?6 THEN ?5
                     ELSE confirm_sent_at END,
                 status = CASE WHEN status IN ('unsubscribed', 'bounced') THEN 'pending' ELSE status END
             RETURNING id, status, consented_at, confirm_sent_at",
        )
        .bind(email.as_str())
        .bind(email.normalized())
        .bind(name)
        .bind(source)
        .bind(now)
        .bind(CONFIRM_RESEND_MS)
        .fetch_one(&self.pool)
        .await
        .context("failed to store the subscription")?;
        let status: String = row.get("status");
        let sent_at: Option<i64> = row.get("confirm_sent_at");
        Ok((status == "pending" && sent_at == Some(now))
            .then(|| (row.get("id"), row.get("consented_at"))))
    }

    /// Confirms the sign-up a confirm token was issued for.
    pub async fn confirm(&self, id: i64, issued: i64, now: i64) -> anyhow::Result<ConfirmOutcome> {
        let row = sqlx::query("SELECT status, consented_at FROM subscribers WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(ConfirmOutcome::Unknown);
        };
        let (status, consented): (String, i64) = (row.get("status"), row.get("consented_at"));
        if consented != issued {
            return Ok(ConfirmOutcome::Stale);
        }
        match status.as_str() {
            "confirmed" => Ok(ConfirmOutcome::AlreadyConfirmed),
            "pending" => {
                sqlx::query(
                    "UPDATE subscribers SET status = 'confirmed', confirmed_at = ?, bounces = 0
                     WHERE id = ? AND status = 'pending' AND consented_at = ?",
                )
                .bind(now)
                .bind(id)
                .bind(issued)
                .execute(&self.pool)
                .await
                .context("failed to confirm")?;
                Ok(ConfirmOutcome::Confirmed)
            }
            _ => Ok(ConfirmOutcome::Stale),
        }
    }

    /// Unsubscribes at once. Idempotent; returns whether anything changed.
    pub async fn unsubscribe(&self, id: i64, now: i64) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?
             WHERE id = ? AND status IN ('pending', 'confirmed')",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .context("failed to unsubscribe")?;
        Ok(r.rows_affected() > 0)
    }

    /// Adds (or re-confirms) subscribers in one transaction; `confirmed` means the operator
    /// vouches for consent given elsewhere. Returns (added, already present).
    pub async fn import(
        &self,
        rows: &[(SubscriberEmail, String)],
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
        conn.commit().await?;
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

    /// GDPR erasure: the row goes; ledger rows keep only the number, which now points nowhere.
    /// Pending deliveries to them are skipped.
    pub async fn erase_subscriber(&self, email: &SubscriberEmail) -> anyhow::Result<bool> {
        let mut conn = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM subscribers WHERE email_norm = ?")
            .bind(email.normalized())
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(id) = id {
            let r: anyhow::Result<()> = async {
                sqlx::query("UPDATE deliveries SET state = 'skipped' WHERE subscriber_id = ? AND state IN ('pending', 'sending')")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM subscribers WHERE id = ?").bind(id).execute(&mut *conn).await?;
                Ok(())
            }
            .await;
            r.context("failed to erase subscriber")?;
        }
        conn.commit().await?;
        Ok(id.is_some())
    }

    // ---------------------------------------------------------------- articles

    /// Stores an article; an article already known (same guid, else same URL) is updated in
    /// place and keeps its arrival order, so an edit never makes it "new" again.
    pub async fn upsert_article(&self, a: &NewArticle) -> anyhow::Result<(i64, bool)> {
        let key = match &a.guid {
            Some(g) if !g.is_empty() => format!("guid:{g}"),
            _ => format!("url:{}", a.url),
        };
        let now = now_ms();
        let mut conn = self.begin_write().await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM articles WHERE dedup_key = ?1 OR (?2 AND url = ?3) ORDER BY id LIMIT 1",
        )
        .bind(&key)
        // An article pushed without a guid matches one we already know by URL.
        .bind(a.guid.as_deref().unwrap_or("").is_empty())
        .bind(&a.url)
        .fetch_optional(&mut *conn)
        .await?;
        let tags = serde_json::to_string(&a.tags)?;
        let res: anyhow::Result<(i64, bool)> = async {
            if let Some(id) = existing {
                sqlx::query(
                    "UPDATE articles SET title = ?, author = ?, summary = ?, content_html = ?, image = ?,
                     tags = ?, published_at = COALESCE(?, published_at), updated_at = ? WHERE id = ?",
                )
                .bind(&a.title)
                .bind(&a.author)
                .bind(&a.summary)
                .bind(&a.content_html)
                .bind(&a.image)
                .bind(&tags)
                .bind(a.published_at)
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
                Ok((id, false))
            } else {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO articles (dedup_key, guid, url, title, author, summary, content_html, image, tags,
                                           published_at, source, arrived_at, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(&key)
                .bind(&a.guid)
                .bind(&a.url)
                .bind(&a.title)
                .bind(&a.author)
                .bind(&a.summary)
                .bind(&a.content_html)
                .bind(&a.image)
                .bind(&tags)
                .bind(a.published_at)
                .bind(&a.source)
                .bind(now)
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
                Ok((id, true))
            }
        }
        .await;
        let v = res.context("failed to store article")?;
        conn.commit().await?;
        Ok(v)
    }

    /// The articles the next digest of `schedule` would carry (newest first).
    pub async fn pending_articles(
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
            sqlx::query_scalar("SELECT watermark FROM schedule_state WHERE name = ?")
                .bind(schedule)
                .fetch_optional(&mut *conn)
                .await?;
        let rows = match watermark.flatten() {
            Some(w) => {
                sqlx::query_as::<_, Article>(
                    "SELECT * FROM articles WHERE id > ? ORDER BY id DESC LIMIT ?",
                )
                .bind(w)
                .bind(max as i64)
                .fetch_all(&mut *conn)
                .await?
            }
            // A schedule's first digest covers one period, not the whole archive.
            None => {
                sqlx::query_as::<_, Article>(
                    "SELECT * FROM articles WHERE arrived_at >= ? ORDER BY id DESC LIMIT ?",
                )
                .bind(first_since)
                .bind(max as i64)
                .fetch_all(&mut *conn)
                .await?
            }
        };
        Ok(rows)
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

    /// Creates a digest and its whole audience in one transaction.
    ///
    /// Under the write lock: a scheduled slot that already has a digest returns it; otherwise
    /// the new articles are read, `build` renders them, the digest is stored, one ledger row
    /// per confirmed subscriber is written (the audience is fixed here) and the schedule's
    /// watermark moves past every article that has arrived. Two triggers at once therefore
    /// produce one digest and one "nothing new".
    pub async fn create_digest<F>(
        &self,
        req: DigestRequest<'_>,
        build: F,
    ) -> anyhow::Result<DigestOutcome>
    where
        F: FnOnce(&[Article]) -> anyhow::Result<RenderedDigest>,
    {
        let mut conn = self.begin_write().await?;
        let out = Self::create_digest_tx(&mut conn, req, build).await?;
        conn.commit().await?;
        Ok(out)
    }

    async fn create_digest_tx<F>(
        conn: &mut sqlx::SqliteConnection,
        req: DigestRequest<'_>,
        build: F,
    ) -> anyhow::Result<DigestOutcome>
    where
        F: FnOnce(&[Article]) -> anyhow::Result<RenderedDigest>,
    {
        if let Some(slot) = req.slot {
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM digests WHERE schedule = ? AND slot = ?")
                    .bind(req.schedule)
                    .bind(slot)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let Some(id) = existing {
                return Ok(DigestOutcome::Exists(id));
            }
        }
        let articles =
            Self::select_new_articles(conn, req.schedule, req.first_since, req.max_articles)
                .await?;
        let advance = |slot: Option<i64>, watermark: Option<i64>| {
            sqlx::query(
                "INSERT INTO schedule_state (name, last_slot, watermark) VALUES (?1, COALESCE(?2, ?4), ?3)
                 ON CONFLICT (name) DO UPDATE SET
                     last_slot = MAX(last_slot, COALESCE(?2, last_slot)),
                     watermark = COALESCE(?3, watermark)",
            )
            .bind(req.schedule)
            .bind(slot)
            .bind(watermark)
            .bind(now_ms())
        };
        if articles.is_empty() {
            if req.test_to.is_none() {
                advance(req.slot, None).execute(&mut *conn).await?;
            }
            return Ok(DigestOutcome::NothingNew);
        }
        let rendered = build(&articles)?;
        let now = now_ms();
        let ids: Vec<i64> = articles.iter().map(|a| a.id).collect();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO digests (schedule, kind, slot, subject, html, text, preheader, article_ids, test_to, status, created_at, started_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'sending', ?, ?) RETURNING id",
        )
        .bind(req.schedule)
        .bind(req.kind.as_str())
        .bind(req.slot)
        .bind(&rendered.subject)
        .bind(&rendered.html)
        .bind(&rendered.text)
        .bind(&rendered.preheader)
        .bind(serde_json::to_string(&ids)?)
        .bind(req.test_to)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        let web_url = format!("{}{id}", req.web_prefix);
        sqlx::query("UPDATE digests SET html = replace(html, ?1, ?2), text = replace(text, ?1, ?2) WHERE id = ?3")
            .bind(req.web_slot)
            .bind(&web_url)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        let total = if req.test_to.is_some() {
            sqlx::query(
                "INSERT INTO deliveries (digest_id, subscriber_id, state) VALUES (?, 0, 'pending')",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        } else {
            let n = sqlx::query(
                "INSERT INTO deliveries (digest_id, subscriber_id, state)
                 SELECT ?, id, 'pending' FROM subscribers WHERE status = 'confirmed' ORDER BY id",
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
        sqlx::query("UPDATE digests SET total = ?, status = ?, finished_at = CASE WHEN ? = 'done' THEN ? END WHERE id = ?")
            .bind(total as i64)
            .bind(status)
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
            "SELECT id, subject, created_at FROM digests WHERE kind <> 'test' AND status <> 'cancelled' ORDER BY id DESC LIMIT ?",
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
    pub async fn set_digest_status(&self, id: i64, to: &str) -> anyhow::Result<bool> {
        let now = now_ms();
        let r = match to {
            "paused" => sqlx::query("UPDATE digests SET status = 'paused' WHERE id = ? AND status IN ('queued', 'sending')")
                .bind(id)
                .execute(&self.pool)
                .await?,
            "sending" => sqlx::query("UPDATE digests SET status = 'sending', error = NULL WHERE id = ? AND status IN ('paused', 'failed')")
                .bind(id)
                .execute(&self.pool)
                .await?,
            "cancelled" => {
                let r = sqlx::query(
                    "UPDATE digests SET status = 'cancelled', finished_at = ? WHERE id = ? AND status IN ('queued', 'sending', 'paused', 'failed')",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                sqlx::query("UPDATE deliveries SET state = 'cancelled' WHERE digest_id = ? AND state = 'pending'")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                r
            }
            _ => anyhow::bail!("unknown digest status {to}"),
        };
        Ok(r.rows_affected() > 0)
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

    /// Puts a send's failed deliveries back in the queue.
    pub async fn retry_failed(&self, id: i64) -> anyhow::Result<u64> {
        let mut conn = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0
             WHERE digest_id = ? AND state = 'failed'
               AND (subscriber_id = 0 OR subscriber_id IN (SELECT id FROM subscribers WHERE status = 'confirmed'))",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n > 0 {
            sqlx::query("UPDATE digests SET status = 'sending', error = NULL, finished_at = NULL WHERE id = ? AND status <> 'cancelled'")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        conn.commit().await?;
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
    pub async fn record(&self, outcomes: &[Outcome], bounce_after: u32) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut conn = self.begin_write().await?;
        let res: anyhow::Result<()> = async {
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
                    "UPDATE deliveries SET state = 'sent', message_id = v.column2, sent_at = v.column3,
                         lease_until = NULL, last_error = NULL
                     FROM (",
                );
                qb.push_values(chunk, |mut b, (id, mid, at)| {
                    b.push_bind(**id).push_bind(mid.as_str()).push_bind(**at);
                });
                qb.push(") AS v WHERE deliveries.id = v.column1");
                qb.build().execute(&mut *conn).await?;
            }
            for o in outcomes {
                match o {
                    Outcome::Sent { .. } => {}
                    Outcome::Retry { id, lease, error, next_attempt_at } => {
                        sqlx::query(
                            "UPDATE deliveries SET last_error = ?, next_attempt_at = ?, lease_until = NULL,
                                 state = CASE WHEN (SELECT status FROM digests g WHERE g.id = deliveries.digest_id) = 'cancelled'
                                              THEN 'cancelled' ELSE 'pending' END
                             WHERE id = ? AND state = 'sending' AND lease_until = ?",
                        )
                        .bind(error)
                        .bind(next_attempt_at)
                        .bind(id)
                        .bind(lease)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Outcome::Failed { id, lease, subscriber_id, error, permanent } => {
                        let r = sqlx::query(
                            "UPDATE deliveries SET state = 'failed', last_error = ?, lease_until = NULL
                             WHERE id = ? AND state = 'sending' AND lease_until = ?",
                        )
                        .bind(error)
                        .bind(id)
                        .bind(lease)
                        .execute(&mut *conn)
                        .await?;
                        if *permanent && *subscriber_id != 0 && r.rows_affected() > 0 {
                            sqlx::query(
                                "UPDATE subscribers SET bounces = bounces + 1,
                                     status = CASE WHEN bounces + 1 >= ? AND status = 'confirmed' THEN 'bounced' ELSE status END
                                 WHERE id = ?",
                            )
                            .bind(bounce_after as i64)
                            .bind(subscriber_id)
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                    Outcome::Skipped { id } => {
                        sqlx::query("UPDATE deliveries SET state = 'skipped', lease_until = NULL WHERE id = ?")
                            .bind(id)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Outcome::Released { id, lease } => {
                        // Back to the queue, or to 'cancelled' if its send was cancelled meanwhile.
                        sqlx::query(
                            "UPDATE deliveries SET lease_until = NULL, attempts = MAX(attempts - 1, 0),
                                 state = CASE WHEN (SELECT status FROM digests g WHERE g.id = deliveries.digest_id) = 'cancelled'
                                              THEN 'cancelled' ELSE 'pending' END
                             WHERE id = ? AND state = 'sending' AND lease_until = ?",
                        )
                        .bind(id)
                        .bind(lease)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        res.context("failed to record delivery outcomes")?;
        conn.commit().await?;
        Ok(())
    }

    /// Marks sending digests whose ledger has nothing left in flight as done.
    pub async fn finish_digests(&self) -> anyhow::Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE digests SET status = 'done', finished_at = ?
             WHERE status = 'sending'
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.state IN ('pending', 'sending'))
             RETURNING id",
        )
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?)
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
