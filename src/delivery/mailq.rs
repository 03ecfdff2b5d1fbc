//! One-off mail (the double opt-in confirmation, the welcome) through a durable queue.
//!
//! A sign-up stores its confirmation in `mail_queue` in the same transaction as the
//! subscriber, so a reader who was answered "check your inbox" gets the mail even if the relay
//! is down for a while or the process restarts; a confirmation stores the reader's welcome
//! the same way (`newsletter.welcome`, see `welcome`). Rows are claimed with a lease like the
//! delivery ledger; a relay that cannot be reached costs no attempt, a 4xx is retried with
//! growing delays, a 5xx or too long a wait (`give_up_after`) ends it. The message is
//! rendered when it is sent, so a reader who confirmed, left or signed up again meanwhile gets
//! nothing stale.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

use super::{
    mailer::Mailer,
    message::{MessageSpec, MessageTemplate, Personal},
    send_error::{SendError, backoff, redact_addresses},
    wait::{self, SHUTDOWN_GRACE},
};
use crate::{
    domain::VerpTarget,
    render::Renderer,
    shutdown::Shutdown,
    store::{MailKind, MailOutcome, QueuedMail, Store, now_ms},
};

mod welcome;

/// Emails claimed at once.
const BATCH: i64 = 8;
/// A confirmation not delivered within a day is given up: the reader has moved on.
const CONFIRM_GIVE_UP_MS: i64 = 24 * 3600 * 1000;
/// A welcome waits out a relay's outage of up to a week; later, digests have reached the
/// reader and a welcome would be odd.
const WELCOME_GIVE_UP_MS: i64 = 7 * 24 * 3600 * 1000;
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
    /// Woken when this process queues a confirmation or a welcome, so it goes out at once.
    pub wake: Arc<Notify>,
}

impl MailQueue {
    pub fn new(store: Store, mailer: Mailer, renderer: Renderer) -> Arc<MailQueue> {
        Arc::new(MailQueue {
            store,
            mailer,
            renderer,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Sends due mail until `shutdown`; a message still on the wire then gets a short grace,
    /// after which its row comes back when its lease runs out.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let lease = self.mailer.settings.delivery.lease;
        let mut purged: Option<std::time::Instant> = None;
        loop {
            if shutdown.is_shutdown() {
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
                let due = self.store.next_mail_due().await;
                wait::idle(due, IDLE_POLL, &self.wake, &mut shutdown).await;
                continue;
            }
            let batch = futures::future::join_all(claimed.into_iter().map(|m| self.process(m)));
            let mut sd = shutdown.clone();
            tokio::select! {
                _ = batch => {}
                _ = async {
                    sd.recv().await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } => return Ok(()),
            }
        }
    }

    #[tracing::instrument(skip_all, fields(mail = m.id))]
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
            Err(Some(e)) if now - m.created_at > give_up_after(m.kind) => {
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
        let kind = m.kind.as_str();
        match (&record, error) {
            (MailOutcome::Sent | MailOutcome::Skipped, _) => {
                tracing::debug!(outcome = label, kind, "one-off email")
            }
            (_, Some(error)) => {
                tracing::warn!(subscriber = m.subscriber_id, kind, reason = label, %error, "one-off email not delivered yet")
            }
            _ => {}
        }
        if let Err(e) = self.store.record_mail(&m, record).await {
            tracing::error!(error = %format!("{e:#}"), kind, "cannot record a one-off email; it comes back after its lease");
        }
    }

    /// `Err(None)`: nothing to send any more.
    async fn send(&self, m: &QueuedMail) -> Result<(), Option<SendError>> {
        let Some(to) = m.email.as_deref() else {
            return Err(None);
        };
        match m.kind {
            MailKind::Confirm => self.confirmation(m, to).await,
            MailKind::Welcome => self.welcome(m, to).await,
        }
    }

    /// Sends `m`, a confirmation, to `to`.
    async fn confirmation(&self, m: &QueuedMail, to: &str) -> Result<(), Option<SendError>> {
        let settings = &self.mailer.settings;
        let url = settings.public_url(&format!(
            "/confirm/{}",
            self.mailer.tokens.confirm(m.subscriber_id, m.issued)
        ));
        let (subject, html, text) = self
            .renderer
            .confirmation(settings, &url)
            .map_err(|e| Some(SendError::Transient(format!("render failed: {e:#}"))))?;
        let t = MessageTemplate::new(MessageSpec {
            from: &self.mailer.from,
            reply_to: self.mailer.reply_to(),
            subject: &subject,
            html: &html,
            text: &text,
            list: None,
            feedback_id: None,
            slots: None,
        });
        self.mailer
            .send(
                &t,
                &Personal::transactional(to),
                VerpTarget::Subscriber(m.subscriber_id),
                &format!("confirm-{}", m.id),
            )
            .await
            .map(drop)
            .map_err(Some)
    }
}

/// How long a one-off email may wait for the relay before it is given up.
fn give_up_after(kind: MailKind) -> i64 {
    match kind {
        MailKind::Confirm => CONFIRM_GIVE_UP_MS,
        MailKind::Welcome => WELCOME_GIVE_UP_MS,
    }
}
