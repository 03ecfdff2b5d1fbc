//! Articles as they arrive and as stored, the ones an editor took out of a coming digest, and
//! a schedule's stored state (its slot and the watermark of articles it consumed).

use serde::Serialize;

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
    /// Pushed with `"urgent": true`: a candidate for an alert (an article in
    /// `alerts.categories` is one too).
    pub urgent: bool,
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

/// An article an editor took out of a schedule's coming digest.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ExcludedArticle {
    pub id: i64,
    pub title: String,
    pub url: String,
    pub excluded_by: String,
    pub at: i64,
}

/// A schedule's stored state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleState {
    pub name: String,
    pub last_slot: i64,
    pub watermark: Option<i64>,
    pub paused: i64,
}
