//! Schedules' state, and the turns every process shares: feed polls and the sending rate.

use std::time::Duration;

use anyhow::Context;

use super::{ScheduleState, clock::now_ms};

for_each_engine! {
    impl Db {
        pub(crate) async fn schedule_last_slot(&self, name: &str) -> anyhow::Result<Option<i64>> {
            Ok(
                sqlx::query_scalar("SELECT last_slot FROM schedule_state WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?,
            )
        }

        /// Records that `slot` was handled (fired, or skipped as too late) without a digest.
        pub(crate) async fn mark_slot(&self, name: &str, slot: i64) -> anyhow::Result<()> {
            sqlx::query(
                "INSERT INTO schedule_state (name, last_slot) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET last_slot =
                     CASE WHEN schedule_state.last_slot > $2 THEN schedule_state.last_slot ELSE $2 END",
            )
            .bind(name)
            .bind(slot)
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        /// Makes a schedule's next digest start from the first article (the demo uses this).
        pub(crate) async fn reset_schedule(&self, name: &str) -> anyhow::Result<()> {
            sqlx::query(
                "INSERT INTO schedule_state (name, last_slot, watermark) VALUES ($1, $2, 0)
                 ON CONFLICT (name) DO UPDATE SET watermark = 0",
            )
            .bind(name)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        /// Pauses or resumes a schedule: while paused, its slots pass without a digest.
        pub(crate) async fn set_schedule_paused(&self, name: &str, paused: bool) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO schedule_state (name, last_slot, paused) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET paused = $3",
            )
            .bind(name)
            .bind(now_ms())
            .bind(paused as i64)
            .execute(&mut *tx)
            .await?;
            self.commit(tx).await
        }

        pub(crate) async fn schedule_states(&self) -> anyhow::Result<Vec<ScheduleState>> {
            Ok(sqlx::query_as::<_, ScheduleState>(
                "SELECT name, last_slot, watermark, paused FROM schedule_state ORDER BY name",
            )
            .fetch_all(&self.pool)
            .await?)
        }

        /// Whether this process polls `url` now: true for one process per `every`, whichever
        /// asks first once the feed is due (the row's update decides, under its lock).
        pub(crate) async fn take_feed_turn(
            &self,
            url: &str,
            every: Duration,
            now: i64,
        ) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            sqlx::query("INSERT INTO feed_polls (url, next_poll_at) VALUES ($1, 0) ON CONFLICT (url) DO NOTHING")
                .bind(url)
                .execute(&mut *tx)
                .await?;
            let taken = sqlx::query(
                "UPDATE feed_polls SET next_poll_at = $2 WHERE url = $1 AND next_poll_at <= $3",
            )
            .bind(url)
            .bind(now + every.as_millis() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("cannot take a feed's turn")?
            .rows_affected()
                > 0;
            self.commit(tx).await?;
            Ok(taken)
        }

        /// Reserves `n` send times `interval_us` apart for the whole deployment and returns
        /// the first (microseconds since the epoch). Every process paces its sends from this
        /// one row, so `delivery.max_per_second` holds however many workers run.
        pub(crate) async fn reserve_sends(
            &self,
            n: i64,
            interval_us: f64,
            now_us: i64,
        ) -> anyhow::Result<i64> {
            let span = (n as f64 * interval_us).round() as i64;
            let mut tx = self.begin_write().await?;
            sqlx::query("INSERT INTO pacing (name, next_at) VALUES ('delivery', $1) ON CONFLICT (name) DO NOTHING")
                .bind(now_us)
                .execute(&mut *tx)
                .await?;
            let end: i64 = sqlx::query_scalar(
                "UPDATE pacing SET next_at = CASE WHEN next_at > $1 THEN next_at ELSE $1 END + $2
                 WHERE name = 'delivery' RETURNING next_at",
            )
            .bind(now_us)
            .bind(span)
            .fetch_one(&mut *tx)
            .await
            .context("cannot reserve send times")?;
            self.commit(tx).await?;
            Ok(end - span)
        }
    }
}
