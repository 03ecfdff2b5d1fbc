//! The delivery ledger: claims with a lease, outcomes in batches, finished sends.
//!
//! Claims take due rows of each sending digest in (next_attempt_at, id) order, and rows whose
//! lease ran out (their worker died). On PostgreSQL the rows are picked `FOR UPDATE SKIP
//! LOCKED` inside a materialised CTE, so two workers claiming at once get different rows and
//! never wait on each other; on SQLite the write lock already keeps claims apart.

use std::time::Duration;

use anyhow::Context;
use sqlx::Row;

use super::{
    ALERT_SCHEDULE, Claimed, ConsentEvent, Outcome,
    clock::now_ms,
    shared::{CounterDelta, test_address},
};

for_each_engine! {
    impl Db {
        /// Claims up to `limit` deliveries that are due (pending and past their retry time, or
        /// leased by a worker whose lease ran out) from digests that are sending.
        ///
        /// Alerts' rows come first (breaking news goes ahead of digests waiting for the same
        /// relay); with `only_alerts` (outside `delivery.window`, `alerts.ignore_window`), only
        /// theirs.
        pub(crate) async fn claim(
            &self,
            limit: i64,
            lease: Duration,
            now: i64,
            only_alerts: bool,
        ) -> anyhow::Result<Vec<Claimed>> {
            let mut tx = self.begin_write().await?;
            let lease_until = now + lease.as_millis() as i64;
            let digests: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM digests WHERE status = 'sending' AND ($1 = 0 OR schedule = $2)
                 ORDER BY CASE WHEN schedule = $2 THEN 0 ELSE 1 END, id",
            )
            .bind(only_alerts as i64)
            .bind(ALERT_SCHEDULE)
            .fetch_all(&mut *tx)
            .await?;
            let mut ids: Vec<i64> = Vec::new();
            let mut claimed = CounterDelta::default();
            for digest in digests {
                for (newly, query) in [
                    // Rows whose worker died: the lease ran out (still counted in flight).
                    (false, concat!(
                        "WITH c AS MATERIALIZED (
                             SELECT id FROM deliveries
                             WHERE digest_id = $2 AND state = 'sending' AND lease_until < $3
                             ORDER BY lease_until LIMIT $4 ", engine_sql!(skip_locked), ")
                         UPDATE deliveries SET lease_until = $1, attempts = deliveries.attempts + 1
                         FROM c WHERE deliveries.id = c.id
                         RETURNING deliveries.id"
                    )),
                    // Rows due now.
                    (true, concat!(
                        "WITH c AS MATERIALIZED (
                             SELECT id FROM deliveries
                             WHERE digest_id = $2 AND state = 'pending' AND next_attempt_at <= $3
                             ORDER BY next_attempt_at, id LIMIT $4 ", engine_sql!(skip_locked), ")
                         UPDATE deliveries SET state = 'sending', lease_until = $1, attempts = deliveries.attempts + 1
                         FROM c WHERE deliveries.id = c.id
                         RETURNING deliveries.id"
                    )),
                ] {
                    let room = limit - ids.len() as i64;
                    if room <= 0 {
                        break;
                    }
                    let more: Vec<i64> = sqlx::query_scalar(query)
                        .bind(lease_until)
                        .bind(digest)
                        .bind(now)
                        .bind(room)
                        .fetch_all(&mut *tx)
                        .await
                        .context("failed to claim deliveries")?;
                    if newly {
                        claimed.add(digest, more.len() as i64);
                    }
                    ids.extend(more);
                }
            }
            if ids.is_empty() {
                return Ok(vec![]);
            }
            Db::count_all(&mut tx, "in_flight", &claimed).await?;
            let mut qb = sqlx::QueryBuilder::<DB>::new(
                "SELECT d.id, d.digest_id, d.edition, d.variant, d.subscriber_id, d.attempts, d.lease_until,
                        COALESCE(s.email, g.test_to) AS email, COALESCE(s.name, '') AS name,
                        CAST(CASE WHEN d.subscriber_id <= 0 OR s.status = 'confirmed' THEN 1 ELSE 0 END AS BIGINT) AS confirmed
                 FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 LEFT JOIN subscribers s ON s.id = d.subscriber_id AND d.subscriber_id > 0
                 WHERE d.id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in &ids {
                sep.push_bind(*id);
            }
            qb.push(") ORDER BY d.id");
            let mut rows = qb.build_query_as::<Claimed>().fetch_all(&mut *tx).await?;
            self.commit(tx).await?;
            for r in &mut rows {
                if r.subscriber_id <= 0 {
                    r.email = test_address(r.email.as_deref(), r.subscriber_id);
                }
            }
            Ok(rows)
        }

        /// Extends claims this worker still holds (`(id, lease_until)` as claimed) to
        /// `lease_until`, and returns the ids extended. A row whose lease changed was claimed
        /// again (its lease ran out): it is no longer this worker's and must not be sent.
        pub(crate) async fn renew_leases(
            &self,
            held: &[(i64, i64)],
            lease_until: i64,
        ) -> anyhow::Result<Vec<i64>> {
            let mut tx = self.begin_write().await?;
            let mut renewed = Vec::with_capacity(held.len());
            for (id, old) in held {
                let n = sqlx::query(
                    "UPDATE deliveries SET lease_until = $1
                     WHERE id = $2 AND state = 'sending' AND lease_until = $3",
                )
                .bind(lease_until)
                .bind(id)
                .bind(old)
                .execute(&mut *tx)
                .await
                .context("failed to renew leases")?
                .rows_affected();
                if n == 1 {
                    renewed.push(*id);
                }
            }
            self.commit(tx).await?;
            Ok(renewed)
        }

        /// Writes a batch of outcomes in one transaction: this is the "sent" mark whose delay
        /// bounds what a crash can duplicate. Each send's counters move with its rows.
        ///
        /// The ledger says what happened. A "sent" is a fact and lands on a row still
        /// `sending`, or on one skipped while its message was already on the wire. Every
        /// other outcome applies only to a row still `sending` under the same lease: a row
        /// skipped, cancelled or claimed again meanwhile keeps its state.
        pub(crate) async fn record(&self, outcomes: &[Outcome]) -> anyhow::Result<()> {
            if outcomes.is_empty() {
                return Ok(());
            }
            let (mut sent, mut failed, mut skipped, mut cancelled, mut landed) = (
                CounterDelta::default(),
                CounterDelta::default(),
                CounterDelta::default(),
                CounterDelta::default(),
                CounterDelta::default(),
            );
            // Refused for good at send time: what the send guard judges beside `sent`.
            let mut rejected = CounterDelta::default();
            let mut tx = self.begin_write().await?;
            // "Sent" is nearly every outcome: one statement a few hundred rows.
            let marks: Vec<(&i64, &String, &i64, Option<&str>)> = outcomes
                .iter()
                .filter_map(|o| match o {
                    Outcome::Sent {
                        id,
                        message_id,
                        at,
                        relay,
                    } => Some((id, message_id, at, relay.as_deref())),
                    _ => None,
                })
                .collect();
            for chunk in marks.chunks(300) {
                let mut landed_in_chunk = 0;
                for from in ["sending", "skipped"] {
                    // Nearly always every row was still sending: no second statement.
                    if from == "skipped" && landed_in_chunk == chunk.len() {
                        continue;
                    }
                    let mut qb = sqlx::QueryBuilder::<DB>::new(
                        "WITH v (id, message_id, sent_at, relay) AS (VALUES ",
                    );
                    let mut sep = qb.separated(", ");
                    for (id, mid, at, relay) in chunk {
                        // The relay's name is one of the configuration's (checked there).
                        sep.push("(")
                            .push_bind_unseparated(**id)
                            .push_unseparated(", ")
                            .push_bind_unseparated(mid.as_str())
                            .push_unseparated(", ")
                            .push_bind_unseparated(**at)
                            .push_unseparated(", CAST(")
                            .push_bind_unseparated(*relay)
                            .push_unseparated(" AS TEXT))");
                    }
                    qb.push(
                        ") UPDATE deliveries SET state = 'sent', message_id = v.message_id, sent_at = v.sent_at, relay = v.relay,
                             lease_until = NULL, last_error = NULL
                         FROM v WHERE deliveries.id = v.id AND deliveries.state = ",
                    );
                    qb.push_bind(from);
                    qb.push(" RETURNING deliveries.digest_id");
                    let digests: Vec<i64> = qb
                        .build_query_scalar()
                        .fetch_all(&mut *tx)
                        .await
                        .context("failed to record sent deliveries")?;
                    if from == "skipped" {
                        skipped.extend(digests.iter().copied(), -1);
                    } else {
                        landed_in_chunk = digests.len();
                        landed.extend(digests.iter().copied(), -1);
                    }
                    sent.extend(digests, 1);
                }
            }
            for o in outcomes {
                let q = match o {
                    Outcome::Sent { .. } => continue,
                    Outcome::Retry {
                        id,
                        lease,
                        error,
                        next_attempt_at,
                    } => sqlx::query(
                        "UPDATE deliveries SET last_error = $1, next_attempt_at = $2, lease_until = NULL,
                             state = CASE WHEN (SELECT status FROM digests g WHERE g.id = deliveries.digest_id) = 'cancelled'
                                          THEN 'cancelled' ELSE 'pending' END
                         WHERE id = $3 AND state = 'sending' AND lease_until = $4
                         RETURNING digest_id, state",
                    )
                    .bind(error)
                    .bind(next_attempt_at)
                    .bind(id)
                    .bind(lease),
                    Outcome::Failed {
                        id,
                        lease,
                        error,
                        permanent,
                    } => sqlx::query(
                        "UPDATE deliveries SET state = 'failed', last_error = $1, lease_until = NULL, permanent = $2
                         WHERE id = $3 AND state = 'sending' AND lease_until = $4
                         RETURNING digest_id, state",
                    )
                    .bind(error)
                    .bind(*permanent as i64)
                    .bind(id)
                    .bind(lease),
                    // A warm-up's reason, from a day the row was held, no longer says why.
                    Outcome::Skipped { id } => sqlx::query(
                        "UPDATE deliveries SET state = 'skipped', lease_until = NULL,
                             last_error = CASE WHEN last_error LIKE 'warmup:%' THEN NULL ELSE last_error END
                         WHERE id = $1 AND state = 'sending'
                         RETURNING digest_id, state",
                    )
                    .bind(id),
                    Outcome::Held {
                        id,
                        lease,
                        until: Some(until),
                        why,
                    } => sqlx::query(
                        "UPDATE deliveries SET lease_until = NULL, next_attempt_at = $3, last_error = $4,
                             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                             state = CASE WHEN (SELECT status FROM digests g WHERE g.id = deliveries.digest_id) = 'cancelled'
                                          THEN 'cancelled' ELSE 'pending' END
                         WHERE id = $1 AND state = 'sending' AND lease_until = $2
                         RETURNING digest_id, state",
                    )
                    .bind(id)
                    .bind(lease)
                    .bind(until)
                    .bind(why),
                    Outcome::Held {
                        id,
                        lease,
                        until: None,
                        why,
                    } => sqlx::query(
                        "UPDATE deliveries SET state = 'skipped', lease_until = NULL, last_error = $3
                         WHERE id = $1 AND state = 'sending' AND lease_until = $2
                         RETURNING digest_id, state",
                    )
                    .bind(id)
                    .bind(lease)
                    .bind(why),
                    // Back to the queue without spending the attempt, or to 'cancelled' if its
                    // send was cancelled meanwhile.
                    Outcome::Released { id, lease } => sqlx::query(
                        "UPDATE deliveries SET lease_until = NULL,
                             last_error = CASE WHEN last_error LIKE 'warmup:%' THEN NULL ELSE last_error END,
                             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                             state = CASE WHEN (SELECT status FROM digests g WHERE g.id = deliveries.digest_id) = 'cancelled'
                                          THEN 'cancelled' ELSE 'pending' END
                         WHERE id = $1 AND state = 'sending' AND lease_until = $2
                         RETURNING digest_id, state",
                    )
                    .bind(id)
                    .bind(lease),
                };
                let changed = q
                    .fetch_optional(&mut *tx)
                    .await
                    .context("failed to record delivery outcomes")?;
                if let Some(row) = changed {
                    let (digest, state): (i64, String) = (row.get(0), row.get(1));
                    // Every outcome but "sent" applies to a row that was in flight.
                    landed.add(digest, -1);
                    if let Outcome::Failed { permanent: true, .. } = o {
                        rejected.add(digest, 1);
                    }
                    match state.as_str() {
                        "failed" => failed.add(digest, 1),
                        "skipped" => skipped.add(digest, 1),
                        "cancelled" => cancelled.add(digest, 1),
                        _ => {}
                    }
                }
            }
            Db::count_together(
                &mut tx,
                &[
                    ("sent", &sent),
                    ("failed", &failed),
                    ("skipped", &skipped),
                    ("cancelled", &cancelled),
                    ("in_flight", &landed),
                    ("rejected", &rejected),
                    ("hard_bounces", &rejected),
                ],
            )
            .await?;
            self.commit(tx).await?;
            Ok(())
        }

        /// Marks sending digests whose ledger has nothing left in flight as done, and only
        /// then counts their permanent failures toward each reader's `bounce_after`: a send
        /// stopped because the relay rejected everything never gets here, so it bounces
        /// nobody. Only the process whose update marked a digest done counts its bounces.
        pub(crate) async fn finish_digests(&self, bounce_after: u32) -> anyhow::Result<Vec<i64>> {
            let mut tx = self.begin_write().await?;
            let done: Vec<i64> = sqlx::query_scalar(
                "UPDATE digests SET status = 'done', finished_at = $1
                 WHERE status = 'sending'
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.state = 'pending')
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.state = 'sending')
                 RETURNING id",
            )
            .bind(now_ms())
            .fetch_all(&mut *tx)
            .await?;
            let now = now_ms();
            for id in &done {
                let rows = sqlx::query(
                    "UPDATE subscribers SET bounces = bounces + 1,
                         status = CASE WHEN bounces + 1 >= $2 AND status = 'confirmed' THEN 'bounced' ELSE status END
                     WHERE id IN (SELECT subscriber_id FROM deliveries
                                  WHERE digest_id = $1 AND state = 'failed' AND permanent = 1 AND bounce_counted = 0)
                     RETURNING id, status, bounces",
                )
                .bind(id)
                .bind(bounce_after as i64)
                .fetch_all(&mut *tx)
                .await?;
                for r in &rows {
                    let (reader, status, bounces): (i64, String, i64) = (r.get(0), r.get(1), r.get(2));
                    // Bounced by this send: the count reached the limit just now.
                    if status == "bounced" && bounces == bounce_after as i64 {
                        Db::consent(&mut tx, reader, ConsentEvent::Bounce, &format!("digest:{id}"), now)
                            .await?;
                    }
                }
                sqlx::query(
                    "UPDATE digests SET bounced = (SELECT COUNT(*) FROM deliveries
                         WHERE digest_id = $1 AND state = 'failed' AND permanent = 1)
                     WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE deliveries SET bounce_counted = 1
                     WHERE digest_id = $1 AND state = 'failed' AND permanent = 1 AND bounce_counted = 0",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            self.commit(tx).await?;
            Ok(done)
        }

        /// When the next pending delivery becomes due (for sleeping until then), if any; with
        /// `only_alerts`, of alerts only (see [`Db::claim`]).
        pub(crate) async fn next_due(&self, only_alerts: bool) -> anyhow::Result<Option<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT MIN(t) FROM (
                     SELECT (SELECT MIN(d.next_attempt_at) FROM deliveries d
                             WHERE d.digest_id = g.id AND d.state = 'pending') AS t
                     FROM digests g WHERE g.status = 'sending' AND ($1 = 0 OR g.schedule = $2)
                     UNION ALL
                     SELECT (SELECT MIN(d.lease_until) FROM deliveries d
                             WHERE d.digest_id = g.id AND d.state = 'sending') AS t
                     FROM digests g WHERE g.status = 'sending' AND ($1 = 0 OR g.schedule = $2)
                 ) AS due",
            )
            .bind(only_alerts as i64)
            .bind(ALERT_SCHEDULE)
            .fetch_one(&self.pool)
            .await?)
        }

        /// Deliveries still to go in sends under way, from their counters.
        pub(crate) async fn queue_depth(&self) -> anyhow::Result<i64> {
            Ok(sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(total - sent - failed - skipped - cancelled), 0) AS BIGINT)
                 FROM digests WHERE status = 'sending'",
            )
            .fetch_one(&self.pool)
            .await?)
        }
    }
}
