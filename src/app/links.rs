//! The writes a reader's links make: following a confirmation link (and queuing the
//! welcome), clicking an article in a digest. They come from the public pages rather than an editor, so no role is checked,
//! but they go through `App` like every other write (the store call and what follows it, a
//! counter here, stay in one place).

use super::App;
use crate::store::{ConfirmOutcome, now_ms};

impl App {
    /// Confirms the sign-up a confirmation link names: `issued` is when the link was made, so
    /// a link older than the reader's last sign-up is stale. With `newsletter.welcome`, the
    /// reader's welcome is queued in the same transaction and the queue woken. For the web
    /// handler that has checked the link's signature: the id alone proves nothing.
    pub(crate) async fn confirm(
        &self,
        subscriber: i64,
        issued: i64,
    ) -> anyhow::Result<ConfirmOutcome> {
        let welcome = self.settings.newsletter.welcome;
        let outcome = self
            .store
            .confirm(subscriber, issued, now_ms(), welcome)
            .await?;
        if welcome && outcome == ConfirmOutcome::Confirmed {
            self.mail_queue.wake.notify_one();
        }
        Ok(outcome)
    }

    /// Counts a click on `article` of `digest` from the message `delivery` carried: once per
    /// message and article, for the article and never for the reader. Returns whether it
    /// counted. For the redirect handler that has checked the link's signature.
    pub(crate) async fn count_click(
        &self,
        digest: i64,
        delivery: i64,
        article: i64,
        at: i64,
    ) -> anyhow::Result<bool> {
        let mark = self.tokens.click_mark(delivery, article);
        let counted = self.store.record_click(digest, article, &mark, at).await?;
        if counted {
            // A subject test counts readers who clicked, once per message.
            let message = self.tokens.click_mark(delivery, 0);
            self.store
                .record_subject_click(delivery, &message, at)
                .await?;
            self.metrics
                .clicks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(counted)
    }
}
