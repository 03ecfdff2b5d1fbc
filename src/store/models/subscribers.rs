//! The readers' vocabulary: where a reader stands, what they chose, their consent history and
//! the console's filter over them.

use serde::Serialize;

use super::state::text_enum;

text_enum! {
    /// Where a reader stands.
    pub enum SubscriberStatus {
        Pending = "pending",
        Confirmed = "confirmed",
        Unsubscribed = "unsubscribed",
        Bounced = "bounced",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub status: SubscriberStatus,
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

/// What a reader chose, as stored: schedule names and section slugs, comma-separated and
/// sorted; `None` = every one (including those added later).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub schedules: Option<String>,
    /// The sections, for every schedule without its own below.
    pub sections: Option<String>,
    /// (schedule, sections) where a schedule has its own, by schedule name.
    pub by_schedule: Vec<(String, String)>,
}

impl Choice {
    /// The sections the reader takes in `schedule` (`None`: every one).
    pub fn sections_in(&self, schedule: &str) -> Option<&str> {
        self.by_schedule
            .iter()
            .find(|(s, _)| s == schedule)
            .map(|(_, l)| l.as_str())
            .or(self.sections.as_deref())
    }
}

text_enum! {
    /// A step in a reader's consent history.
    pub enum ConsentEvent {
        Signup = "signup",
        Confirm = "confirm",
        Unsubscribe = "unsubscribe",
        Bounce = "bounce",
        Import = "import",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConsentRow {
    pub at: i64,
    #[sqlx(try_from = "String")]
    pub event: ConsentEvent,
    pub source: String,
}

/// Which readers a console list shows.
#[derive(Debug, Clone, Default)]
pub struct ReaderFilter {
    pub status: Option<SubscriberStatus>,
    /// Where they signed up: `page`, `embed`, `api` or `import`.
    pub source: Option<String>,
    /// Part of an address or a name; under three characters, an address prefix (see
    /// `list_subscribers`).
    pub q: Option<String>,
}
