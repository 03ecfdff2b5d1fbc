//! Click tracking's rows: where a click link leads, and what readers clicked.

use serde::Serialize;

use super::digests::DigestKind;

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
