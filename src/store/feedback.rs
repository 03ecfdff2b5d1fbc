//! Bounces, complaints and mailed unsubscribes: recorded once against their ledger row, and
//! what they do to the reader, in one transaction.

use std::collections::HashSet;

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::{
    ConsentEvent, FeedbackCounts, FeedbackEvent, FeedbackKind, FeedbackResult, FeedbackTarget,
    NewReader, SubscriberStatus,
};

/// The suppression list's key for a normalised address.
pub(crate) fn suppression_key(email_norm: &str) -> String {
    hex::encode(Sha256::digest(email_norm.as_bytes()))
}

/// `<id@domain>` whichever way it was written.
fn bracketed(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

for_each_engine! {
    impl Db {
        /// Records `ev` and applies it: a hard bounce counts toward `bounce_after`, soft
        /// bounces on `soft_after` digests in a row bounce, a complaint unsubscribes and
        /// suppresses, an unsubscribe mail unsubscribes, a delivery resets the soft count.
        pub(crate) async fn record_feedback(
            &self,
            ev: &FeedbackEvent,
            bounce_after: u32,
            soft_after: u32,
            now: i64,
        ) -> anyhow::Result<FeedbackResult> {
            let mut tx = self.begin_write().await?;
            // (delivery, digest, subscriber): the first target that names something.
            let mut found: Option<(Option<i64>, Option<i64>, i64)> = None;
            for target in &ev.targets {
                found = match target {
                    FeedbackTarget::Delivery(id) => sqlx::query_as::<_, (i64, i64)>(
                        "SELECT digest_id, subscriber_id FROM deliveries WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|(g, s)| (Some(*id), Some(g), s)),
                    FeedbackTarget::MessageId(m) => sqlx::query_as::<_, (i64, i64, i64)>(
                        "SELECT id, digest_id, subscriber_id FROM deliveries WHERE message_id = $1",
                    )
                    .bind(bracketed(m))
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|(d, g, s)| (Some(d), Some(g), s)),
                    FeedbackTarget::Subscriber(id) => {
                        sqlx::query_scalar::<_, i64>("SELECT id FROM subscribers WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|s| (None, None, s))
                    }
                    FeedbackTarget::Email(e) => {
                        sqlx::query_scalar::<_, i64>("SELECT id FROM subscribers WHERE email_norm = $1")
                            .bind(e)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|s| (None, None, s))
                    }
                };
                if found.is_some() {
                    break;
                }
            }
            let Some((mut delivery, mut digest, subscriber)) = found else {
                return Ok(FeedbackResult::Unknown);
            };
            // A bounce or complaint that names only the address (a provider that rewrote our
            // Message-ID: Postmark, SES): charged to the reader's latest message of a send
            // still under way, so that send's guard sees it. A send long over keeps none.
            if digest.is_none()
                && subscriber > 0
                && matches!(ev.kind, FeedbackKind::Hard | FeedbackKind::Complaint)
            {
                let latest: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT d.id, d.digest_id FROM digests g
                     CROSS JOIN deliveries d
                     WHERE g.status IN ('sending', 'paused') AND d.digest_id = g.id
                       AND d.subscriber_id = $1 AND d.state = 'sent'
                     ORDER BY d.sent_at DESC LIMIT 1",
                )
                .bind(subscriber)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((d, g)) = latest {
                    (delivery, digest) = (Some(d), Some(g));
                }
            }
            // One bounce (or complaint, or delivery) per message, whatever reports it.
            let key = match delivery {
                Some(d) => format!("{}:d{d}", ev.kind),
                None => format!("{}:{}", ev.kind, ev.dedup_key),
            };
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO feedback_events (dedup_key, kind, source, delivery_id, digest_id, subscriber_id, status, detail, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            )
            .bind(&key)
            .bind(ev.kind.as_str())
            .bind(&ev.source)
            .bind(delivery)
            .bind(digest)
            .bind((subscriber != 0).then_some(subscriber))
            .bind(ev.status.chars().take(32).collect::<String>())
            .bind(ev.detail.chars().take(500).collect::<String>())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to record the event")?;
            if inserted.is_none() {
                return Ok(FeedbackResult::Duplicate);
            }
            // What the send guard judges: a hard bounce of a message the relay took (one it
            // refused at send time is counted already), a complaint.
            if let Some(g) = digest {
                let counter = match ev.kind {
                    FeedbackKind::Hard => {
                        let refused: Option<i64> = sqlx::query_scalar(
                            "SELECT id FROM deliveries WHERE id = $1 AND state = 'failed' AND permanent = 1",
                        )
                        .bind(delivery)
                        .fetch_optional(&mut *tx)
                        .await?;
                        refused.is_none().then_some("hard_bounces")
                    }
                    FeedbackKind::Complaint => Some("complaints"),
                    _ => None,
                };
                if let Some(counter) = counter {
                    Db::count(&mut tx, g, counter, 1).await?;
                }
            }
            if subscriber == 0 {
                // A test send's address is no reader.
                self.commit(tx).await?;
                return Ok(FeedbackResult::Recorded { subscriber: None, now: None });
            }
            let before: Option<(String, i64, i64, String)> = sqlx::query_as(
                "SELECT status, soft_bounces, soft_bounce_digest, email_norm FROM subscribers WHERE id = $1",
            )
            .bind(subscriber)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((status, soft, soft_digest, email_norm)) = before else {
                self.commit(tx).await?;
                return Ok(FeedbackResult::Recorded { subscriber: None, now: None });
            };
            let how = format!("{}:{}", ev.kind, ev.source);
            let mut became = None;
            match ev.kind {
                FeedbackKind::Hard => {
                    let (st, _): (String, i64) = sqlx::query_as(
                        "UPDATE subscribers SET bounces = bounces + 1,
                             status = CASE WHEN bounces + 1 >= $2 AND status = 'confirmed' THEN 'bounced' ELSE status END
                         WHERE id = $1 RETURNING status, bounces",
                    )
                    .bind(subscriber)
                    .bind(bounce_after as i64)
                    .fetch_one(&mut *tx)
                    .await?;
                    if st == "bounced" && status != "bounced" {
                        became = Some(SubscriberStatus::Bounced);
                    }
                }
                FeedbackKind::Soft => {
                    // Counted once per digest, in digest order; a later digest that reached
                    // the reader without a soft bounce starts the count again.
                    if let Some(g) = digest.filter(|g| *g > soft_digest) {
                        let reached: i64 = sqlx::query_scalar(
                            "SELECT CAST(COUNT(*) AS BIGINT) FROM digests g
                             JOIN deliveries d ON d.digest_id = g.id AND d.subscriber_id = $1
                             WHERE g.id > $2 AND g.id < $3 AND g.kind <> 'test' AND d.state = 'sent'",
                        )
                        .bind(subscriber)
                        .bind(soft_digest)
                        .bind(g)
                        .fetch_one(&mut *tx)
                        .await?;
                        let streak = if reached > 0 || soft_digest == 0 { 1 } else { soft + 1 };
                        let bounce = streak >= soft_after as i64 && status == "confirmed";
                        sqlx::query(
                            "UPDATE subscribers SET soft_bounces = $2, soft_bounce_digest = $3,
                                 status = CASE WHEN $4 THEN 'bounced' ELSE status END
                             WHERE id = $1",
                        )
                        .bind(subscriber)
                        .bind(streak)
                        .bind(g)
                        .bind(bounce)
                        .execute(&mut *tx)
                        .await?;
                        if bounce {
                            became = Some(SubscriberStatus::Bounced);
                        }
                    }
                }
                FeedbackKind::Complaint | FeedbackKind::Unsubscribe => {
                    if Db::unsubscribe_in(&mut tx, subscriber, &how, now).await? {
                        became = Some(SubscriberStatus::Unsubscribed);
                    }
                    if ev.kind == FeedbackKind::Complaint {
                        sqlx::query(
                            "INSERT INTO suppressions (email_hash, reason, at) VALUES ($1, 'complaint', $2)
                             ON CONFLICT (email_hash) DO NOTHING",
                        )
                        .bind(suppression_key(&email_norm))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                FeedbackKind::Delivered => {
                    sqlx::query(
                        "UPDATE subscribers SET soft_bounces = 0 WHERE id = $1 AND soft_bounce_digest < $2",
                    )
                    .bind(subscriber)
                    .bind(digest.unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if became == Some(SubscriberStatus::Bounced) {
                Db::consent(&mut tx, subscriber, ConsentEvent::Bounce, &how, now).await?;
                Db::skip_queued(&mut tx, subscriber).await?;
            }
            self.commit(tx).await?;
            Ok(FeedbackResult::Recorded { subscriber: Some(subscriber), now: became })
        }

        /// Events recorded about one send, per kind.
        pub(crate) async fn feedback_counts(&self, digest: i64) -> anyhow::Result<FeedbackCounts> {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT kind, CAST(COUNT(*) AS BIGINT) FROM feedback_events WHERE digest_id = $1 GROUP BY kind",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?;
            let mut c = FeedbackCounts::default();
            for (kind, n) in rows {
                match kind.parse::<FeedbackKind>() {
                    Ok(FeedbackKind::Hard) => c.hard_bounces = n,
                    Ok(FeedbackKind::Soft) => c.soft_bounces = n,
                    Ok(FeedbackKind::Complaint) => c.complaints = n,
                    Ok(FeedbackKind::Unsubscribe) => c.unsubscribed_by_mail = n,
                    Ok(FeedbackKind::Delivered) => c.delivered = n,
                    Err(_) => {}
                }
            }
            Ok(c)
        }

        /// `rows` without the addresses on the suppression list: those come back only through
        /// their own confirmation, never an import.
        pub(crate) async fn unsuppressed<'r, R: NewReader>(
            &self,
            rows: &'r [R],
        ) -> anyhow::Result<Vec<&'r R>> {
            let suppressed: HashSet<String> =
                sqlx::query_scalar("SELECT email_hash FROM suppressions")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .collect();
            Ok(rows
                .iter()
                .filter(|r| {
                    suppressed.is_empty()
                        || !suppressed.contains(&suppression_key(&r.email().normalized()))
                })
                .collect())
        }

        /// Whether a normalised address is on the suppression list.
        pub(crate) async fn is_suppressed(&self, email_norm: &str) -> anyhow::Result<bool> {
            Ok(sqlx::query_scalar::<_, i64>("SELECT CAST(1 AS BIGINT) FROM suppressions WHERE email_hash = $1")
                .bind(suppression_key(email_norm))
                .fetch_optional(&self.pool)
                .await?
                .is_some())
        }
    }
}
