//! Rows and requests that cross the store's boundary, and the states stored as text.
//!
//! Long (about 700 lines) because every row type of every aggregate is here, one short
//! definition each: one concern (the store's vocabulary), many words. Issue 16 may split it by
//! aggregate, beside the SQL files.

use serde::{Serialize, Serializer};

/// A state kept in a TEXT column: a Rust enum here, so a typo is a compile error, and its
/// lower-case name in the database (both engines store it the same way).
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, UnknownState> {
                match s {
                    $($s => Ok($name::$v),)*
                    _ => Err(UnknownState(format!(concat!(stringify!($name), " `{}`"), s))),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;
            fn try_from(s: String) -> Result<Self, UnknownState> {
                s.parse()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

/// A state name the code does not know (a newer version wrote it, or the data is damaged).
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown state {0}")]
pub struct UnknownState(String);

text_enum! {
    /// Where a reader stands.
    pub enum SubscriberStatus {
        Pending = "pending",
        Confirmed = "confirmed",
        Unsubscribed = "unsubscribed",
        Bounced = "bounced",
    }
}

text_enum! {
    pub enum DigestKind {
        Scheduled = "scheduled",
        Manual = "manual",
        /// One address, not published, does not consume the articles.
        Test = "test",
    }
}

text_enum! {
    /// A digest's send.
    pub enum DigestStatus {
        Queued = "queued",
        Sending = "sending",
        Paused = "paused",
        Done = "done",
        /// Stopped: the relay rejected everything (resume or retry when fixed).
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl DigestStatus {
    /// Still to be sent, or sending.
    pub fn is_open(self) -> bool {
        matches!(self, DigestStatus::Queued | DigestStatus::Sending)
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

/// An article as it arrives from a feed or the API, already sanitised.
#[derive(Debug, Clone, Default)]
pub struct NewArticle {
    /// The feed's (or the API caller's) id for it: identifies it within its `source`.
    pub guid: Option<String>,
    pub url: String,
    /// `url` normalised: identifies it across sources.
    pub canonical_url: String,
    pub title: String,
    pub author: String,
    pub summary: String,
    pub content_html: String,
    pub image: String,
    /// The image's own description from the feed, if it had one.
    pub image_alt: String,
    pub tags: Vec<String>,
    /// The feed's categories and the API's `section`: what `[[sections]]` map.
    pub categories: Vec<String>,
    pub published_at: Option<i64>,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Article {
    pub id: i64,
    pub dedup_key: String,
    pub guid: Option<String>,
    pub url: String,
    pub canonical_url: String,
    pub title: String,
    pub author: String,
    pub summary: String,
    pub content_html: String,
    pub image: String,
    pub image_alt: String,
    pub tags: String,
    pub categories: String,
    pub published_at: Option<i64>,
    pub source: String,
    pub arrived_at: i64,
    pub updated_at: i64,
}

impl Article {
    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }

    /// The slugs of the `sections` this article belongs to, by its categories and tags.
    pub fn section_slugs<'a>(&self, sections: &'a [crate::config::Section]) -> Vec<&'a str> {
        let cats: Vec<String> = serde_json::from_str(&self.categories).unwrap_or_default();
        let tags = self.tag_list();
        sections
            .iter()
            .filter(|s| s.matches(cats.iter().chain(tags.iter()).map(String::as_str)))
            .map(|s| s.slug.as_str())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct DigestRequest<'a> {
    pub schedule: &'a str,
    /// Whether readers who never chose schedules get this one (the schedule's `default`).
    pub for_new_readers: bool,
    pub kind: DigestKind,
    /// The cron slot of a scheduled digest (a slot makes at most one digest).
    pub slot: Option<i64>,
    /// Before a schedule's first digest, only articles that arrived since then count.
    pub first_since: i64,
    /// How many new articles are read: the schedule's `max_articles`, more when readers'
    /// sections each take their own share of them.
    pub max_articles: u32,
    /// The distinct section choices the editions were rendered for (see
    /// [`Db::section_choices`]); a reader who chose differently meanwhile makes it stale.
    pub choices: &'a [String],
    pub test_to: Option<&'a str>,
    /// Who asked for a manual or test send (an account, a token, the command line).
    pub created_by: Option<&'a str>,
}

/// What the renderer hands back: the email with its personal parts (and its own archive
/// link) still as slots marked with `slot_key`, and the public web copy.
#[derive(Debug, Clone)]
pub struct RenderedDigest {
    /// The articles it carries, in order.
    pub article_ids: Vec<i64>,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub web_html: String,
    pub preheader: String,
    pub slot_key: String,
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
    /// The schedule is paused: its slot passed without a digest.
    Paused,
    /// New articles arrived after the digest was rendered: render it again.
    Stale,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Digest {
    pub id: i64,
    pub schedule: String,
    #[sqlx(try_from = "String")]
    pub kind: DigestKind,
    pub slot: Option<i64>,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub web_html: String,
    pub slot_key: String,
    pub preheader: String,
    pub article_ids: String,
    pub test_to: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: DigestStatus,
    pub total: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
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

/// Where a click link's message leads (see `store::clicks`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClickTarget {
    pub digest_id: i64,
    pub sent_at: Option<i64>,
    #[sqlx(try_from = "String")]
    pub kind: DigestKind,
    pub article_ids: String,
    /// The clicked article's URL, if it exists.
    pub url: Option<String>,
}

/// A title and a link («الأكثر قراءة»).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ArticleClicks {
    pub article_id: i64,
    pub title: String,
    pub url: String,
    pub clicks: i64,
}

/// A rendering of a digest for the readers who chose `sections` (comma-separated slugs).
#[derive(Debug, Clone)]
pub struct RenderedEdition {
    pub sections: String,
    pub rendered: RenderedDigest,
}

/// A stored edition: what differs from the digest it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Edition {
    pub edition: i64,
    pub sections: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub article_ids: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ArchiveEntry {
    pub id: i64,
    pub schedule: String,
    pub subject: String,
    pub created_at: i64,
}

/// A send's progress, from counters kept with the digest (no count over its ledger).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Progress {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub status: DigestStatus,
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
    /// Which rendering of the digest the reader gets (0: every section; see `digest_editions`).
    pub edition: i64,
    pub subscriber_id: i64,
    pub attempts: i64,
    pub email: Option<String>,
    pub name: String,
    /// Whether the reader is (still) confirmed: someone who left before the claim is skipped.
    pub confirmed: i64,
    /// This claim's lease: an outcome other than "sent" is written only while it still holds,
    /// so a worker that overran its lease cannot undo the row's next claim.
    pub lease_until: i64,
    /// When this process claimed it (before its claim committed): a reader who left after
    /// this is not sent to, whatever `confirmed` said.
    #[sqlx(skip)]
    pub claimed_at: ClaimedAt,
}

/// The moment a claimed row was read; defaults to now, which is when rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimedAt(pub std::time::Instant);

impl Default for ClaimedAt {
    fn default() -> Self {
        ClaimedAt(std::time::Instant::now())
    }
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
        error: String,
        /// A 5xx: counts toward the reader's `bounce_after` once the send finishes.
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

/// A one-off email (a confirmation) claimed from the mail queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: String,
    pub subscriber_id: i64,
    /// The consent time the confirm link carries.
    pub issued: i64,
    pub attempts: i64,
    pub lease_until: i64,
    pub created_at: i64,
    /// `None` when there is nobody to send it to any more (confirmed meanwhile, left, erased,
    /// or signed up again with a newer link).
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub enum MailOutcome<'a> {
    Sent,
    Skipped,
    /// Try again at `at`; `counts` is false when the relay could not be reached at all.
    Retry {
        at: i64,
        error: &'a str,
        counts: bool,
    },
    Failed {
        error: &'a str,
    },
}

text_enum! {
    /// What a console account or an API token may do. Each role can do what the one before
    /// it can.
    pub enum Role {
        /// Reads everything.
        Viewer = "viewer",
        /// Also previews, tests, sends, pauses and cancels, and manages readers and articles.
        Editor = "editor",
        /// Also manages accounts and API tokens.
        Owner = "owner",
    }
}

impl Role {
    /// The role's name in the console and its audit log.
    pub fn arabic(self) -> &'static str {
        match self {
            Role::Viewer => "مطّلع",
            Role::Editor => "محرّر",
            Role::Owner => "مالك",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Editor => 1,
            Role::Owner => 2,
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
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

/// A console account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Admin {
    pub id: i64,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub failed_logins: i64,
    pub locked_until: i64,
    pub created_at: i64,
}

/// A session's stage: a password alone opens only the second-factor step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    Totp,
    Full,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::Totp => "totp",
            SessionStage::Full => "full",
        }
    }
}

/// A live session and the account it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionAdmin {
    pub admin_id: i64,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub stage: String,
    pub has_totp: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub hint: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client: String,
}

/// One entry for the audit log, written by the operation it records.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub detail: String,
    pub client: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ConsentRow {
    pub at: i64,
    #[sqlx(try_from = "String")]
    pub event: ConsentEvent,
    pub source: String,
}

/// A send as the console lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SendSummary {
    pub id: i64,
    pub schedule: String,
    #[sqlx(try_from = "String")]
    pub kind: DigestKind,
    pub subject: String,
    #[sqlx(try_from = "String")]
    pub status: DigestStatus,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub bounced: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub created_by: Option<String>,
}

/// A schedule's stored state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleState {
    pub name: String,
    pub last_slot: i64,
    pub watermark: Option<i64>,
    pub paused: i64,
}

