//! What the console's dashboard and lists read: readers by status, consent events over
//! time, the last sends.

use super::{SendSummary, SubscriberStatus};

for_each_engine! {
    impl Db {
        /// Readers by status (every status present, zero when none).
        pub(crate) async fn status_counts(&self) -> anyhow::Result<Vec<(SubscriberStatus, i64)>> {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM subscribers GROUP BY status")
                    .fetch_all(&self.pool)
                    .await?;
            Ok(SubscriberStatus::ALL
                .iter()
                .map(|s| {
                    let n = rows.iter().find(|(r, _)| r == s.as_str()).map_or(0, |(_, n)| *n);
                    (*s, n)
                })
                .collect())
        }

        /// Sign-ups and departures (unsubscribes, bounces) since `since`, counted per
        /// `bucket_ms` (the caller folds buckets into local days): (bucket start, event,
        /// count). Imports are not sign-ups, and the index keeps them out of the read.
        pub(crate) async fn consent_counts(
            &self,
            since: i64,
            bucket_ms: i64,
        ) -> anyhow::Result<Vec<(i64, String, i64)>> {
            Ok(sqlx::query_as(
                "SELECT CAST(at / $2 AS BIGINT) * $2, event, COUNT(*) FROM consent_events
                 WHERE event IN ('signup', 'unsubscribe', 'bounce') AND at >= $1
                 GROUP BY 1, 2 ORDER BY 1",
            )
            .bind(since)
            .bind(bucket_ms)
            .fetch_all(&self.pool)
            .await?)
        }

        /// The last sends, newest first; `before` (an id) pages back.
        pub(crate) async fn sends(&self, before: Option<i64>, limit: i64) -> anyhow::Result<Vec<SendSummary>> {
            Ok(sqlx::query_as::<_, SendSummary>(
                "SELECT id, schedule, kind, subject, status, total, sent, failed, bounced, created_at,
                        finished_at, created_by, starts_at, reason,
                        guard_reason, guard_count, guard_delivered, guard_limit
                 FROM digests WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
            )
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
