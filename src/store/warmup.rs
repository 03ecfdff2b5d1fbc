//! A warm-up's allowance, shared by every process: each day's messages per mailbox provider,
//! taken a few at a time, and what a send held back for it.

for_each_engine! {
    impl Db {
        /// Takes up to `want` of `provider`'s allowance on `day` (the newsroom's date), whose
        /// cap is `cap`: what was granted (0 once it is used up).
        pub(crate) async fn warmup_take(
            &self,
            day: &str,
            provider: &str,
            want: i64,
            cap: i64,
        ) -> anyhow::Result<i64> {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO warmup_days (day, provider, taken) VALUES ($1, $2, 0)
                 ON CONFLICT (day, provider) DO NOTHING",
            )
            .bind(day)
            .bind(provider)
            .execute(&mut *tx)
            .await?;
            // The first update locks the row (PostgreSQL; SQLite's writer is alone already),
            // so the second cannot hand out what another process took meanwhile.
            let taken: i64 = sqlx::query_scalar(
                "UPDATE warmup_days SET taken = taken WHERE day = $1 AND provider = $2 RETURNING taken",
            )
            .bind(day)
            .bind(provider)
            .fetch_one(&mut *tx)
            .await?;
            let granted = want.min(cap - taken).max(0);
            if granted > 0 {
                sqlx::query(
                    "UPDATE warmup_days SET taken = taken + $3 WHERE day = $1 AND provider = $2",
                )
                .bind(day)
                .bind(provider)
                .bind(granted)
                .execute(&mut *tx)
                .await?;
            }
            self.commit(tx).await?;
            Ok(granted)
        }

        /// Gives back `n` unused of `provider`'s allowance on `day`.
        pub(crate) async fn warmup_return(&self, day: &str, provider: &str, n: i64) -> anyhow::Result<()> {
            sqlx::query(
                "UPDATE warmup_days SET taken = CASE WHEN taken > $3 THEN taken - $3 ELSE 0 END
                 WHERE day = $1 AND provider = $2",
            )
            .bind(day)
            .bind(provider)
            .bind(n)
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        /// The warm-up's first day (the newsroom's date), if anything was sent under it.
        pub(crate) async fn warmup_first_day(&self) -> anyhow::Result<Option<String>> {
            Ok(sqlx::query_scalar("SELECT MIN(day) FROM warmup_days")
                .fetch_one(&self.pool)
                .await?)
        }

        /// What a send's warm-up held back: (provider, waiting or skipped, messages).
        pub(crate) async fn warmup_held(&self, digest: i64) -> anyhow::Result<Vec<(String, String, i64)>> {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT substr(last_error, 8), state, CAST(COUNT(*) AS BIGINT) FROM deliveries
                 WHERE digest_id = $1 AND state IN ('pending', 'skipped') AND last_error LIKE 'warmup:%'
                 GROUP BY last_error, state ORDER BY 1, 2",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows)
        }

        /// Messages of a send each relay took: (relay, messages).
        pub(crate) async fn relay_counts(&self, digest: i64) -> anyhow::Result<Vec<(String, i64)>> {
            Ok(sqlx::query_as(
                "SELECT relay, CAST(COUNT(*) AS BIGINT) FROM deliveries
                 WHERE digest_id = $1 AND state = 'sent' AND relay IS NOT NULL
                 GROUP BY relay ORDER BY relay",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
