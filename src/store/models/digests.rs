//! Digests: what creating one asks for and returns, the stored digest and its editions, and
//! how a send is seen (progress, failures, the archive, the console's list of sends).

use serde::Serialize;

use super::state::text_enum;

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
    /// (reader, article, their sections) for each new article a reader of this schedule had
    /// as an alert, as read when rendering (see [`Db::alerted`]): their editions leave it
    /// out; one that changed meanwhile makes the digest stale.
    pub alerted: &'a [Alerted],
    /// For each edition key made for alerted readers ([`RenderedEdition::sections`]), its
    /// readers; a key with no rendered edition (nothing left for them) sends them nothing.
    pub without: &'a [(String, Vec<i64>)],
    /// A local-hour digest: the newsroom's zone (a reader's who has none) and the instant
    /// the slot falls in a zone; each reader's row waits for theirs.
    pub waves: Option<Waves<'a>>,
    /// The version of the editor's desk the digest was rendered from (`None`: nothing was
    /// set); a change meanwhile makes it stale, and a real digest takes the desk.
    pub desk: Option<i64>,
    /// A subject test: samples get each subject, the rest wait for the winner.
    pub subject_test: Option<&'a super::SubjectTest>,
    /// A send planned for later, starting: its row is filled instead of a new one inserted,
    /// only while it still waits as read ([`DigestOutcome::Exists`] otherwise).
    pub plan: Option<super::PlanFill<'a>>,
}

/// (reader, article, the reader's sections for the schedule, `None`: every section).
pub type Alerted = (i64, i64, Option<String>);

/// See [`DigestRequest::waves`].
#[derive(Clone, Copy)]
pub struct Waves<'a> {
    pub newsroom: &'a str,
    pub at: &'a (dyn Fn(&str) -> i64 + Sync),
}

impl std::fmt::Debug for Waves<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waves")
            .field("newsroom", &self.newsroom)
            .finish()
    }
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

/// A rendering of a digest for the readers who chose `sections` (comma-separated slugs); for
/// readers who had some of its articles as alerts, the key also names those left out
/// (`politics|-12,15`, or `|-12` for readers of every section).
#[derive(Debug, Clone)]
pub struct RenderedEdition {
    pub sections: String,
    pub rendered: RenderedDigest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestOutcome {
    Created {
        id: i64,
        recipients: i64,
    },
    /// This schedule slot already has its digest; or this planned send was started,
    /// cancelled or edited elsewhere since it was read.
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
    /// A subject test's subjects (JSON array); a row's `variant` picks one.
    pub test_subjects: Option<String>,
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
    /// The guard's stop, while the send stands paused by it (`delivery.guard`).
    #[sqlx(flatten)]
    pub guard: super::GuardStop,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Failure {
    pub email: String,
    pub attempts: i64,
    pub error: String,
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
    /// A send planned for later: when it starts (or started).
    pub starts_at: Option<i64>,
    /// Why a planned send sent nothing (`nothing_new`).
    pub reason: Option<String>,
    /// The guard's stop, while the send stands paused by it.
    #[sqlx(flatten)]
    pub guard: super::GuardStop,
}

/// A local-hour send's wave: its readers in one zone, due when the slot falls there.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Wave {
    pub zone: String,
    /// When the slot falls in `zone` (ms).
    pub at: i64,
    pub readers: i64,
    pub sent: i64,
}
