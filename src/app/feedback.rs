//! One door for bounces, complaints and mailed unsubscribes, whichever way they arrive:
//! `bounces` reads the mail and the provider webhooks, and hands each event here.

use super::App;
use crate::store::{FeedbackEvent, FeedbackKind, FeedbackResult, FeedbackTarget, now_ms};

impl App {
    /// Records one event and applies it; a reader who leaves gets nothing more from a send
    /// under way (the same wait as a one-click unsubscribe). For `bounces` only: the mail or
    /// the provider's signature is the proof, checked there.
    pub(crate) async fn record_feedback(
        &self,
        ev: FeedbackEvent,
    ) -> anyhow::Result<FeedbackResult> {
        let ev = without_controls(ev);
        if ev.targets.is_empty() {
            return Ok(FeedbackResult::Unknown);
        }
        let b = &self.settings;
        let r = self
            .store
            .record_feedback(
                &ev,
                b.delivery.bounce_after,
                b.bounces.soft_bounce_after,
                now_ms(),
            )
            .await?;
        if let FeedbackResult::Recorded { subscriber, now } = &r {
            self.metrics.count_feedback(ev.kind);
            if let (Some(s), Some(_)) = (subscriber, now) {
                self.dispatcher.revoke(*s).await?;
            }
            tracing::info!(kind = %ev.kind, source = %ev.source, status = %ev.status, reader = ?subscriber, now = ?now, "feedback recorded");
            // A bounce or a complaint may take its send over the guard's limits: judged now,
            // not at the writer's next look.
            if matches!(ev.kind, FeedbackKind::Hard | FeedbackKind::Complaint) {
                let g = &self.settings.delivery.guard;
                crate::delivery::guard::check(&self.store, &self.metrics, g, None).await;
            }
        }
        Ok(r)
    }
}

/// An event as it may reach the store: text from a report or a provider loses its NULs
/// (PostgreSQL refuses them, and one report must not stop the others), and a Message-ID or
/// address with a control character is dropped, since none of ours has one.
fn without_controls(mut ev: FeedbackEvent) -> FeedbackEvent {
    let clean = |s: &mut String| {
        if s.contains('\0') {
            *s = s.replace('\0', "");
        }
    };
    clean(&mut ev.source);
    clean(&mut ev.dedup_key);
    clean(&mut ev.status);
    clean(&mut ev.detail);
    ev.targets.retain(|t| match t {
        FeedbackTarget::MessageId(s) | FeedbackTarget::Email(s) => !s.chars().any(char::is_control),
        FeedbackTarget::Delivery(_) | FeedbackTarget::Subscriber(_) => true,
    });
    ev
}
