//! Breaking-news alerts: an urgent article's alert from arrival to its send, and which readers
//! already had which article as an alert (their digest leaves it out).
//!
//! An alert's send is a digest row (`schedule` = [`ALERT_SCHEDULE`], `slot` = the alert's
//! id, so two processes starting it make one) with one ledger row per reader: every guarantee
//! of the ledger holds for it as for a digest. Starting it takes the readers' choices lock,
//! as a digest fixing its audience does, so a digest sees every alert started before it.

use super::{
    ALERT_SCHEDULE, Alert, AlertPlanner, AlertReader, Alerted, RenderedDigest, RenderedEdition,
    clock::now_ms, shared::CHOICES_LOCK,
};

/// The alerts' lock: one start or decision at a time.
const ALERTS_LOCK: &str = "alerts";

/// Rows an alert's audience is written in, per statement: two parameters a row, under
/// SQLite's 32,766 and PostgreSQL's 65,535. Few large statements: over TLS each one can
/// stall ~40 ms on a partial record (Nagle and the server's delayed ACK), which at 500 rows
/// a statement made 100,000 readers wait 10 s for their alert (docs/benchmark.md).
const ROWS_PER_INSERT: usize = 10_000;

for_each_engine! {
    impl Db {
        /// The alert of an urgent article, once per article: waiting for an editor, or with
        /// `approved` starting at once. Only an article that arrived since `fresh_since` gets
        /// one (an old article marked urgent by an edit is not news). `None` when it has one
        /// already or is not fresh.
        pub(crate) async fn create_alert(
            &self,
            article: i64,
            approved: bool,
            fresh_since: i64,
        ) -> anyhow::Result<Option<i64>> {
            let now = now_ms();
            Ok(sqlx::query_scalar(
                "INSERT INTO alerts (article_id, status, created_at, decided_at, decided_by, send_at)
                 SELECT id, $2, $3, $4, $5, $4 FROM articles WHERE id = $1 AND arrived_at >= $6
                 ON CONFLICT (article_id) DO NOTHING RETURNING id",
            )
            .bind(article)
            .bind(if approved { "approved" } else { "waiting" })
            .bind(now)
            .bind(approved.then_some(now))
            .bind(approved.then_some("auto"))
            .bind(fresh_since)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// The latest alerts, newest first.
        pub(crate) async fn alerts(&self, limit: i64) -> anyhow::Result<Vec<Alert>> {
            Ok(sqlx::query_as::<_, Alert>(
                "SELECT l.id, l.article_id, a.title, a.url, l.status, l.created_at, l.decided_at,
                        l.decided_by, l.send_at, l.digest_id
                 FROM alerts l JOIN articles a ON a.id = l.article_id
                 ORDER BY l.id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        }

        pub(crate) async fn alert(&self, id: i64) -> anyhow::Result<Option<Alert>> {
            Ok(sqlx::query_as::<_, Alert>(
                "SELECT l.id, l.article_id, a.title, a.url, l.status, l.created_at, l.decided_at,
                        l.decided_by, l.send_at, l.digest_id
                 FROM alerts l JOIN articles a ON a.id = l.article_id WHERE l.id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// An editor's «أرسل»: a waiting alert starts at `send_at`. False when it is not
        /// waiting.
        pub(crate) async fn approve_alert(&self, id: i64, by: &str, send_at: i64) -> anyhow::Result<bool> {
            Ok(sqlx::query(
                "UPDATE alerts SET status = 'approved', decided_at = $1, decided_by = $2, send_at = $3
                 WHERE id = $4 AND status = 'waiting'",
            )
            .bind(now_ms())
            .bind(by)
            .bind(send_at)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1)
        }

        /// «تراجع» (or dismissing one waiting): nothing of it is sent. False once it started.
        pub(crate) async fn cancel_alert(&self, id: i64, by: &str) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            Db::lock(&mut tx, ALERTS_LOCK).await?;
            let n = sqlx::query(
                "UPDATE alerts SET status = 'cancelled', decided_at = $1, decided_by = $2
                 WHERE id = $3 AND status IN ('waiting', 'approved')",
            )
            .bind(now_ms())
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            self.commit(tx).await?;
            Ok(n == 1)
        }

        /// Approved alerts whose undo window has ended, oldest first.
        pub(crate) async fn due_alerts(&self, now: i64) -> anyhow::Result<Vec<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT id FROM alerts WHERE status = 'approved' AND send_at <= $1 ORDER BY send_at, id LIMIT 100",
            )
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
        }

        /// When the next approved alert starts, if one is approved.
        pub(crate) async fn next_alert_at(&self) -> anyhow::Result<Option<i64>> {
            Ok(sqlx::query_scalar("SELECT MIN(send_at) FROM alerts WHERE status = 'approved'")
                .fetch_one(&self.pool)
                .await?)
        }

        /// Confirmed readers who take alerts.
        pub(crate) async fn alert_readers(&self) -> anyhow::Result<Vec<AlertReader>> {
            let mut conn = self.pool.acquire().await?;
            Db::select_alert_readers(&mut conn).await
        }

        async fn select_alert_readers(conn: &mut Conn) -> anyhow::Result<Vec<AlertReader>> {
            Ok(sqlx::query_as::<_, AlertReader>(
                "SELECT id, timezone, alerts_per_day AS per_day FROM subscribers
                 WHERE alerts = 1 AND status = 'confirmed' ORDER BY id",
            )
            .fetch_all(&mut *conn)
            .await?)
        }

        /// (reader, when) of every alert message sent or to be sent since `since`: the
        /// readers' budgets are counted from these.
        pub(crate) async fn recent_alerts(&self, since: i64) -> anyhow::Result<Vec<(i64, i64)>> {
            let mut conn = self.pool.acquire().await?;
            Db::select_recent_alerts(&mut conn, since).await
        }

        async fn select_recent_alerts(conn: &mut Conn, since: i64) -> anyhow::Result<Vec<(i64, i64)>> {
            Ok(sqlx::query_as(
                "SELECT d.subscriber_id, COALESCE(d.not_before, g.created_at)
                 FROM digests g JOIN deliveries d ON d.digest_id = g.id
                 WHERE g.schedule = $1 AND g.created_at >= $2
                   AND d.state IN ('pending', 'sending', 'sent')",
            )
            .bind(ALERT_SCHEDULE)
            .bind(since)
            .fetch_all(&mut *conn)
            .await?)
        }

        /// Starts an approved alert: its send and one ledger row per reader `plan` picks from
        /// the readers who take alerts and their recent alerts (read in the same
        /// transaction, so two alerts starting at once count each other), in one transaction.
        /// `None` when it is no longer approved (cancelled, or started by another process).
        pub(crate) async fn start_alert(
            &self,
            id: i64,
            rendered: &RenderedDigest,
            recent_since: i64,
            plan: AlertPlanner<'_>,
        ) -> anyhow::Result<Option<(i64, i64)>> {
            let mut tx = self.begin_write().await?;
            Db::lock(&mut tx, ALERTS_LOCK).await?;
            Db::lock(&mut tx, CHOICES_LOCK).await?;
            let taken = sqlx::query("UPDATE alerts SET status = 'sent' WHERE id = $1 AND status = 'approved'")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if taken == 0 {
                return Ok(None);
            }
            let readers = Db::select_alert_readers(&mut tx).await?;
            let recent = Db::select_recent_alerts(&mut tx, recent_since).await?;
            let rows = plan(&readers, &recent);
            let now = now_ms();
            let digest: i64 = sqlx::query_scalar(
                "INSERT INTO digests (schedule, kind, slot, subject, html, text, web_html, slot_key, preheader,
                                      article_ids, status, total, created_at, started_at, created_by)
                 VALUES ($1, 'manual', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, 'alert') RETURNING id",
            )
            .bind(ALERT_SCHEDULE)
            .bind(id)
            .bind(&rendered.subject)
            .bind(&rendered.html)
            .bind(&rendered.text)
            .bind(&rendered.web_html)
            .bind(&rendered.slot_key)
            .bind(&rendered.preheader)
            .bind(serde_json::to_string(&rendered.article_ids)?)
            .bind(if rows.is_empty() { "done" } else { "sending" })
            .bind(rows.len() as i64)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut qb = sqlx::QueryBuilder::<DB>::new(
                    "INSERT INTO deliveries (digest_id, subscriber_id, state, next_attempt_at, not_before)
                     SELECT ",
                );
                qb.push_bind(digest);
                qb.push(", column1, 'pending', COALESCE(column2, 0), column2 FROM (");
                qb.push_values(chunk, |mut b, (reader, at)| {
                    b.push_bind(*reader).push_bind(*at);
                });
                qb.push(") AS v");
                qb.build().execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE alerts SET digest_id = $1 WHERE id = $2")
                .bind(digest)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            self.commit(tx).await?;
            Ok(Some((digest, rows.len() as i64)))
        }

        /// (reader, article, their sections for `schedule`) for every article of `articles` a
        /// reader had, or is about to have, as an alert: their digest leaves it out.
        pub(crate) async fn alerted(&self, schedule: &str, articles: &[i64]) -> anyhow::Result<Vec<Alerted>> {
            let mut conn = self.pool.acquire().await?;
            Db::select_alerted(&mut conn, schedule, articles).await
        }

        pub(crate) async fn select_alerted(
            conn: &mut Conn,
            schedule: &str,
            articles: &[i64],
        ) -> anyhow::Result<Vec<Alerted>> {
            if articles.is_empty() {
                return Ok(vec![]);
            }
            let mut qb = sqlx::QueryBuilder::<DB>::new(
                "SELECT d.subscriber_id, l.article_id, COALESCE(o.sections, s.sections) FROM alerts l
                 JOIN deliveries d ON d.digest_id = l.digest_id
                 JOIN subscribers s ON s.id = d.subscriber_id
                 LEFT JOIN schedule_sections o ON o.subscriber_id = s.id AND o.schedule = ",
            );
            qb.push_bind(schedule);
            qb.push(" WHERE d.state IN ('pending', 'sending', 'sent') AND l.article_id IN (");
            let mut sep = qb.separated(", ");
            for a in articles {
                sep.push_bind(*a);
            }
            qb.push(") ORDER BY d.subscriber_id, l.article_id");
            Ok(qb.build_query_as().fetch_all(&mut *conn).await?)
        }

        /// Moves readers who had some of the digest's articles as alerts to the edition made
        /// without them, or out of the audience when nothing is left for them. Returns how
        /// many rows were taken out.
        pub(crate) async fn leave_out_alerted(
            conn: &mut Conn,
            digest: i64,
            without: &[(String, Vec<i64>)],
            editions: &[RenderedEdition],
        ) -> anyhow::Result<u64> {
            let mut removed = 0;
            for (key, readers) in without {
                let edition = editions
                    .iter()
                    .position(|e| &e.sections == key)
                    .map(|i| i as i64 + 1);
                for chunk in readers.chunks(500) {
                    let mut qb = match edition {
                        Some(e) => {
                            let mut q = sqlx::QueryBuilder::<DB>::new("UPDATE deliveries SET edition = ");
                            q.push_bind(e);
                            q.push(" WHERE digest_id = ");
                            q
                        }
                        None => sqlx::QueryBuilder::<DB>::new("DELETE FROM deliveries WHERE digest_id = "),
                    };
                    qb.push_bind(digest);
                    qb.push(" AND subscriber_id IN (");
                    let mut sep = qb.separated(", ");
                    for r in chunk {
                        sep.push_bind(*r);
                    }
                    qb.push(")");
                    let n = qb.build().execute(&mut *conn).await?.rows_affected();
                    if edition.is_none() {
                        removed += n;
                    }
                }
            }
            Ok(removed)
        }
    }
}
