//! What the delivery workers hold and hand back: a digest's claimed ledger rows and their
//! outcomes, and the mail queue's one-off emails (confirmations, welcomes) and theirs.

use super::state::text_enum;

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
    /// The subject a subject test gave this row (an index into the digest's subjects).
    pub variant: Option<i64>,
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

    /// This row handed back unsent to wait until `until`, its attempt not counted; `why`
    /// is kept in its `last_error`.
    pub fn hold_until(&self, until: i64, why: String) -> Outcome {
        Outcome::Held {
            id: self.id,
            lease: self.lease_until,
            until: Some(until),
            why,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        id: i64,
        message_id: String,
        at: i64,
        /// The relay that took it (none for the outbox).
        relay: Option<std::sync::Arc<str>>,
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
    /// Held back unsent without spending the attempt (a warm-up's allowance is used, or its
    /// mailbox provider backs off): due again at `until`, or skipped for good when `None`;
    /// `why` is kept in `last_error`.
    Held {
        id: i64,
        lease: i64,
        until: Option<i64>,
        why: String,
    },
    /// Handed back unsent (graceful shutdown, a paused send, a relay that cannot be reached).
    Released {
        id: i64,
        lease: i64,
    },
}

text_enum! {
    /// What a one-off email is.
    pub enum MailKind {
        /// The double opt-in request, to a pending reader.
        Confirm = "confirm",
        /// The one welcome, to a reader who confirmed (`newsletter.welcome`).
        Welcome = "welcome",
    }
}

/// A one-off email (a confirmation, a welcome) claimed from the mail queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedMail {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub kind: MailKind,
    pub subscriber_id: i64,
    /// The consent time the confirm link carries (a welcome: the consent it confirmed).
    pub issued: i64,
    pub attempts: i64,
    pub lease_until: i64,
    pub created_at: i64,
    /// `None` when there is nobody to send it to any more: a confirmation's reader confirmed
    /// meanwhile, left, was erased or signed up again with a newer link; a welcome's reader
    /// is no longer confirmed.
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
