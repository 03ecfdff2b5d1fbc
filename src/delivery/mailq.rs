//! One-off mail (the double opt-in confirmation) through a durable queue.
//!
//! A sign-up stores its confirmation in `mail_queue` in the same transaction as the
//! subscriber, so a reader who was answered "check your inbox" gets the mail even if the relay
//! is down for a while or the process restarts. Rows are claimed with a lease like the
//! delivery ledger; a relay that cannot be reached costs no attempt, a 4xx is retried with
//! growing delays, a 5xx or a day of trying ends it. The message is rendered when it is sent,
//! so a reader who confirmed, left or signed up again meanwhile gets nothing stale.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use secrecy::ExposeSecret;
use tokio::sync::{Notify, watch};

use super::{
    Mailer, backoff,
    message::{MessageSpec, MessageTemplate, Personal},
    redact_addresses, reply_to,
    transport::SendError,
};
use crate::{
    domain::{Tokens, VerpTarget},
    render::Renderer,
    store::{MailOutcome, QueuedMail, Store, now_ms},
};

/// Emails claimed at once.
const BATCH: i64 = 8;
/// A confirmation not delivered within a day is given up: the reader has moved on.
const GIVE_UP_AFTER_MS: i64 = 24 * 3600 * 1000;
/// Transient failures (4xx) tolerated before giving up.
const MAX_ATTEMPTS: i64 = 10;
/// Longest wait between tries.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Longest sleep while nothing is due, in case another process queued mail.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Ended emails are kept this long (the per-inbox limits look back a day), then deleted.
const KEEP_MS: i64 = 30 * 24 * 3600 * 1000;

pub struct MailQueue {
    store: Store,
    mailer: Mailer,
    renderer: Renderer,
    tokens: Tokens,
    /// Woken when this process queues a confirmation, so it goes out at once.
    pub wake: Arc<Notify>,
}

impl MailQueue {
    pub fn new(store: Store, mailer: Mailer, renderer: Renderer) -> Arc<MailQueue> {
        let tokens = Tokens::new(mailer.settings.security.secret.expose_secret());
        Arc::new(MailQueue {
            store,
            mailer,
            renderer,
            tokens,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Sends due mail until `shutdown`; a message still on the wire then gets a short grace,
    /// after which its row comes back when its lease runs out.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let lease = self.mailer.settings.delivery.lease;
        let mut purged: Option<std::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if purged.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
                purged = Some(std::time::Instant::now());
                if let Err(e) = self.store.purge_mail(now_ms() - KEEP_MS).await {
                    tracing::warn!(error = %format!("{e:#}"), "cannot purge old queued mail");
                }
            }
            let claimed = match self.store.claim_mail(BATCH, lease, now_ms()).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "mail queue claim failed");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                let wait = match self.store.next_mail_due().await {
                    Ok(Some(due)) => Duration::from_millis(
                        (due - now_ms()).clamp(5, IDLE_POLL.as_millis() as i64) as u64,
                    ),
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let batch = futures::future::join_all(claimed.into_iter().map(|m| self.process(m)));
            let mut sd = shutdown.clone();
            tokio::select! {
                _ = batch => {}
                _ = async {
                    let _ = sd.wait_for(|v| *v).await;
                    tokio::time::sleep(super::SHUTDOWN_GRACE).await;
                } => return Ok(()),
            }
        }
    }

    async fn process(&self, m: QueuedMail) {
        let outcome = self.send(&m).await;
        let (label, error) = match &outcome {
            Ok(()) => ("sent", None),
            Err(Some(e)) => (e.reason(), Some(redact_addresses(e.message()))),
            Err(None) => ("skipped", None),
        };
        let now = now_ms();
        let record = match &outcome {
            Ok(()) => MailOutcome::Sent,
            Err(None) => MailOutcome::Skipped,
            Err(Some(SendError::Permanent(msg))) => MailOutcome::Failed { error: msg },
            Err(Some(e)) if now - m.created_at > GIVE_UP_AFTER_MS => {
                MailOutcome::Failed { error: e.message() }
            }
            Err(Some(SendError::Transient(msg))) if m.attempts >= MAX_ATTEMPTS => {
                MailOutcome::Failed { error: msg }
            }
            Err(Some(e)) => {
                let delay = backoff(self.mailer.settings.delivery.retry_after, m.attempts as u32)
                    .min(MAX_DELAY);
                MailOutcome::Retry {
                    at: now + delay.as_millis() as i64,
                    error: e.message(),
                    counts: !matches!(e, SendError::Connection(_)),
                }
            }
        };
        match (&record, error) {
            (MailOutcome::Sent | MailOutcome::Skipped, _) => {
                tracing::debug!(mail = m.id, outcome = label, "confirmation email")
            }
            (_, Some(error)) => {
                tracing::warn!(mail = m.id, subscriber = m.subscriber_id, reason = label, %error, "confirmation email not delivered yet")
            }
            _ => {}
        }
        if let Err(e) = self.store.record_mail(&m, record).await {
            tracing::error!(error = %format!("{e:#}"), "cannot record a confirmation email; it comes back after its lease");
        }
    }

    /// `Err(None)`: nothing to send any more.
    async fn send(&self, m: &QueuedMail) -> Result<(), Option<SendError>> {
        let Some(to) = m.email.as_deref() else {
            return Err(None);
        };
        let settings = &self.mailer.settings;
        let url = settings.public_url(&format!(
            "/confirm/{}",
            self.tokens.confirm(m.subscriber_id, m.issued)
        ));
        let (subject, html, text) = self
            .renderer
            .confirmation(settings, &url)
            .map_err(|e| Some(SendError::Transient(format!("render failed: {e:#}"))))?;
        let t = MessageTemplate::new(MessageSpec {
            from: &self.mailer.from,
            reply_to: reply_to(settings),
            subject: &subject,
            html: &html,
            text: &text,
            list: None,
            feedback_id: None,
            slots: None,
        });
        let id = t.new_message_id();
        let bytes = t.build(
            &Personal {
                to,
                unsubscribe_url: None,
                unsubscribe_mailto: None,
                name: "",
                preferences_url: None,
                click: "",
                date: Utc::now(),
            },
            &id,
        );
        let bytes = self
            .mailer
            .sign(bytes)
            .await
            .map_err(|e| Some(SendError::Transient(format!("signing failed: {e:#}"))))?;
        let envelope_from = self
            .mailer
            .envelope_from(&self.tokens, VerpTarget::Subscriber(m.subscriber_id));
        self.mailer
            .transport
            .send(&envelope_from, to, bytes, &format!("confirm-{}", m.id))
            .await
            .map_err(Some)
    }
}
