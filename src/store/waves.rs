//! Local-hour sends: the zones readers live in (when a local-hour schedule fires), a send's
//! waves as its page shows them, and a reader's waiting rows moved when they change zone.
//!
//! A row of a local-hour digest carries its wave (the reader's zone) and the instant the
//! slot falls there (`not_before`, copied to `next_attempt_at`, so the claim's index passes
//! over rows that are not due).

use super::{Wave, Waves};

for_each_engine! {
    impl Db {
        /// The distinct time zones confirmed readers chose (the newsroom's is not among them
        /// unless chosen).
        pub(crate) async fn reader_zones(&self) -> anyhow::Result<Vec<String>> {
            Ok(sqlx::query_scalar(
                "SELECT DISTINCT timezone FROM subscribers
                 WHERE timezone IS NOT NULL AND status = 'confirmed' ORDER BY timezone LIMIT 1000",
            )
            .fetch_all(&self.pool)
            .await?)
        }

        /// A local-hour send's waves, earliest first: zone, instant, readers, sent. One pass
        /// over the send's rows (a send's page, not a hot path).
        pub(crate) async fn waves(&self, digest: i64) -> anyhow::Result<Vec<Wave>> {
            Ok(sqlx::query_as::<_, Wave>(
                "SELECT wave AS zone, CAST(MIN(not_before) AS BIGINT) AS at,
                        CAST(COUNT(*) AS BIGINT) AS readers,
                        CAST(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) AS BIGINT) AS sent
                 FROM deliveries WHERE digest_id = $1 AND wave IS NOT NULL
                 GROUP BY wave ORDER BY MIN(not_before), wave",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?)
        }

        /// A reader's rows still waiting for their wave: (row, the send's schedule, slot).
        pub(crate) async fn waiting_waves(&self, reader: i64) -> anyhow::Result<Vec<(i64, String, i64)>> {
            Ok(sqlx::query_as(
                "SELECT d.id, g.schedule, g.slot FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 WHERE d.subscriber_id = $1 AND d.state = 'pending' AND d.wave IS NOT NULL
                   AND g.slot IS NOT NULL",
            )
            .bind(reader)
            .fetch_all(&self.pool)
            .await?)
        }

        /// Moves a waiting row to another wave (the reader changed zone). False when it is no
        /// longer waiting.
        pub(crate) async fn move_to_wave(&self, row: i64, zone: &str, at: i64) -> anyhow::Result<bool> {
            Ok(sqlx::query(
                "UPDATE deliveries SET wave = $1, not_before = $2, next_attempt_at = $2
                 WHERE id = $3 AND state = 'pending' AND wave IS NOT NULL",
            )
            .bind(zone)
            .bind(at)
            .bind(row)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1)
        }

        /// A local-hour digest's waves as SQL `VALUES` rows (`('Asia/Dubai', CAST(… AS
        /// BIGINT)), …`), one for each zone readers chose and the newsroom's, and the
        /// newsroom's instant for a reader whose zone is not among them. Zone names are
        /// written into the SQL only when they are made of the characters IANA names use; any
        /// other value falls to the newsroom's instant.
        pub(crate) async fn wave_table(conn: &mut Conn, waves: Waves<'_>) -> anyhow::Result<(String, i64)> {
            let mut zones: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT timezone FROM subscribers WHERE timezone IS NOT NULL",
            )
            .fetch_all(&mut *conn)
            .await?;
            zones.push(waves.newsroom.to_owned());
            // One row a zone: a reader joins exactly one.
            zones.sort();
            zones.dedup();
            let safe = |z: &str| {
                !z.is_empty()
                    && z.len() <= 64
                    && z.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
            };
            let rows: Vec<String> = zones
                .iter()
                .filter(|z| safe(z))
                .map(|z| format!("('{z}', CAST({} AS BIGINT))", (waves.at)(z)))
                .collect();
            Ok((rows.join(", "), (waves.at)(waves.newsroom)))
        }
    }
}
