//! The editor's desk: a schedule's next digest as an editor shaped it (subject, note, lead
//! story, order, a subject test). The digest that carries it deletes it (see
//! `create_digest_tx`), so it applies to one digest only.

use super::{Desk, StoredDesk, SubjectTest};

#[derive(sqlx::FromRow)]
struct DeskRow {
    subject: Option<String>,
    note_html: Option<String>,
    lead: Option<i64>,
    article_order: Option<String>,
    subject_test: Option<String>,
    version: i64,
    updated_by: String,
    updated_at: i64,
}

impl DeskRow {
    fn into_desk(self) -> StoredDesk {
        let order: Vec<i64> = self
            .article_order
            .and_then(|o| serde_json::from_str(&o).ok())
            .unwrap_or_default();
        let subject_test: Option<SubjectTest> = self
            .subject_test
            .and_then(|t| serde_json::from_str(&t).ok());
        StoredDesk {
            desk: Desk {
                subject: self.subject,
                note_html: self.note_html,
                lead: self.lead,
                order,
                subject_test,
            },
            version: self.version,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        }
    }
}

for_each_engine! {
    impl Db {
        /// What an editor set for `schedule`'s next digest, if anything.
        pub(crate) async fn next_digest(&self, schedule: &str) -> anyhow::Result<Option<StoredDesk>> {
            Ok(sqlx::query_as::<_, DeskRow>(
                "SELECT subject, note_html, lead, article_order, subject_test, version, updated_by, updated_at
                 FROM next_digests WHERE schedule = $1",
            )
            .bind(schedule)
            .fetch_optional(&self.pool)
            .await?
            .map(DeskRow::into_desk))
        }

        /// Replaces what is set for `schedule`'s next digest (an empty desk deletes it).
        pub(crate) async fn set_next_digest(
            &self,
            schedule: &str,
            desk: &Desk,
            by: &str,
            now: i64,
        ) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            if desk.is_empty() {
                sqlx::query("DELETE FROM next_digests WHERE schedule = $1")
                    .bind(schedule)
                    .execute(&mut *tx)
                    .await?;
                return self.commit(tx).await;
            }
            let before: Option<i64> =
                sqlx::query_scalar("SELECT version FROM next_digests WHERE schedule = $1")
                    .bind(schedule)
                    .fetch_optional(&mut *tx)
                    .await?;
            // Always increasing, even when the clock is not.
            let version = before.map_or(now, |v| now.max(v + 1));
            let order = (!desk.order.is_empty()).then(|| serde_json::to_string(&desk.order)).transpose()?;
            let test = desk.subject_test.as_ref().map(serde_json::to_string).transpose()?;
            sqlx::query(
                "INSERT INTO next_digests (schedule, subject, note_html, lead, article_order, subject_test,
                                           version, updated_by, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (schedule) DO UPDATE SET subject = $2, note_html = $3, lead = $4,
                     article_order = $5, subject_test = $6, version = $7, updated_by = $8, updated_at = $9",
            )
            .bind(schedule)
            .bind(&desk.subject)
            .bind(&desk.note_html)
            .bind(desk.lead)
            .bind(order)
            .bind(test)
            .bind(version)
            .bind(by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            self.commit(tx).await
        }

        /// Inside the transaction that makes `schedule`'s digest: whether the desk is still the
        /// version the digest was rendered from (`None`: there was none).
        pub(crate) async fn desk_is(
            conn: &mut Conn,
            schedule: &str,
            rendered_from: Option<i64>,
        ) -> anyhow::Result<bool> {
            let now: Option<i64> =
                sqlx::query_scalar("SELECT version FROM next_digests WHERE schedule = $1")
                    .bind(schedule)
                    .fetch_optional(&mut *conn)
                    .await?;
            Ok(now == rendered_from)
        }

        /// Inside the transaction that makes a real digest of `schedule`: what the editor set
        /// was for it only.
        pub(crate) async fn drop_desk(conn: &mut Conn, schedule: &str) -> anyhow::Result<()> {
            sqlx::query("DELETE FROM next_digests WHERE schedule = $1")
                .bind(schedule)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
    }
}
