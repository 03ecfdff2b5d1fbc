//! Sends planned for later: the row as the console and the API show it, what planning one
//! stores, and what starting one checks the row still is.

use serde::Serialize;

use super::digests::DigestStatus;

/// A send planned for later (a digest row with `starts_at`): waiting while `status` is
/// `queued`, then the send it became.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Plan {
    pub id: i64,
    pub schedule: String,
    #[sqlx(try_from = "String")]
    pub status: DigestStatus,
    /// When it starts (ms): the newsroom's instant, or the earliest zone's for `local_time`.
    pub starts_at: i64,
    /// The subject readers will see (the one the digest was sent with, once started).
    pub subject: String,
    /// The editor's subject, instead of the schedule's.
    pub planned_subject: Option<String>,
    /// Each reader at this wall-clock time in their own zone (`YYYY-MM-DDTHH:MM:SS`).
    pub local_time: Option<String>,
    pub created_by: Option<String>,
    /// Why it sent nothing (`nothing_new`), once started.
    pub reason: Option<String>,
}

/// What planning a send stores.
#[derive(Debug, Clone, Copy)]
pub struct NewPlan<'a> {
    pub schedule: &'a str,
    pub starts_at: i64,
    /// The subject as readers will see it (the digest's own replaces it when it starts).
    pub subject: &'a str,
    /// The editor's subject template, when not the schedule's.
    pub planned_subject: Option<&'a str>,
    pub local_time: Option<&'a str>,
    pub created_by: &'a str,
}

/// A planned send being started: the row is filled only while it is still `queued` with
/// these values, so a start that raced a cancel, an edit or another process's start leaves
/// it alone (see [`super::DigestRequest::plan`]).
#[derive(Debug, Clone, Copy)]
pub struct PlanFill<'a> {
    pub id: i64,
    pub starts_at: i64,
    pub subject: Option<&'a str>,
    pub local_time: Option<&'a str>,
}

impl<'a> PlanFill<'a> {
    pub fn of(p: &'a Plan) -> PlanFill<'a> {
        PlanFill {
            id: p.id,
            starts_at: p.starts_at,
            subject: p.planned_subject.as_deref(),
            local_time: p.local_time.as_deref(),
        }
    }
}
