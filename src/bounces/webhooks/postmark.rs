//! Postmark: no signature, so the webhook URL carries Basic auth, compared in constant time.

use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::ExposeSecret;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{
    event::{Events, event, parse_json, s},
    refuse::Refuse,
};
use crate::{config::Webhooks, store::FeedbackKind};

pub fn events(w: &Webhooks, headers: &HeaderMap, body: &[u8]) -> Result<Events, Refuse> {
    let password = w.postmark_password.expose_secret();
    if w.postmark_user.is_empty() || password.is_empty() {
        return Err(Refuse::NotFound);
    }
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{password}", w.postmark_user))
    );
    let given = headers
        .get("authorization")
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    if !bool::from(given.ct_eq(expected.as_bytes())) {
        return Err(Refuse::Unauthorized("wrong credentials"));
    }
    let v = parse_json(body)?;
    let id = v
        .get("ID")
        .map(|i| i.to_string())
        .or_else(|| s(&v, &["MessageID"]).map(|m| m.to_owned()))
        .unwrap_or_default();
    let record_type = s(&v, &["RecordType"]).unwrap_or("");
    let kind = match (record_type, s(&v, &["Type"]).unwrap_or("")) {
        ("Bounce", "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated") => FeedbackKind::Hard,
        ("Bounce", "SpamComplaint") => FeedbackKind::Complaint,
        ("Bounce", "SoftBounce" | "Transient" | "DnsError" | "AutoResponder" | "Blocked") => {
            FeedbackKind::Soft
        }
        ("SpamComplaint", _) => FeedbackKind::Complaint,
        ("Delivery", _) => FeedbackKind::Delivered,
        ("SubscriptionChange", _) if v.get("SuppressSending") == Some(&Value::Bool(true)) => {
            FeedbackKind::Unsubscribe
        }
        _ => return Ok(Vec::new()),
    };
    let email = s(&v, &["Email"]).or_else(|| s(&v, &["Recipient"]));
    Ok(event(
        kind,
        "postmark",
        format!("{record_type}:{id}"),
        s(&v, &["Metadata", "nashra-message-id"]),
        email,
        s(&v, &["Type"]).unwrap_or(""),
        s(&v, &["Details"]).unwrap_or(""),
    )
    .into_iter()
    .collect())
}
