//! A send's report: what became of its messages per edition and address domain, in one
//! query that groups in the database, so a send to a million readers returns a row per
//! domain rather than per reader (the application maps domains to providers).
//!
//! Where each count comes from:
//! - delivered and failed: the ledger's states (`sent`, `failed`);
//! - bounced and complained: `feedback_events` tied to the message's ledger row (a hard
//!   bounce; a soft one is a delay or a full mailbox, and the message may still arrive);
//! - unsubscribed: the reader left (the mail client's button, the link, a mailed request;
//!   not an editor's hand, and not a complaint, counted apart) after this message reached
//!   them and before any other of ours did. The unsubscribe link names the reader, not the
//!   message, so the last message before leaving is the one they left from; each departure
//!   counts for one send only. An erased reader's history is gone, and so is their count;
//! - clicked: `send_clicks`, kept as clicks are counted (see `clicks`).

use super::ReportRow;

/// A message recorded as sent after its send finished: a claim outlives the finish by its
/// lease at most. Sends that finished longer than this before one began cannot have
/// reached its readers after it did.
const LATE_RECORD_MS: i64 = 24 * 3600 * 1000;

for_each_engine! {
    impl Db {
        /// One row per edition and address domain of `digest`'s ledger.
        pub(crate) async fn send_report(&self, digest: i64) -> anyhow::Result<Vec<ReportRow>> {
            Ok(sqlx::query_as::<_, ReportRow>(concat!(
                "WITH this AS (SELECT created_at FROM digests WHERE id = $1),
                 others AS (
                     SELECT g.id, g.created_at FROM digests g, this
                     WHERE g.id <> $1 AND g.kind <> 'test'
                       AND (g.finished_at IS NULL OR g.finished_at >= this.created_at - $2)
                 ),
                 departures AS (
                     SELECT DISTINCT r.id AS delivery_id
                     FROM consent_events c
                     JOIN deliveries r ON r.digest_id = $1 AND r.subscriber_id = c.subscriber_id
                     WHERE c.event = 'unsubscribe' AND c.at >= (SELECT created_at FROM this)
                       AND c.source NOT LIKE 'editor:%' AND c.source NOT LIKE 'complaint:%'
                       AND r.state = 'sent' AND r.sent_at <= c.at
                       AND NOT EXISTS (
                           SELECT 1 FROM others g CROSS JOIN deliveries n
                           WHERE n.digest_id = g.id AND n.subscriber_id = r.subscriber_id
                             AND g.created_at <= c.at AND n.state = 'sent'
                             AND n.sent_at > r.sent_at AND n.sent_at <= c.at
                       )
                 ),
                 feedback AS (
                     SELECT delivery_id,
                            MAX(CASE WHEN kind = 'hard' THEN 1 ELSE 0 END) AS bounced,
                            MAX(CASE WHEN kind = 'complaint' THEN 1 ELSE 0 END) AS complained
                     FROM feedback_events
                     WHERE digest_id = $1 AND kind IN ('hard', 'complaint') AND delivery_id IS NOT NULL
                     GROUP BY delivery_id
                 )
                 SELECT d.edition,
                        substr(s.email_norm, ", engine_sql!(strpos), "(s.email_norm, '@') + 1) AS domain,
                        CAST(SUM(CASE WHEN d.state = 'sent' THEN 1 ELSE 0 END) AS BIGINT) AS delivered,
                        CAST(SUM(CASE WHEN d.state = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed,
                        CAST(SUM(COALESCE(f.bounced, 0)) AS BIGINT) AS bounced,
                        CAST(SUM(COALESCE(f.complained, 0)) AS BIGINT) AS complained,
                        CAST(SUM(CASE WHEN u.delivery_id IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS unsubscribed
                 FROM deliveries d
                 LEFT JOIN subscribers s ON s.id = d.subscriber_id
                 LEFT JOIN feedback f ON f.delivery_id = d.id
                 LEFT JOIN departures u ON u.delivery_id = d.id
                 WHERE d.digest_id = $1
                 GROUP BY d.edition, domain
                 ORDER BY d.edition, domain",
            ))
            .bind(digest)
            .bind(LATE_RECORD_MS)
            .fetch_all(&self.pool)
            .await?)
        }

        /// The editions a send made beyond the main one (0, every section): (edition,
        /// sections' slugs, comma-separated).
        pub(crate) async fn edition_sections(&self, digest: i64) -> anyhow::Result<Vec<(i64, String)>> {
            Ok(sqlx::query_as(
                "SELECT edition, sections FROM digest_editions WHERE digest_id = $1 ORDER BY edition",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