/// An article an editor took out of a schedule's coming digest.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ExcludedArticle {
    pub id: i64,
    pub title: String,
    pub url: String,
    pub excluded_by: String,
    pub at: i64,
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

text_enum! {
    /// What came back about a message after the relay took it.
    pub enum FeedbackKind {
        /// A permanent failure (5.x.x): counts toward `delivery.bounce_after`.
        Hard = "hard",
        /// A temporary one (4.x.x): `bounces.soft_bounce_after` digests in a row bounce.
        Soft = "soft",
        /// The reader marked it as spam: unsubscribed at once, and suppressed.
        Complaint = "complaint",
        /// An unsubscribe sent by mail.
        Unsubscribe = "unsubscribe",
        /// The receiving server took it (from a provider or a DSN).
        Delivered = "delivered",
    }
}

/// Whom an event is about, as precisely as its source could say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackTarget {
    Delivery(i64),
    Subscriber(i64),
    /// Our Message-ID, with or without its angle brackets.
    MessageId(String),
    /// A normalised address (only from sources that prove who they are).
    Email(String),
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct FeedbackEvent {
    pub kind: FeedbackKind,
    /// imap, file, ses, postmark, mailgun, sendgrid
    pub source: String,
    /// Unique for this event at its source (a report's Message-ID, a webhook's event id):
    /// the same report read twice changes nothing.
    pub dedup_key: String,
    /// Whom it is about, most precise first: the first that names something is taken.
    pub targets: Vec<FeedbackTarget>,
    pub status: String,
    pub detail: String,
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FeedbackResult {
    /// Already recorded (the same report or the same delivery's bounce).
    Duplicate,
    /// It names nothing we sent.
    Unknown,
    Recorded {
        subscriber: Option<i64>,
        /// The reader's status when it changed.
        now: Option<SubscriberStatus>,
    },
}

/// Events about one send, per kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedbackCounts {
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    pub unsubscribed_by_mail: i64,
    pub delivered: i64,
}
