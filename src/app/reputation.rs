//! The sender's reputation as the inbox providers report it: DMARC aggregate reports (read
//! by `bounces::dmarc`) over the last [`REPUTATION_DAYS`] days, as pass rates per day and per
//! reporting organisation, and the sources whose mail failed. The console's «السمعة» page,
//! `GET /api/reputation` and `/metrics` all read it from here.
//!
//! DMARC passes when DKIM or SPF passed *aligned* with the From domain (`policy_evaluated`);
//! a failing source is one whose mail passed neither: a relay not in the SPF record or not
//! signing with our key, a forwarder, or someone sending in our name. Counts only: a
//! record names a sending IP, never a reader.

use chrono::{Days, Utc};
use serde::Serialize;

use super::App;
use crate::store::{DmarcCounts, DmarcSource};

/// The window the page, the API and the metrics count over, today (UTC) included.
pub const REPUTATION_DAYS: u64 = 30;

/// Messages and how many passed, with the rates (0 to 1; `None` with no messages).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    pub messages: i64,
    /// DMARC pass: DKIM or SPF aligned.
    pub passed: i64,
    pub dkim_aligned: i64,
    pub spf_aligned: i64,
    pub pass_rate: Option<f64>,
    pub dkim_rate: Option<f64>,
    pub spf_rate: Option<f64>,
}

impl From<&DmarcCounts> for Rates {
    fn from(c: &DmarcCounts) -> Rates {
        let rate = |n: i64| (c.messages > 0).then(|| n as f64 / c.messages as f64);
        Rates {
            messages: c.messages,
            passed: c.passed,
            dkim_aligned: c.dkim_aligned,
            spf_aligned: c.spf_aligned,
            pass_rate: rate(c.passed),
            dkim_rate: rate(c.dkim_aligned),
            spf_rate: rate(c.spf_aligned),
        }
    }
}

/// One group's rates: a day (YYYY-MM-DD) or a reporting organisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRates {
    pub key: String,
    #[serde(flatten)]
    pub rates: Rates,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reputation {
    /// The window: its days, and its first day (UTC).
    pub days: u64,
    pub since: String,
    /// Reports with a record in the window.
    pub reports: i64,
    pub total: Rates,
    /// Days with reports, oldest first.
    pub by_day: Vec<GroupRates>,
    /// Reporting organisations, the most messages first.
    pub by_org: Vec<GroupRates>,
    /// Sources whose mail passed neither DKIM nor SPF aligned, the most messages first,
    /// with what receivers did with it.
    pub failing: Vec<DmarcSource>,
}

/// The first day of the window (UTC).
fn since_day() -> String {
    let today = Utc::now().date_naive();
    (today - Days::new(REPUTATION_DAYS - 1))
        .format("%Y-%m-%d")
        .to_string()
}

impl App {
    /// The DMARC reports of the window, counted. Counts only: any role may read them.
    pub async fn reputation(&self) -> anyhow::Result<Reputation> {
        let since = since_day();
        let s = self.store.dmarc_summary(&since).await?;
        let group = |c: &DmarcCounts| GroupRates {
            key: c.key.clone(),
            rates: c.into(),
        };
        Ok(Reputation {
            days: REPUTATION_DAYS,
            reports: s.reports,
            total: (&s.total).into(),
            by_day: s.by_day.iter().map(group).collect(),
            by_org: s.by_org.iter().map(group).collect(),
            failing: s.failing,
            since,
        })
    }

    /// The window's totals only, for `/metrics`.
    pub async fn reputation_totals(&self) -> anyhow::Result<Rates> {
        Ok((&self.store.dmarc_totals(&since_day()).await?).into())
    }
}
