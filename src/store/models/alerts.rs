//! Breaking-news alerts: an urgent article's alert, the readers who take alerts, and the
//! rows an alert's send is made of.

use serde::Serialize;

use super::state::text_enum;

/// The `schedule` of an alert's send in `digests`: not a schedule's name (those cannot start
/// with `!`), so an alert's send never counts as a digest of any schedule.
pub const ALERT_SCHEDULE: &str = "!alert";

text_enum! {
    /// Where an alert is.
    pub enum AlertStatus {
        /// Waiting for an editor's «أرسل» (`alerts.approval = "editor"`).
        Waiting = "waiting",
        /// Approved: it starts at `send_at`, the end of the undo window.
        Approved = "approved",
        /// Started: its send (`digest_id`) is in the ledger.
        Sent = "sent",
        Cancelled = "cancelled",
    }
}

/// An alert as the console and the API list it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Alert {
    pub id: i64,
    pub article_id: i64,
    pub title: String,
    pub url: String,
    #[sqlx(try_from = "String")]
    pub status: AlertStatus,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    /// When an approved alert starts (the end of its undo window).
    pub send_at: Option<i64>,
    /// Its send, once started.
    pub digest_id: Option<i64>,
}

/// A reader who takes alerts: their zone (`None`: the newsroom's) and daily allowance
/// (`None`: `alerts.max_per_day`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertReader {
    pub id: i64,
    pub timezone: Option<String>,
    pub per_day: Option<i64>,
}

/// One reader's row of an alert's send: sent at once (`None`) or when their quiet hours end.
pub type AlertRow = (i64, Option<i64>);

/// Picks an alert's rows from the readers who take alerts and their recent alert messages
/// ((reader, when)), inside the transaction that starts it.
pub type AlertPlanner<'a> = &'a (dyn Fn(&[AlertReader], &[(i64, i64)]) -> Vec<AlertRow> + Sync);
