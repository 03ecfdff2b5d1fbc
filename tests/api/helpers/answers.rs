//! The admin API's answers, typed for what the tests read: a send's state and counts, its
//! failures, a page of readers. A test reads `send.sent`, not `v["sent"].as_i64()`; a field the
//! API drops fails the test where it is parsed. Tests that check the raw JSON shape keep
//! `serde_json::Value` (`admin_get::<Value>`).

use serde::Deserialize;

/// `GET /api/sends/{id}`, and a control's answer (pause, resume, cancel, retry).
#[derive(Debug, Deserialize)]
pub struct SendReport {
    /// `queued`, `sending`, `paused`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub pending: i64,
    pub in_flight: i64,
    pub skipped: i64,
    pub cancelled: i64,
    pub error: Option<String>,
    /// What came back after the relay took the messages (only `GET /api/sends/{id}` says).
    #[serde(default)]
    pub feedback: Feedback,
    /// Clicks per article (only `GET /api/sends/{id}` says).
    #[serde(default)]
    pub clicks: Vec<ArticleClicks>,
    /// Rows a retry put back in the queue (a retry's answer only).
    pub requeued: Option<i64>,
}

/// Bounces and complaints reported for one send.
#[derive(Debug, Default, Deserialize)]
pub struct Feedback {
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    pub unsubscribed_by_mail: i64,
}

/// One article's clicks in a send (never per reader).
#[derive(Debug, Deserialize)]
pub struct ArticleClicks {
    pub url: String,
    pub clicks: i64,
}

/// `GET /api/sends/{id}/failures`: one reader the send could not reach.
#[derive(Debug, Deserialize)]
pub struct Failure {
    pub email: String,
    pub attempts: i64,
    pub error: String,
}

/// `GET /api/subscribers?…`: one page of readers and how many match in all.
#[derive(Debug, Deserialize)]
pub struct Readers {
    pub total: i64,
    pub subscribers: Vec<Reader>,
}

/// A reader as the API lists them.
#[derive(Debug, Deserialize)]
pub struct Reader {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// `pending`, `confirmed`, `unsubscribed` or `bounced`.
    pub status: String,
    /// `page`, `api`, `import`, `embed:{article}`…
    pub source: String,
    pub bounces: i64,
}
