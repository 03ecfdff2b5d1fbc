//! A mail that came back, from the bounce mailbox or a file: read it, find which message of
//! ours it is about, and hand the event to the one door (`App::record_feedback`).
//!
//! Here rather than in `app` because reading mail is this module's concern: `app` records
//! events whoever found them, and knows nothing of DSNs, ARF reports or return-path tags.

use std::fmt;

use super::{
    dmarc::{DmarcOutcome, report_from_mail},
    parse,
};
use crate::{
    app::App,
    domain::{TokenKind, VerpTarget},
    store::{FeedbackEvent, FeedbackKind, FeedbackResult, FeedbackTarget},
};

/// What one mail did, for the CLI and the logs (no address in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Ignored(&'static str),
    /// A report that names nothing we sent (or a forged tag).
    Unknown(FeedbackKind),
    Duplicate(FeedbackKind),
    Recorded(FeedbackKind, FeedbackResult),
    /// A DMARC aggregate report (see `dmarc`).
    Dmarc(DmarcOutcome),
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
            MailOutcome::Dmarc(d) => write!(f, "{d}"),
        }
    }
}

/// A message from the bounce mailbox (or a file): a DMARC aggregate report, a DSN, an ARF
/// complaint, an unsubscribe mail, or something to leave alone.
pub async fn feedback_from_mail(
    app: &App,
    raw: &[u8],
    source: &str,
) -> anyhow::Result<MailOutcome> {
    if let Some(d) = report_from_mail(app, raw).await? {
        return Ok(MailOutcome::Dmarc(d));
    }
    let (ret, uns) = (
        app.mailer.return_local().to_owned(),
        app.mailer.unsubscribe_local().to_owned(),
    );
    let raw = raw.to_vec();
    let report = tokio::task::spawn_blocking(move || parse::parse(&raw, &ret, &uns)).await?;
    let Some(kind) = report.kind else {
        return Ok(MailOutcome::Ignored(report.ignored));
    };
    let targets: Vec<FeedbackTarget> = if kind == FeedbackKind::Unsubscribe {
        let token = report.unsubscribe_token.as_deref().unwrap_or("");
        app.tokens
            .verify(token, TokenKind::Unsubscribe)
            .map(|t| FeedbackTarget::Subscriber(t.subscriber_id))
            .into_iter()
            .collect()
    } else {
        // Our signed return-path tag first, then our Message-ID as quoted.
        report
            .verp_tags
            .iter()
            .filter_map(|t| app.tokens.verify_verp_tag(t))
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
    let r = app
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
