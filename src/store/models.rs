//! Rows and requests that cross the store's boundary.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub status: String,
    pub source: String,
    pub created_at: i64,
    pub consented_at: i64,
    pub confirmed_at: Option<i64>,
    pub unsubscribed_at: Option<i64>,
    pub bounces: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    AlreadyConfirmed,
    /// The link belongs to an older sign-up (the reader left and came back since).
    Stale,
    Unknown,
}

/// An article as it arrives from a feed or the API, already sanitised.
#[derive(Debug, Clone, Default)]
pub struct NewArticle {
    pub guid: Option<String>,
    pub url: String,
    pub title: String,
    pub author: String,
    pub summary: String,
    pub content_html: String,
    pub image: String,
    pub tags: Vec<String>,
    pub published_at: Option<i64>,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Article {
    pub id: i64,
    pub dedup_key: String,
    pub guid: Option<String>,
    pub url: String,
    pub title: String,
    pub author: String,
    pub summary: String,
    pub content_html: String,
    pub image: String,
    pub tags: String,
    pub published_at: Option<i64>,
    pub source: String,
    pub arrived_at: i64,
    pub updated_at: i64,
}

impl Article {
    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    Scheduled,
    Manual,
    Test,
}

impl DigestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestKind::Scheduled => "scheduled",
            DigestKind::Manual => "manual",
            DigestKind::Test => "test",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DigestRequest<'a> {
    pub schedule: &'a str,
    pub kind: DigestKind,
    /// The cron slot of a scheduled digest (a slot makes at most one digest).
    pub slot: Option<i64>,
    /// Before a schedule's first digest, only articles that arrived since then count.
    pub first_since: i64,
    pub max_articles: u32,
    pub test_to: Option<&'a str>,
    /// Marker the renderer left where the digest's own archive URL goes…
    pub web_slot: &'a str,
    /// …which is this prefix followed by the digest's id.
    pub web_prefix: &'a str,
}

/// What the renderer hands back: personal parts still as placeholders.
#[derive(Debug, Clone)]
pub struct RenderedDigest {
    pub subject: String,
    pub html: String,
    pub text: String,
    pub preheader: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOutcome {
    Created {
        id: i64,
        recipients: i64,
    },
    /// This schedule slot already has its digest.
    Exists(i64),
    NothingNew,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Digest {
    pub id: i64,
    pub schedule: String,
    pub kind: String,
    pub slot: Option<i64>,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub preheader: String,
    pub article_ids: String,
    pub test_to: Option<String>,
    pub status: String,
    pub total: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ArchiveEntry {
    pub id: i64,
    pub subject: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub id: i64,
    pub status: String,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    /// Not yet delivered: waiting, being retried or in flight.
    pub pending: i64,
    pub in_flight: i64,
    pub skipped: i64,
    pub cancelled: i64,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Failure {
    pub email: String,
    pub attempts: i64,
    pub error: String,
}

/// A delivery a worker holds a lease on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub digest_id: i64,
    pub subscriber_id: i64,
    pub attempts: i64,
    pub email: Option<String>,
    pub name: String,
    /// The subscriber's status now: someone who left mid-send is skipped.
    pub status: String,
    /// This claim's lease: an outcome other than "sent" is written only while it still holds,
    /// so a worker that overran its lease cannot undo the row's next claim.
    pub lease_until: i64,
}

impl Claimed {
    /// This row handed back unsent, its attempt not counted.
    pub fn release(&self) -> Outcome {
        Outcome::Released {
            id: self.id,
            lease: self.lease_until,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        id: i64,
        message_id: String,
        at: i64,
    },
    Retry {
        id: i64,
        lease: i64,
        error: String,
        next_attempt_at: i64,
    },
    Failed {
        id: i64,
        lease: i64,
        subscriber_id: i64,
        error: String,
        permanent: bool,
    },
    Skipped {
        id: i64,
    },
    /// Handed back unsent (graceful shutdown, a paused send, a relay that cannot be reached).
    Released {
        id: i64,
        lease: i64,
    },
}
