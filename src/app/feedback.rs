//! One door for bounces, complaints and mailed unsubscribes, whichever way they arrive.

use std::fmt;

use super::App;
use crate::{
    bounces::parse,
    domain::{TokenKind, VerpTarget},
    store::{FeedbackEvent, FeedbackKind, FeedbackResult, FeedbackTarget, now_ms},
};

/// What one mail did, for the CLI and the logs (no address in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Ignored(&'static str),
    /// A report that names nothing we sent (or a forged tag).
    Unknown(FeedbackKind),
    Duplicate(FeedbackKind),
    Recorded(FeedbackKind, FeedbackResult),
}

impl fmt::Display for MailOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailOutcome::Ignored(why) => write!(f, "ignored ({why})"),
            MailOutcome::Unknown(k) => write!(f, "{k}: names no message of ours; nothing changed"),
            MailOutcome::Duplicate(k) => write!(f, "{k}: already recorded; nothing changed"),
            MailOutcome::Recorded(k, FeedbackResult::Recorded { subscriber, now }) => {
                write!(f, "{k} recorded")?;
                if let Some(s) = subscriber {
                    write!(f, " for reader {s}")?;
                }
                if let Some(st) = now {
                    write!(f, ", now {st}")?;
                }
                Ok(())
            }
            MailOutcome::Recorded(k, other) => write!(f, "{k}: {other:?}"),
        }
    }
}

impl App {
    /// Records one event and applies it; a reader who leaves gets nothing more from a send
    /// under way (the same wait as a one-click unsubscribe).
    pub async fn record_feedback(&self, ev: FeedbackEvent) -> anyhow::Result<FeedbackResult> {
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
        }
        Ok(r)
    }

    /// A message from the bounce mailbox (or a file): a DSN, an ARF complaint, an
    /// unsubscribe mail, or something to leave alone.
    pub async fn feedback_from_mail(
        &self,
        raw: &[u8],
        source: &str,
    ) -> anyhow::Result<MailOutcome> {
        let (ret, uns) = (
            self.mailer.return_local().to_owned(),
            self.mailer.unsubscribe_local().to_owned(),
        );
        let raw = raw.to_vec();
        let report = tokio::task::spawn_blocking(move || parse::parse(&raw, &ret, &uns)).await?;
        let Some(kind) = report.kind else {
            return Ok(MailOutcome::Ignored(report.ignored));
        };
        let targets: Vec<FeedbackTarget> = if kind == FeedbackKind::Unsubscribe {
            let token = report.unsubscribe_token.as_deref().unwrap_or("");
            self.tokens
                .verify(token, TokenKind::Unsubscribe)
                .map(|t| FeedbackTarget::Subscriber(t.subscriber_id))
                .into_iter()
                .collect()
        } else {
            // Our signed return-path tag first, then our Message-ID as quoted.
            report
                .verp_tags
                .iter()
                .filter_map(|t| self.tokens.verify_verp_tag(t))
                .map(|t| match t {
                    VerpTarget::Delivery(id) => FeedbackTarget::Delivery(id),
                    VerpTarget::Subscriber(id) => FeedbackTarget::Subscriber(id),
                })
                .chain(
                    report
                        .original_message_id
                        .clone()
                        .map(FeedbackTarget::MessageId),
                )
                .collect()
        };
        if targets.is_empty() {
            return Ok(MailOutcome::Unknown(kind));
        }
        let r = self
            .record_feedback(FeedbackEvent {
                kind,
                source: source.to_owned(),
                dedup_key: report.report_id,
                targets,
                status: report.status,
                detail: crate::delivery::redact_addresses(&report.detail),
            })
            .await?;
        Ok(match r {
            FeedbackResult::Duplicate => MailOutcome::Duplicate(kind),
            FeedbackResult::Unknown => MailOutcome::Unknown(kind),
            r => MailOutcome::Recorded(kind, r),
        })
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
