//! DMARC aggregate reports: what a report says (read by `bounces::dmarc`), and what the
//! reputation page counts from them.

use serde::Serialize;

/// A DMARC disposition: what the receiver did with mail that failed (RFC 7489 §6.6.4),
/// as `policy_evaluated/disposition` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    None,
    Quarantine,
    Reject,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::None => "none",
            Disposition::Quarantine => "quarantine",
            Disposition::Reject => "reject",
        }
    }

    /// The report's text, any case; `None` for anything else.
    pub fn parse(s: &str) -> Option<Disposition> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Disposition::None),
            "quarantine" => Some(Disposition::Quarantine),
            "reject" => Some(Disposition::Reject),
            _ => None,
        }
    }
}

/// One report, as read from its XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDmarcReport {
    /// `report_metadata/org_name`: who reports (google.com, Yahoo, Outlook.com…).
    pub org: String,
    /// `report_metadata/report_id`: unique per organisation.
    pub report_id: String,
    /// `policy_published/domain`: the domain the report is about.
    pub domain: String,
    /// `date_range`, ms since the epoch.
    pub begin_ms: i64,
    pub end_ms: i64,
    pub records: Vec<DmarcRecord>,
}

/// One `<record>`: mail from one source IP with one set of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    /// Normalised (`IpAddr`'s own text).
    pub source_ip: String,
    pub count: i64,
    pub disposition: Disposition,
    /// `policy_evaluated/dkim` = pass: DKIM passed *and* aligned with the From domain.
    pub dkim_aligned: bool,
    /// `policy_evaluated/spf` = pass: SPF passed and aligned.
    pub spf_aligned: bool,
    /// `identifiers/header_from`, lower case.
    pub header_from: String,
}

/// Message counts of a group of records (a day, a reporting organisation, everything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DmarcCounts {
    /// The day (YYYY-MM-DD) or the organisation; empty for the total.
    pub key: String,
    pub messages: i64,
    /// DMARC pass: DKIM or SPF aligned.
    pub passed: i64,
    pub dkim_aligned: i64,
    pub spf_aligned: i64,
}

/// A source whose mail failed DMARC (neither DKIM nor SPF aligned), and what receivers did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DmarcSource {
    pub source_ip: String,
    pub messages: i64,
    pub none: i64,
    pub quarantine: i64,
    pub reject: i64,
    /// How many organisations reported it.
    pub orgs: i64,
}

/// The records since a day, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmarcSummary {
    pub total: DmarcCounts,
    pub by_day: Vec<DmarcCounts>,
    pub by_org: Vec<DmarcCounts>,
    pub failing: Vec<DmarcSource>,
    /// Reports stored with a record in the window.
    pub reports: i64,
}
