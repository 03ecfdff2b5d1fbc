//! Readers signing up and leaving: the doors a reader's own request goes through (no role to
//! check: the signed link or the double opt-in is the reader's proof).

use crate::{
    domain::{SubscriberEmail, SubscriberName},
    store::{Choice, ReaderClock, now_ms},
};

use super::App;

/// Why a sign-up was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// A non-ASCII local part, and the relay does not offer SMTPUTF8.
    #[error("this relay cannot deliver to a non-ASCII address")]
    NoSmtpUtf8,
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl App {
    // ------------------------------------------------------------------ subscribers

    /// Records a sign-up; its confirmation goes through the durable mail queue, so the answer
    /// (and its timing) is the same whether the address was new, pending or confirmed.
    /// Public: anyone may ask, and nothing is sent to the address but the confirmation.
    /// `clock` is the zone the reader's browser gave (`None`: the newsroom's) and whether
    /// they asked for alerts; its `alerts_per_day` is not read (the default until they
    /// choose).
    pub async fn subscribe(
        &self,
        email: &SubscriberEmail,
        name: &SubscriberName,
        source: &str,
        choice: &Choice,
        clock: &ReaderClock,
    ) -> Result<(), SignupError> {
        // Refused only when the relay is known not to take it; while unknown (the relay not
        // heard from yet) the sign-up is taken and its confirmation waits in the queue.
        if email.needs_smtputf8() && self.mailer.smtputf8() == Some(false) {
            return Err(SignupError::NoSmtpUtf8);
        }
        if self
            .store
            .subscribe(email, name, source, choice, clock, now_ms())
            .await?
        {
            self.metrics
                .subscriptions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.mail_queue.wake.notify_one();
        }
        Ok(())
    }

    /// Unsubscribes a reader (`how` goes to their consent history: the link, one-click, an
    /// editor): when this returns, nothing more goes to them, not even a message of a send
    /// under way. Returns whether anything changed. For the web handler that has checked
    /// the reader's signed link; an editor's door is [`App::unsubscribe_reader`].
    pub(crate) async fn unsubscribe(&self, subscriber: i64, how: &str) -> anyhow::Result<bool> {
        let changed = self.store.unsubscribe(subscriber, how, now_ms()).await?;
        self.dispatcher.revoke(subscriber).await?;
        if changed {
            tracing::info!(subscriber, "unsubscribed");
        }
        Ok(changed)
    }

    /// GDPR erasure, with the same promise as [`App::unsubscribe`]. Returns whether there
    /// was anyone to erase.
    pub(crate) async fn erase(&self, subscriber: i64) -> anyhow::Result<bool> {
        if !self.store.erase_subscriber(subscriber).await? {
            return Ok(false);
        }
        self.dispatcher.revoke(subscriber).await?;
        tracing::info!(subscriber, "erased");
        Ok(true)
    }
}
