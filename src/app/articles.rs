//! Articles in: every feed polled now, one feed's bytes, an article pushed by the API — each
//! normalised and stored as one article however many ways it arrives.

use anyhow::Context;

use crate::{
    feeds::{self, IngestReport},
    store::NewArticle,
};

use super::App;

impl App {
    // ------------------------------------------------------------------ articles

    /// Polls every configured feed. Unchecked: an editor's door is [`App::ingest_now`].
    pub(crate) async fn ingest_all(&self) -> IngestReport {
        let mut r = IngestReport {
            feeds: self.settings.feeds.len(),
            ..Default::default()
        };
        for f in &self.settings.feeds {
            match self.ingest_feed(&f.url).await {
                Ok((new, updated)) => {
                    r.new += new;
                    r.updated += updated;
                }
                Err(e) => {
                    r.failed += 1;
                    tracing::warn!(feed = %f.url, error = %format!("{e:#}"), "feed poll failed; will retry next time");
                }
            }
        }
        r
    }

    /// Polls one feed: (new, updated). The feed poller's door, public for it and for tests
    /// that count one feed's arrivals: no role is checked because no person calls it (an
    /// editor polls every feed through [`App::ingest_now`]).
    pub async fn ingest_feed(&self, url: &str) -> anyhow::Result<(usize, usize)> {
        let bytes = feeds::fetch(&self.http, url).await?;
        self.ingest_bytes(&bytes, url).await
    }

    /// A feed's bytes already fetched (the demo's sample feed): unchecked, for the crate.
    pub(crate) async fn ingest_bytes(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> anyhow::Result<(usize, usize)> {
        // Parsing and sanitising take CPU in proportion to the feed: off the async threads.
        let (owned, src) = (bytes.to_vec(), source.to_owned());
        let items = tokio::task::spawn_blocking(move || feeds::parse_feed(&owned, &src))
            .await
            .context("the feed parser panicked")??;
        let (mut new, mut updated) = (0, 0);
        // Oldest first, so arrival order follows publication order within one poll.
        for a in items.iter().rev() {
            let (id, is_new) = self.store.upsert_article(a).await?;
            if is_new {
                new += 1;
            } else {
                updated += 1;
            }
            // An urgent category makes an alert; a fresh article's next poll tries again if
            // this fails.
            if let Err(e) = self.consider_alert(id, false, &a.categories).await {
                tracing::error!(article = id, error = %format!("{e:#}"), "cannot make the article's alert");
            }
        }
        tracing::info!(feed = source, new, updated, "feed ingested");
        Ok((new, updated))
    }

    /// An article as it came: sanitised and checked (off the async threads), or why not.
    pub async fn normalize_article(a: NewArticle) -> anyhow::Result<NewArticle> {
        tokio::task::spawn_blocking(move || feeds::normalize(a))
            .await
            .context("the sanitiser panicked")?
    }

    /// An article pushed through the API, already normalised like a feed's. Unchecked: the
    /// door is [`App::push_article`], which checks the role and writes the audit log.
    pub(crate) async fn add_article(&self, a: NewArticle) -> anyhow::Result<(i64, bool)> {
        self.store.upsert_article(&a).await
    }
}
