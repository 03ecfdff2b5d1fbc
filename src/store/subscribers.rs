//! Subscribers: sign-up (with its confirmation queued in the same transaction), confirmation,
//! leaving, import, listing, erasure.
//!
//! Near 600 lines: one aggregate's SQL for both engines, where every write to a reader
//! (sign-up, confirmation, leaving, erasure) keeps the same consent history and limits.

use anyhow::Context;
use sqlx::Row;

use super::{
    Choice, ConfirmOutcome, ConsentEvent, ConsentRow, ReaderClock, ReaderFilter, SubscriberRow,
    SubscriberStatus,
    clock::DAY_MS,
    limits::{CONFIRM_RESEND_MS, CONFIRMS_PER_DAY, SEARCH_MIN_CHARS},
    shared::{CHOICES_LOCK, CounterDelta},
};
use crate::domain::{SubscriberEmail, SubscriberName};

for_each_engine! {
    impl Db {
        /// Records a sign-up and, in the same transaction, queues its confirmation email unless
        /// that inbox had one recently. Returns whether a confirmation was queued; the caller
        /// answers the reader the same either way.
        ///
        /// A sign-up for a known address changes nothing a stranger could abuse: the name is
        /// taken only with a fresh consent (after the reader left), and confirmations are
        /// limited per inbox (plus-address, case and Gmail-dot variants count as one), not only
        /// per address. The reader's zone and alerts opt-in follow the same rule: taken with a
        /// fresh consent (a missing zone keeps the one stored), else left as they are.
        pub(crate) async fn subscribe(
            &self,
            email: &SubscriberEmail,
            name: &SubscriberName,
            source: &str,
            choice: &Choice,
            clock: &ReaderClock,
            now: i64,
        ) -> anyhow::Result<bool> {
            let mailbox = email.mailbox_key();
            let mut tx = self.begin_write().await?;
            // Two sign-ups for one inbox at once must not both pass the limit.
            Db::lock(&mut tx, &format!("mailbox:{mailbox}")).await?;
            let row = sqlx::query(
                "INSERT INTO subscribers (email, email_norm, name, status, source, created_at, consented_at, timezone, alerts)
                 VALUES ($1, $2, $3, 'pending', $4, $5, $5, $6, $7)
                 ON CONFLICT (email_norm) DO UPDATE SET
                     name = CASE WHEN subscribers.status IN ('unsubscribed', 'bounced') THEN $3 ELSE subscribers.name END,
                     source = CASE WHEN subscribers.status IN ('unsubscribed', 'bounced') THEN $4 ELSE subscribers.source END,
                     timezone = CASE WHEN subscribers.status IN ('unsubscribed', 'bounced') THEN COALESCE($6, subscribers.timezone) ELSE subscribers.timezone END,
                     alerts = CASE WHEN subscribers.status IN ('unsubscribed', 'bounced') THEN $7 ELSE subscribers.alerts END,
                     consented_at = CASE WHEN subscribers.status IN ('unsubscribed', 'bounced') THEN $5 ELSE subscribers.consented_at END,
                     status = CASE WHEN subscribers.status IN ('unsubscribed', 'bounced') THEN 'pending' ELSE subscribers.status END
                 RETURNING id, status, consented_at",
            )
            .bind(email.as_str())
            .bind(email.normalized())
            .bind(name.as_str())
            .bind(source)
            .bind(now)
            .bind(clock.zone.map(|z| z.name()))
            .bind(i64::from(clock.alerts))
            .fetch_one(&mut *tx)
            .await
            .context("failed to store the subscription")?;
            let (id, status, issued): (i64, String, i64) =
                (row.get("id"), row.get("status"), row.get("consented_at"));
            if issued == now {
                // A new reader, or one who left and came back: consent given now, to what the
                // form offered (a section's sign-up under its articles, or everything).
                Db::consent(&mut tx, id, ConsentEvent::Signup, source, now).await?;
                Db::set_choice(&mut tx, id, choice).await?;
            }
            let queued = if status == SubscriberStatus::Pending.as_str() {
                // Recent: confirmations of this inbox still unanswered (a reader who
                // confirmed, left and comes back is not held up by the mail they answered).
                // Only confirmations count: a welcome on its way holds up no sign-up.
                let (recent, today, open): (i64, i64, i64) = sqlx::query_as(
                    "SELECT
                         CAST(COALESCE(SUM(CASE WHEN q.created_at > $2 AND q.state <> 'failed'
                                           AND s.status = 'pending' AND s.consented_at = q.issued THEN 1 ELSE 0 END), 0) AS BIGINT),
                         CAST(COALESCE(SUM(CASE WHEN q.created_at > $3 THEN 1 ELSE 0 END), 0) AS BIGINT),
                         CAST(COALESCE(SUM(CASE WHEN q.subscriber_id = $4 AND q.state IN ('pending', 'sending') THEN 1 ELSE 0 END), 0) AS BIGINT)
                     FROM mail_queue q LEFT JOIN subscribers s ON s.id = q.subscriber_id
                     WHERE q.mailbox = $1 AND q.created_at > $3 AND q.kind = 'confirm'",
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

        /// Confirms the sign-up a confirm token was issued for; with `welcome`, queues the
        /// reader's one welcome in the same transaction (see `queue_welcome`), so a reader
        /// who is confirmed is never left without it.
        pub(crate) async fn confirm(
            &self,
            id: i64,
            issued: i64,
            now: i64,
            welcome: bool,
        ) -> anyhow::Result<ConfirmOutcome> {
            let mut tx = self.begin_write().await?;
            // A reader who confirms joins audiences with their choice (see `CHOICES_LOCK`).
            Db::lock(&mut tx, CHOICES_LOCK).await?;
            let updated = sqlx::query(
                "UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, bounces = 0
                 WHERE id = $2 AND status = 'pending' AND consented_at = $3",
            )
            .bind(now)
            .bind(id)
            .bind(issued)
            .execute(&mut *tx)
            .await
            .context("failed to confirm")?
            .rows_affected();
            if updated > 0 {
                Db::consent(&mut tx, id, ConsentEvent::Confirm, "", now).await?;
                // A fresh confirmation is what lifts a complaint's suppression.
                let norm: String = sqlx::query_scalar("SELECT email_norm FROM subscribers WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM suppressions WHERE email_hash = $1")
                    .bind(crate::store::feedback::suppression_key(&norm))
                    .execute(&mut *tx)
                    .await?;
                if welcome {
                    Db::queue_welcome(&mut tx, id, issued, now).await?;
                }
            }
            self.commit(tx).await?;
            if updated > 0 {
                return Ok(ConfirmOutcome::Confirmed);
            }
            // Nothing changed: say why (already confirmed, or not this sign-up).
            Ok(match self.confirm_state(id, issued).await? {
                ConfirmOutcome::Confirmed => ConfirmOutcome::Stale,
                other => other,
            })
        }

        /// What a confirm token would do now: `Confirmed` means "would confirm".
        pub(crate) async fn confirm_state(
            &self,
            id: i64,
            issued: i64,
        ) -> anyhow::Result<ConfirmOutcome> {
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

        /// Unsubscribes at once and takes the reader out of every send's queue. Rows a worker
        /// has claimed are left to it: it checks before it starts the message, and the
        /// caller waits for them (see `deliveries_in_flight_to`). Idempotent; returns whether
        /// anything changed.
        pub(crate) async fn unsubscribe(
            &self,
            id: i64,
            how: &str,
            now: i64,
        ) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            let changed = Db::unsubscribe_in(&mut tx, id, how, now).await?;
            self.commit(tx).await?;
            Ok(changed)
        }

        /// Every subscriber, in id order, a page at a time (export streams through this).
        pub(crate) async fn subscribers_after(
            &self,
            after_id: i64,
            limit: i64,
        ) -> anyhow::Result<Vec<SubscriberRow>> {
            Ok(sqlx::query_as::<_, SubscriberRow>(
                "SELECT id, email, name, status, source, created_at, consented_at, confirmed_at, unsubscribed_at, bounces, timezone, alerts, alerts_per_day
                 FROM subscribers WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        }

        /// A page of readers by `filter`. A `q` of three characters or more is any part of an
        /// address or a name (`gmail`, `@alhal.net`, `smith@`, `Smith`, «سارة»), case-insensitive,
        /// newest first, through each engine's trigram index (`push_search_from`). A shorter
        /// one is an address prefix (case-insensitive), in address order: the address index
        /// serves the search and the order. Without `q`, newest first. Each answers a million
        /// readers in milliseconds (see the benchmark). The total is counted up to 10,001:
        /// beyond that, "more than 10,000".
        pub(crate) async fn list_subscribers(
            &self,
            filter: &ReaderFilter,
            page: i64,
            per_page: i64,
        ) -> anyhow::Result<(Vec<SubscriberRow>, i64)> {
            let offset = (page.clamp(1, 1_000_000) - 1) * per_page;
            let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
            let contains = q.filter(|q| q.chars().count() >= SEARCH_MIN_CHARS);
            // The rows in order; the count in none (it stops at 10,001 matches, wherever).
            let filtered = |qb: &mut sqlx::QueryBuilder<DB>, ordered: bool| {
                match contains {
                    Some(q) => push_search_from(qb, q),
                    None => {
                        qb.push(" FROM subscribers WHERE 1 = 1");
                    }
                }
                if let Some(status) = filter.status {
                    qb.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(kind) = filter.source.as_deref() {
                    qb.push(" AND (source = ")
                        .push_bind(kind.to_owned())
                        .push(concat!(" OR (", engine_sql!(source_c), " >= "))
                        .push_bind(format!("{kind}:"))
                        .push(concat!(" AND ", engine_sql!(source_c), " < "))
                        .push_bind(format!("{kind};"))
                        .push("))");
                }
                let order = match q {
                    Some(_) if contains.is_some() => SEARCH_ORDER,
                    Some(q) => {
                        let from = q.to_lowercase();
                        qb.push(concat!(" AND ", engine_sql!(email_c), " >= "))
                            .push_bind(from.clone())
                            .push(concat!(" AND ", engine_sql!(email_c), " < "))
                            .push_bind(format!("{from}\u{10FFFF}"));
                        concat!(" ORDER BY ", engine_sql!(email_order))
                    }
                    None => " ORDER BY id DESC",
                };
                if ordered {
                    qb.push(order);
                }
            };
            const COLUMNS: &str = "SELECT subscribers.id, email, subscribers.name, status, source, created_at, consented_at, confirmed_at, unsubscribed_at, bounces, subscribers.timezone, subscribers.alerts, subscribers.alerts_per_day";
            // The newest readers first, in the primary key's order: exact whenever the page
            // fills there, since every older match comes after it.
            let mut rows = Vec::new();
            if let (Some(window), Some(_)) = (SEARCH_WINDOW, contains) {
                let mut qb = sqlx::QueryBuilder::<DB>::new(COLUMNS);
                filtered(&mut qb, false);
                qb.push(" AND subscribers.id > (SELECT COALESCE(MAX(id), 0) FROM subscribers) - ")
                    .push_bind(window)
                    .push(" ORDER BY subscribers.id DESC LIMIT ")
                    .push_bind(per_page)
                    .push(" OFFSET ")
                    .push_bind(offset);
                rows = qb.build_query_as::<SubscriberRow>().fetch_all(&self.pool).await?;
            }
            if (rows.len() as i64) < per_page {
                let mut qb = sqlx::QueryBuilder::<DB>::new(COLUMNS);
                filtered(&mut qb, true);
                qb.push(" LIMIT ").push_bind(per_page).push(" OFFSET ").push_bind(offset);
                rows = qb.build_query_as::<SubscriberRow>().fetch_all(&self.pool).await?;
            }
            let mut qb = sqlx::QueryBuilder::<DB>::new("SELECT COUNT(*) FROM (SELECT 1");
            filtered(&mut qb, false);
            qb.push(" LIMIT 10001) AS matching");
            let total: i64 = qb.build_query_scalar().fetch_one(&self.pool).await?;
            Ok((rows, total))
        }

        pub(crate) async fn subscriber(&self, id: i64) -> anyhow::Result<Option<SubscriberRow>> {
            Ok(sqlx::query_as::<_, SubscriberRow>(
                "SELECT id, email, name, status, source, created_at, consented_at, confirmed_at, unsubscribed_at, bounces, timezone, alerts, alerts_per_day
                 FROM subscribers WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// A reader's consent history, oldest first.
        pub(crate) async fn consent_history(&self, id: i64) -> anyhow::Result<Vec<ConsentRow>> {
            Ok(sqlx::query_as::<_, ConsentRow>(
                "SELECT at, event, source FROM consent_events WHERE subscriber_id = $1 ORDER BY id LIMIT 1000",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?)
        }

        pub(crate) async fn count_subscribers(
            &self,
            status: SubscriberStatus,
        ) -> anyhow::Result<i64> {
            Ok(
                sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE status = $1")
                    .bind(status.as_str())
                    .fetch_one(&self.pool)
                    .await?,
            )
        }

        pub(crate) async fn subscriber_id_by_email(
            &self,
            email: &SubscriberEmail,
        ) -> anyhow::Result<Option<i64>> {
            Ok(sqlx::query_scalar("SELECT id FROM subscribers WHERE email_norm = $1")
                .bind(email.normalized())
                .fetch_optional(&self.pool)
                .await?)
        }

        /// GDPR erasure: the row goes, with its consent history and queued emails; ledger
        /// rows keep only the number, which now points nowhere. Queued deliveries to them are
        /// skipped; claimed ones are left to their worker, which finds nobody to send to.
        pub(crate) async fn erase_subscriber(&self, id: i64) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            skip_queued(&mut tx, id).await?;
            for sql in [
                "DELETE FROM consent_events WHERE subscriber_id = $1",
                "DELETE FROM mail_queue WHERE subscriber_id = $1",
                "DELETE FROM schedule_sections WHERE subscriber_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            let n = sqlx::query("DELETE FROM subscribers WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("failed to erase subscriber")?
                .rows_affected();
            self.commit(tx).await?;
            Ok(n > 0)
        }

        pub(crate) async fn deliveries_in_flight_to(
            &self,
            subscriber: i64,
            now: i64,
        ) -> anyhow::Result<i64> {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries
                 WHERE subscriber_id = $1 AND state = 'sending' AND lease_until > $2",
            )
            .bind(subscriber)
            .bind(now)
            .fetch_one(&self.pool)
            .await?)
        }

        pub(crate) async fn still_confirmed(&self, ids: &[i64]) -> anyhow::Result<Vec<i64>> {
            if ids.is_empty() {
                return Ok(vec![]);
            }
            let mut qb = sqlx::QueryBuilder::<DB>::new(
                "SELECT id FROM subscribers WHERE status = 'confirmed' AND id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            Ok(qb.build_query_scalar().fetch_all(&self.pool).await?)
        }
    }

    impl Db {
        /// Appends a step to a reader's consent history, in the caller's transaction.
        pub(crate) async fn consent(
            conn: &mut Conn,
            subscriber: i64,
            event: ConsentEvent,
            source: &str,
            at: i64,
        ) -> anyhow::Result<()> {
            sqlx::query(
                "INSERT INTO consent_events (subscriber_id, at, event, source) VALUES ($1, $2, $3, $4)",
            )
            .bind(subscriber)
            .bind(at)
            .bind(event.as_str())
            .bind(source)
            .execute(&mut *conn)
            .await
            .context("failed to record consent")?;
            Ok(())
        }

        /// `skip_queued` for the other aggregates.
        pub(crate) async fn skip_queued(conn: &mut Conn, subscriber: i64) -> anyhow::Result<()> {
            skip_queued(conn, subscriber).await
        }

        /// [`Db::unsubscribe`] in the caller's transaction (a complaint or a mailed
        /// unsubscribe records its event in the same one): whether the reader was still there.
        pub(crate) async fn unsubscribe_in(
            conn: &mut Conn,
            id: i64,
            how: &str,
            now: i64,
        ) -> anyhow::Result<bool> {
            let r = sqlx::query(
                "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = $1
                 WHERE id = $2 AND status IN ('pending', 'confirmed')",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await
            .context("failed to unsubscribe")?;
            if r.rows_affected() > 0 {
                Db::consent(conn, id, ConsentEvent::Unsubscribe, how, now).await?;
            }
            skip_queued(conn, id).await?;
            Ok(r.rows_affected() > 0)
        }
    }

    /// A reader's queued (not claimed) deliveries become skipped, and the sends' counters
    /// follow.
    async fn skip_queued(tx: &mut Conn, subscriber: i64) -> anyhow::Result<()> {
        let digests: Vec<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET state = 'skipped'
             WHERE subscriber_id = $1 AND state = 'pending' RETURNING digest_id",
        )
        .bind(subscriber)
        .fetch_all(&mut *tx)
        .await
        .context("failed to take the reader out of sends under way")?;
        let mut delta = CounterDelta::default();
        delta.extend(digests, 1);
        for (digest, n) in delta.iter() {
            sqlx::query("UPDATE digests SET skipped = skipped + $1 WHERE id = $2")
                .bind(n)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}
