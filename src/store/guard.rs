//! The send guard's SQL: a send's counts as it judges them, its one stop of a send (a
//! conditional update, so several processes stop it once), the fresh start a resume gives
//! it, and the mailbox providers whose readers wait.

use super::{GuardCounts, GuardStop, ProviderBackoff};

for_each_engine! {
    impl Db {
        /// The counts of sends that are sending (`Some(id)`: of that one, if it is).
        pub(crate) async fn guard_counts(&self, digest: Option<i64>) -> anyhow::Result<Vec<GuardCounts>> {
            Ok(sqlx::query_as::<_, GuardCounts>(
                "SELECT id, sent, rejected, hard_bounces, complaints, guard_base_delivered,
                        guard_base_hard, guard_base_complaints
                 FROM digests WHERE status = 'sending' AND ($1 IS NULL OR id = $1) ORDER BY id",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?)
        }

        /// Pauses a send for the guard with what it saw (`stop`): only while it is still
        /// sending and judged from the same resume (`base_delivered`). True for the one caller
        /// that paused it.
        pub(crate) async fn guard_pause(
            &self,
            digest: i64,
            stop: &GuardStop,
            base_delivered: i64,
            message: &str,
            now: i64,
        ) -> anyhow::Result<bool> {
            let n = sqlx::query(
                "UPDATE digests SET status = 'paused', error = $1, guard_reason = $2, guard_count = $3,
                     guard_delivered = $4, guard_limit = $5, guard_at = $6
                 WHERE id = $7 AND status = 'sending' AND guard_base_delivered = $8",
            )
            .bind(message)
            .bind(&stop.reason)
            .bind(stop.count)
            .bind(stop.delivered)
            .bind(stop.limit)
            .bind(now)
            .bind(digest)
            .bind(base_delivered)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        /// An editor resumes a send the guard paused: from here it is judged only on what is
        /// delivered after the resume, so the numbers that stopped it do not stop it again.
        pub(crate) async fn rearm_guard(conn: &mut Conn, digest: i64) -> anyhow::Result<()> {
            sqlx::query(
                "UPDATE digests SET guard_base_delivered = sent + rejected, guard_base_hard = hard_bounces,
                     guard_base_complaints = complaints, guard_reason = NULL, guard_count = NULL,
                     guard_delivered = NULL, guard_limit = NULL
                 WHERE id = $1 AND status = 'paused' AND guard_reason IS NOT NULL",
            )
            .bind(digest)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// A send's refusals go back to the queue (retry, resume after a stop): its counts
        /// forget them, and the retry counts again whatever it meets. The guard's baselines
        /// (taken at a resume) move down with them, or later bounces would hide below them.
        pub(crate) async fn forget_refusals(conn: &mut Conn, digest: i64) -> anyhow::Result<()> {
            let refused: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM deliveries
                 WHERE digest_id = $1 AND state = 'failed' AND permanent = 1
                   AND (subscriber_id <= 0 OR subscriber_id IN (SELECT id FROM subscribers WHERE status = 'confirmed'))",
            )
            .bind(digest)
            .fetch_one(&mut *conn)
            .await?;
            if refused > 0 {
                sqlx::query(
                    "UPDATE digests SET rejected = CASE WHEN rejected > $1 THEN rejected - $1 ELSE 0 END,
                         hard_bounces = CASE WHEN hard_bounces > $1 THEN hard_bounces - $1 ELSE 0 END,
                         guard_base_delivered = CASE WHEN guard_base_delivered > $1 THEN guard_base_delivered - $1 ELSE 0 END,
                         guard_base_hard = CASE WHEN guard_base_hard > $1 THEN guard_base_hard - $1 ELSE 0 END
                     WHERE id = $2",
                )
                .bind(refused)
                .bind(digest)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        /// Every provider backoff on record (a handful of rows at most: one per provider).
        pub(crate) async fn provider_backoffs(&self) -> anyhow::Result<Vec<ProviderBackoff>> {
            Ok(sqlx::query_as::<_, ProviderBackoff>(
                "SELECT provider, until_at, level, deferred, judged, since FROM provider_backoffs ORDER BY provider",
            )
            .fetch_all(&self.pool)
            .await?)
        }

        /// Starts `b`, unless another process started one since this one read the row at
        /// `prev_level` (or its backoff has not ended). True when this call started it.
        pub(crate) async fn trip_provider(&self, b: &ProviderBackoff, prev_level: i64) -> anyhow::Result<bool> {
            let row: Option<i64> = sqlx::query_scalar(
                "INSERT INTO provider_backoffs (provider, until_at, level, deferred, judged, since)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (provider) DO UPDATE SET until_at = excluded.until_at, level = excluded.level,
                     deferred = excluded.deferred, judged = excluded.judged, since = excluded.since
                 WHERE provider_backoffs.until_at <= $6 AND provider_backoffs.level = $7
                 RETURNING level",
            )
            .bind(&b.provider)
            .bind(b.until_at)
            .bind(b.level)
            .bind(b.deferred)
            .bind(b.judged)
            .bind(b.since)
            .bind(prev_level)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.is_some())
        }

        /// A provider answers again: its backoff (ended by `now`) is forgotten, and the next
        /// one starts from the first wait.
        pub(crate) async fn calm_provider(&self, provider: &str, now: i64) -> anyhow::Result<()> {
            sqlx::query("DELETE FROM provider_backoffs WHERE provider = $1 AND until_at <= $2")
                .bind(provider)
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(())
        }
    }
}
