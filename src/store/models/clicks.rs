//! Click tracking's rows: where a click link leads, and what readers clicked.

use serde::Serialize;

use super::digests::DigestKind;
use crate::domain::Provider;

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
    /// The edition the message carried, and its address's domain (`None` once the reader
    /// was erased): where the send's report counts the message's first click.
    pub edition: i64,
    pub domain: Option<String>,
}

/// A click to count (see `store::clicks`): where its message belongs and its two marks,
/// keyed hashes that say "already counted" without naming the message or the reader.
#[derive(Debug, Clone, Copy)]
pub struct Click<'a> {
    pub digest: i64,
    /// The ledger row of the message (a subject test's sample row names its subject).
    pub delivery: i64,
    pub article: i64,
    pub edition: i64,
    pub provider: Provider,
    /// "This message clicked this article".
    pub mark: &'a str,
    /// "This message clicked": its first counted click, whatever the article.
    pub message_mark: &'a str,
}

/// What a click counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickCounted {
    /// The article's count went up: the message had not clicked it before.
    pub article: bool,
    /// The message's first counted click: its edition and provider's count of readers who
    /// clicked went up.
    pub first_of_message: bool,
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
