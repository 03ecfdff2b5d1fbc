//! Bounces, complaints and other reports about sent mail: the event to record and what
//! recording it did.

use serde::Serialize;

use super::{state::text_enum, subscribers::SubscriberStatus};

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
