//! The readers' vocabulary: where a reader stands, what they chose, their consent history and
//! the console's filter over them.

use serde::{Serialize, Serializer};

use super::state::text_enum;
use crate::domain::{ReaderZone, SubscriberEmail, SubscriberName};

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
    /// The reader's IANA time zone; `None`: the newsroom's.
    pub timezone: Option<String>,
    /// Whether they asked for breaking-news alerts (stored 0/1, shown true/false).
    #[serde(serialize_with = "as_bool")]
    pub alerts: i64,
    /// The most alerts a day they chose; `None`: `alerts.max_per_day`.
    pub alerts_per_day: Option<i64>,
}

fn as_bool<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

/// A reader's clock and alerts: their time zone, whether they take breaking news and how
/// much of it a day. Set at sign-up (zone and opt-in) and on the preferences page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderClock {
    /// `None`: the newsroom's zone (stored `NULL`, so the newsroom moving moves them too).
    pub zone: Option<ReaderZone>,
    pub alerts: bool,
    /// `None`: `alerts.max_per_day`, whatever it is when an alert goes out.
    pub alerts_per_day: Option<u32>,
}

/// A reader an import adds: an address, a name and, when the file gave one, a time zone.
/// `(SubscriberEmail, SubscriberName)` is one in the newsroom's zone.
pub trait NewReader: Sync {
    fn email(&self) -> &SubscriberEmail;
    fn name(&self) -> &SubscriberName;
    fn zone(&self) -> Option<ReaderZone> {
        None
    }
}

impl NewReader for (SubscriberEmail, SubscriberName) {
    fn email(&self) -> &SubscriberEmail {
        &self.0
    }
    fn name(&self) -> &SubscriberName {
        &self.1
    }
}

impl NewReader for (SubscriberEmail, SubscriberName, Option<ReaderZone>) {
    fn email(&self) -> &SubscriberEmail {
        &self.0
    }
    fn name(&self) -> &SubscriberName {
        &self.1
    }
    fn zone(&self) -> Option<ReaderZone> {
        self.2
    }
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
    /// Whether the reader takes the schedule `name`: the ones they chose, or, if they never
    /// chose, those new readers get (`for_new_readers`, the schedule's `default`).
    pub fn takes(&self, name: &str, for_new_readers: bool) -> bool {
        match &self.schedules {
            Some(list) => list.split(',').any(|x| x == name),
            None => for_new_readers,
        }
    }

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
