//! The writes a reader's links make: following a confirmation link (and queuing the
//! welcome), clicking an article in a digest. They come from the public pages rather than an editor, so no role is checked,
//! but they go through `App` like every other write (the store call and what follows it, a
//! counter here, stay in one place).

use super::App;
use crate::{
    domain::Provider,
    store::{Click, ClickCounted, ClickTarget, ConfirmOutcome, now_ms},
};

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

    /// Counts a click on `article` from the message `delivery` carried (`target`, as the
    /// store described it): once per message and article, for the article and never for
    /// the reader; the message's first counted click also counts, for its edition and
    /// mailbox provider, one more reader who clicked. For the redirect handler that has
    /// checked the link's signature.
    pub(crate) async fn count_click(
        &self,
        target: &ClickTarget,
        delivery: i64,
        article: i64,
        at: i64,
    ) -> anyhow::Result<ClickCounted> {
        let mark = self.tokens.click_mark(delivery, article);
        // Article ids start at 1: (message, 0) marks the message itself.
        let message_mark = self.tokens.click_mark(delivery, 0);
        let provider = target
            .domain
            .as_deref()
            .map_or(Provider::Other, |d| self.settings.providers.of_domain(d));
        let click = Click {
            digest: target.digest_id,
            delivery,
            article,
            edition: target.edition,
            provider,
            mark: &mark,
            message_mark: &message_mark,
        };
        let counted = self.store.record_click(&click, at).await?;
        if counted.article {
            self.metrics
                .clicks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(counted)
    }
}
