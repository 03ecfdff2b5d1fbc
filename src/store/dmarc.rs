//! DMARC aggregate reports: each stored once (unique on organisation and report id, so a
//! mailbox read twice, or a report mailed twice, changes nothing), with its records; and the
//! counts the reputation page and `/metrics` show, grouped in the database.

use anyhow::Context;
use chrono::{TimeZone, Utc};

use super::{DmarcCounts, DmarcSource, DmarcSummary, NewDmarcReport};

/// Records per INSERT: 9 parameters each, far under either engine's limit.
const RECORDS_PER_INSERT: usize = 500;
/// Failing sources shown, the largest first.
const FAILING_SHOWN: i64 = 50;

/// The sums every grouping takes.
macro_rules! counts_sql {
    ($key:literal, $rest:literal) => {
        concat!(
            "SELECT ", $key, " AS key,
                    CAST(COALESCE(SUM(messages), 0) AS BIGINT) AS messages,
                    CAST(COALESCE(SUM(CASE WHEN dkim_aligned = 1 OR spf_aligned = 1 THEN messages ELSE 0 END), 0) AS BIGINT) AS passed,
                    CAST(COALESCE(SUM(CASE WHEN dkim_aligned = 1 THEN messages ELSE 0 END), 0) AS BIGINT) AS dkim_aligned,
                    CAST(COALESCE(SUM(CASE WHEN spf_aligned = 1 THEN messages ELSE 0 END), 0) AS BIGINT) AS spf_aligned
             FROM dmarc_records WHERE day >= $1 ",
            $rest
        )
    };
}

/// YYYY-MM-DD (UTC) of a time in ms.
fn utc_day(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

for_each_engine! {
    impl Db {
        /// Stores a report and its records in one transaction; false when this organisation's
        /// report of that id was stored before (nothing changes).
        pub(crate) async fn store_dmarc_report(&self, r: &NewDmarcReport, now: i64) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO dmarc_reports (org, report_id, domain, begin_at, end_at, received_at, records)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (org, report_id) DO NOTHING RETURNING id",
            )
            .bind(&r.org)
            .bind(&r.report_id)
            .bind(&r.domain)
            .bind(r.begin_ms)
            .bind(r.end_ms)
            .bind(now)
            .bind(r.records.len() as i64)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to store a DMARC report")?;
            let Some(id) = id else {
                return Ok(false);
            };
            let day = utc_day(r.begin_ms);
            for chunk in r.records.chunks(RECORDS_PER_INSERT) {
                let mut qb = sqlx::QueryBuilder::<DB>::new(
                    "INSERT INTO dmarc_records (report, day, org, source_ip, messages, disposition, dkim_aligned, spf_aligned, header_from) ",
                );
                qb.push_values(chunk, |mut b, rec| {
                    b.push_bind(id)
                        .push_bind(&day)
                        .push_bind(&r.org)
                        .push_bind(&rec.source_ip)
                        .push_bind(rec.count)
                        .push_bind(rec.disposition.as_str())
                        .push_bind(i64::from(rec.dkim_aligned))
                        .push_bind(i64::from(rec.spf_aligned))
                        .push_bind(&rec.header_from);
                });
                qb.build().execute(&mut *tx).await.context("failed to store a DMARC report's records")?;
            }
            self.commit(tx).await?;
            Ok(true)
        }

        /// The records of the days from `since_day` (YYYY-MM-DD) on, in total.
        pub(crate) async fn dmarc_totals(&self, since_day: &str) -> anyhow::Result<DmarcCounts> {
            Ok(sqlx::query_as(counts_sql!("''", ""))
                .bind(since_day)
                .fetch_one(&self.pool)
                .await?)
        }

        /// The records of the days from `since_day` (YYYY-MM-DD) on: in total, per day, per
        /// reporting organisation, and the sources that failed.
        pub(crate) async fn dmarc_summary(&self, since_day: &str) -> anyhow::Result<DmarcSummary> {
            let total = self.dmarc_totals(since_day).await?;
            let by_day: Vec<DmarcCounts> =
                sqlx::query_as(counts_sql!("day", "GROUP BY day ORDER BY day"))
                    .bind(since_day)
                    .fetch_all(&self.pool)
                    .await?;
            let by_org: Vec<DmarcCounts> =
                sqlx::query_as(counts_sql!("org", "GROUP BY org ORDER BY SUM(messages) DESC, org"))
                    .bind(since_day)
                    .fetch_all(&self.pool)
                    .await?;
            let failing: Vec<DmarcSource> = sqlx::query_as(
                "SELECT source_ip,
                        CAST(SUM(messages) AS BIGINT) AS messages,
                        CAST(SUM(CASE WHEN disposition = 'none' THEN messages ELSE 0 END) AS BIGINT) AS none,
                        CAST(SUM(CASE WHEN disposition = 'quarantine' THEN messages ELSE 0 END) AS BIGINT) AS quarantine,
                        CAST(SUM(CASE WHEN disposition = 'reject' THEN messages ELSE 0 END) AS BIGINT) AS reject,
                        CAST(COUNT(DISTINCT org) AS BIGINT) AS orgs
                 FROM dmarc_records
                 WHERE day >= $1 AND dkim_aligned = 0 AND spf_aligned = 0
                 GROUP BY source_ip
                 ORDER BY SUM(messages) DESC, source_ip
                 LIMIT $2",
            )
            .bind(since_day)
            .bind(FAILING_SHOWN)
            .fetch_all(&self.pool)
            .await?;
            let reports: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(DISTINCT report) AS BIGINT) FROM dmarc_records WHERE day >= $1",
            )
            .bind(since_day)
            .fetch_one(&self.pool)
            .await?;
            Ok(DmarcSummary { total, by_day, by_org, failing, reports })
        }
    }
}
