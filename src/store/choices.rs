//! Readers' choices: which schedules and sections each reader takes, saved from a sign-up or
//! the preferences page under the choices lock, and forgotten when the configuration drops
//! everything a reader chose; and their clock (time zone, alerts and how many a day), saved
//! with them from the preferences page.

use super::{Choice, ReaderClock, SubscriberStatus, shared::CHOICES_LOCK};
use crate::domain::ReaderZone;

for_each_engine! {
    impl Db {
        /// Saves a reader's choice inside the caller's transaction (a sign-up's, or the
        /// preferences page's), under the choices lock; the rows changed.
        pub(crate) async fn set_choice(conn: &mut Conn, id: i64, choice: &Choice) -> anyhow::Result<u64> {
            Db::lock(conn, CHOICES_LOCK).await?;
            let n = sqlx::query(
                "UPDATE subscribers SET schedules = $1, sections = $2
                 WHERE id = $3 AND status IN ('pending', 'confirmed')",
            )
            .bind(&choice.schedules)
            .bind(&choice.sections)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if n > 0 {
                sqlx::query("DELETE FROM schedule_sections WHERE subscriber_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                for (schedule, sections) in &choice.by_schedule {
                    sqlx::query(
                        "INSERT INTO schedule_sections (subscriber_id, schedule, sections) VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(schedule)
                    .bind(sections)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Ok(n)
        }

        /// Readers whose chosen schedules (or sections) are all gone from the configuration
        /// would get nothing (or an empty page of choices): they get everything again.
        /// Returns how many readers changed.
        pub(crate) async fn forget_lost_choices(
            &self,
            schedules: &[&str],
            sections: &[&str],
        ) -> anyhow::Result<u64> {
            let mut tx = self.begin_write().await?;
            Db::lock(&mut tx, CHOICES_LOCK).await?;
            let mut changed = 0;
            for (known, select, update) in [
                (
                    schedules,
                    "SELECT DISTINCT schedules FROM subscribers WHERE schedules IS NOT NULL",
                    "UPDATE subscribers SET schedules = NULL WHERE schedules = $1",
                ),
                (
                    sections,
                    "SELECT DISTINCT sections FROM subscribers WHERE sections IS NOT NULL",
                    "UPDATE subscribers SET sections = NULL WHERE sections = $1",
                ),
            ] {
                let lists: Vec<String> = sqlx::query_scalar(select).fetch_all(&mut *tx).await?;
                for list in lists {
                    if !list.split(',').any(|n| known.contains(&n)) {
                        changed += sqlx::query(update)
                            .bind(&list)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                }
            }
            // A schedule's own sections: gone with the schedule, or with every section in them.
            let own: Vec<(String, String)> =
                sqlx::query_as("SELECT DISTINCT schedule, sections FROM schedule_sections")
                    .fetch_all(&mut *tx)
                    .await?;
            for (schedule, list) in own {
                if !schedules.contains(&schedule.as_str())
                    || !list.split(',').any(|n| sections.contains(&n))
                {
                    changed += sqlx::query(
                        "DELETE FROM schedule_sections WHERE schedule = $1 AND sections = $2",
                    )
                    .bind(&schedule)
                    .bind(&list)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
            }
            self.commit(tx).await?;
            Ok(changed)
        }

        /// The benchmark's readers, spread over `slugs` by id, one section each.
        #[cfg(feature = "bench")]
        pub(crate) async fn spread_sections(&self, slugs: &[String]) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            for (i, slug) in slugs.iter().enumerate() {
                sqlx::query("UPDATE subscribers SET sections = $1 WHERE id % $2 = $3")
                    .bind(slug)
                    .bind(slugs.len() as i64)
                    .bind(i as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            self.commit(tx).await?;
            Ok(())
        }

        /// A reader's status and choice, for the preferences page.
        pub(crate) async fn reader_choice(
            &self,
            id: i64,
        ) -> anyhow::Result<Option<(SubscriberStatus, Choice)>> {
            let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT status, schedules, sections FROM subscribers WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            let Some((status, schedules, sections)) = row else {
                return Ok(None);
            };
            let by_schedule: Vec<(String, String)> = sqlx::query_as(
                "SELECT schedule, sections FROM schedule_sections WHERE subscriber_id = $1 ORDER BY schedule",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            Ok(Some((
                status.parse()?,
                Choice {
                    schedules,
                    sections,
                    by_schedule,
                },
            )))
        }

        /// Saves a reader's choice; the next digest made follows it. Returns false for a
        /// reader who is not (or no longer) subscribed.
        pub(crate) async fn set_reader_choice(&self, id: i64, choice: &Choice) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            let n = Db::set_choice(&mut tx, id, choice).await?;
            self.commit(tx).await?;
            Ok(n > 0)
        }

        /// A reader's time zone and alerts; `None` for nobody. A stored zone this build's
        /// database no longer knows reads as the newsroom's.
        pub(crate) async fn reader_clock(&self, id: i64) -> anyhow::Result<Option<ReaderClock>> {
            let mut conn = self.pool.acquire().await?;
            Db::clock(&mut conn, id).await
        }

        /// Saves what the preferences page chose, in one transaction: the choice (as
        /// [`Db::set_reader_choice`]) and the clock. Returns the clock as it was before, or
        /// `None` (nothing saved) for a reader who is not, or no longer, subscribed.
        pub(crate) async fn set_preferences(
            &self,
            id: i64,
            choice: &Choice,
            clock: &ReaderClock,
        ) -> anyhow::Result<Option<ReaderClock>> {
            let mut tx = self.begin_write().await?;
            // Read under the choices lock `set_choice` takes, so two saves at once each see
            // what the other left.
            if Db::set_choice(&mut tx, id, choice).await? == 0 {
                return Ok(None);
            }
            let Some(before) = Db::clock(&mut tx, id).await? else {
                return Ok(None);
            };
            Db::set_clock(&mut tx, id, clock).await?;
            self.commit(tx).await?;
            Ok(Some(before))
        }
    }

    impl Db {
        /// A reader's clock, on the caller's connection.
        async fn clock(conn: &mut Conn, id: i64) -> anyhow::Result<Option<ReaderClock>> {
            let row: Option<(Option<String>, i64, Option<i64>)> = sqlx::query_as(
                "SELECT timezone, alerts, alerts_per_day FROM subscribers WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(|(zone, alerts, per_day)| ReaderClock {
                zone: zone.as_deref().and_then(ReaderZone::parse),
                alerts: alerts != 0,
                alerts_per_day: per_day.and_then(|n| u32::try_from(n).ok()),
            }))
        }

        /// Writes a reader's clock in the caller's transaction.
        async fn set_clock(conn: &mut Conn, id: i64, clock: &ReaderClock) -> anyhow::Result<()> {
            sqlx::query(
                "UPDATE subscribers SET timezone = $1, alerts = $2, alerts_per_day = $3
                 WHERE id = $4 AND status IN ('pending', 'confirmed')",
            )
            .bind(clock.zone.map(|z| z.name()))
            .bind(i64::from(clock.alerts))
            .bind(clock.alerts_per_day.map(i64::from))
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    }
}
