//! What every provider's events become: one `FeedbackEvent` per recipient, named by our
//! Message-ID or the address, with the provider's text redacted before it is stored.

use serde_json::Value;

use super::refuse::Refuse;
use crate::{
    domain::SubscriberEmail,
    store::{FeedbackEvent, FeedbackKind, FeedbackTarget},
};

pub type Events = Vec<FeedbackEvent>;

fn normalized(email: &str) -> Option<String> {
    SubscriberEmail::parse(email.trim())
        .ok()
        .map(|e| e.normalized())
}

/// One event, about our Message-ID when the provider kept it, else about the address (the
/// provider proved who it is, so its word on the address is taken).
pub fn event(
    kind: FeedbackKind,
    source: &str,
    id: String,
    message_id: Option<&str>,
    email: Option<&str>,
    status: &str,
    detail: &str,
) -> Option<FeedbackEvent> {
    let targets: Vec<FeedbackTarget> = message_id
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| FeedbackTarget::MessageId(m.to_owned()))
        .into_iter()
        .chain(email.and_then(normalized).map(FeedbackTarget::Email))
        .collect();
    (!targets.is_empty()).then(|| FeedbackEvent {
        kind,
        source: source.to_owned(),
        dedup_key: format!("{source}:{id}"),
        targets,
        status: status.chars().take(32).collect(),
        detail: crate::delivery::redact_addresses(detail),
    })
}

/// The string at `path` in a provider's JSON, if there is one.
pub fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

pub fn parse_json(body: &[u8]) -> Result<Value, Refuse> {
    serde_json::from_slice(body).map_err(|e| Refuse::Bad(format!("not JSON: {e}")))
}
