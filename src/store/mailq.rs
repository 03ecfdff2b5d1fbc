//! The queue of one-off emails (confirmations, welcomes): claimed with a lease like the
//! ledger.

use std::time::Duration;

use anyhow::Context;

use super::{MailOutcome, QueuedMail, clock::now_ms};
use crate::domain::SubscriberEmail;

for_each_engine! {
    impl Db {
        /// Claims due one-off emails with a lease, with the address each goes to while it is
        /// still wanted: a confirmation while the sign-up it was queued for waits for it, a
        /// welcome while its reader is confirmed (left and back again counts: it is still
        /// their only one).
        pub(crate) async fn claim_mail(
            &self,
            limit: i64,
            lease: Duration,
            now: i64,
        ) -> anyhow::Result<Vec<QueuedMail>> {
            let mut tx = self.begin_write().await?;
            let lease_until = now + lease.as_millis() as i64;
            let ids: Vec<i64> = sqlx::query_scalar(concat!(
                "WITH c AS MATERIALIZED (
                     SELECT id FROM mail_queue
                     WHERE (state = 'pending' AND next_attempt_at <= $2) OR (state = 'sending' AND lease_until < $2)
                     ORDER BY next_attempt_at, id LIMIT $3 ", engine_sql!(skip_locked), ")
                 UPDATE mail_queue SET state = 'sending', lease_until = $1, attempts = mail_queue.attempts + 1
                 FROM c WHERE mail_queue.id = c.id
                 RETURNING mail_queue.id"
            ))
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .context("failed to claim queued mail")?;
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                rows.push(
                    sqlx::query_as::<_, QueuedMail>(
                        "SELECT q.id, q.kind, q.subscriber_id, q.issued, q.attempts, q.lease_until, q.created_at,
                                s.email AS email
                         FROM mail_queue q LEFT JOIN subscribers s
                             ON s.id = q.subscriber_id
                             AND ((q.kind = 'confirm' AND s.status = 'pending' AND s.consented_at = q.issued)
                                  OR (q.kind = 'welcome' AND s.status = 'confirmed'))
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
        pub(crate) async fn record_mail(
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
                .bind(if counts { 0i64 } else { 1i64 }),
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

        /// Forgets one-off emails that ended (sent, failed, skipped) before `before`: the
        /// limits look back a day, nothing else reads them.
        pub(crate) async fn purge_mail(&self, before: i64) -> anyhow::Result<u64> {
            Ok(sqlx::query(
                "DELETE FROM mail_queue WHERE created_at < $1 AND state IN ('sent', 'failed', 'skipped')",
            )
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
        }

        /// When the next queued email is due, if any.
        pub(crate) async fn next_mail_due(&self) -> anyhow::Result<Option<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT MIN(CASE WHEN state = 'pending' THEN next_attempt_at ELSE lease_until END)
                 FROM mail_queue WHERE state IN ('pending', 'sending')",
            )
            .fetch_one(&self.pool)
            .await?)
        }
    }

    impl Db {
        /// Queues reader `id`'s welcome in the caller's transaction (the one that confirms
        /// them), unless they had one (`welcomed_at`) or an import brought them (their consent
        /// history holds an `import`): whether one was queued.
        pub(crate) async fn queue_welcome(
            conn: &mut Conn,
            id: i64,
            issued: i64,
            now: i64,
        ) -> anyhow::Result<bool> {
            let email: Option<String> = sqlx::query_scalar(
                "UPDATE subscribers SET welcomed_at = $2
                 WHERE id = $1 AND welcomed_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.subscriber_id = $1 AND e.event = 'import')
                 RETURNING email",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await
            .context("failed to mark the reader welcomed")?;
            let Some(email) = email else {
                return Ok(false);
            };
            // Every stored address passed `parse`; the lower-cased address is its inbox else.
            let mailbox = SubscriberEmail::parse(&email)
                .map_or_else(|_| email.to_lowercase(), |e| e.mailbox_key());
            sqlx::query(
                "INSERT INTO mail_queue (kind, subscriber_id, mailbox, issued, state, next_attempt_at, created_at)
                 VALUES ('welcome', $1, $2, $3, 'pending', $4, $4)",
            )
            .bind(id)
            .bind(&mailbox)
            .bind(issued)
            .bind(now)
            .execute(&mut *conn)
            .await
            .context("failed to queue the welcome email")?;
            Ok(true)
        }
    }
}
