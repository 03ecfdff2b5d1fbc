//! SendGrid's signed event webhook: ECDSA P-256 over the timestamp and the body, with the
//! "Verification Key" from the configuration; the timestamp must be within minutes of now.

use std::time::Duration;

use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::STANDARD};
use ring::signature::{self, UnparsedPublicKey};
use x509_cert::{der::Decode, spki::SubjectPublicKeyInfoRef};

use super::{
    event::{Events, event, parse_json, s},
    refuse::Refuse,
};
use crate::{config::Webhooks, store::FeedbackKind};

/// How far SendGrid's signed timestamp may be from our clock, either way: a signed request
/// captured once cannot be sent again later. SendGrid posts within seconds of signing.
const SENDGRID_WINDOW: Duration = Duration::from_secs(5 * 60);

pub fn events(w: &Webhooks, headers: &HeaderMap, body: &[u8]) -> Result<Events, Refuse> {
    let key = w.sendgrid_public_key.trim();
    if key.is_empty() {
        return Err(Refuse::NotFound);
    }
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ts = get("x-twilio-email-event-webhook-timestamp");
    let at: i64 = ts
        .parse()
        .map_err(|_| Refuse::Unauthorized("bad timestamp"))?;
    if (chrono::Utc::now().timestamp() - at).unsigned_abs() > SENDGRID_WINDOW.as_secs() {
        return Err(Refuse::Unauthorized("timestamp outside the window"));
    }
    let sig = STANDARD
        .decode(get("x-twilio-email-event-webhook-signature"))
        .map_err(|_| Refuse::Unauthorized("no signature"))?;
    let spki = STANDARD.decode(key).map_err(|_| {
        Refuse::Failed(anyhow::anyhow!(
            "webhooks.sendgrid_public_key is not base64"
        ))
    })?;
    // The key bits of the SubjectPublicKeyInfo: the uncompressed point ring takes.
    let info = SubjectPublicKeyInfoRef::from_der(&spki).ok();
    let point = info
        .as_ref()
        .and_then(|i| i.subject_public_key.as_bytes())
        .ok_or_else(|| {
            Refuse::Failed(anyhow::anyhow!(
                "webhooks.sendgrid_public_key is not a P-256 public key"
            ))
        })?;
    let mut signed = ts.as_bytes().to_vec();
    signed.extend_from_slice(body);
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &sig)
        .map_err(|_| Refuse::Unauthorized("bad signature"))?;
    let v = parse_json(body)?;
    let Some(list) = v.as_array() else {
        return Err(Refuse::Bad("expected an array of events".into()));
    };
    let mut out = Vec::new();
    for e in list.iter().take(10_000) {
        let status = s(e, &["status"]).unwrap_or("");
        let kind = match (
            s(e, &["event"]).unwrap_or(""),
            s(e, &["type"]).unwrap_or(""),
        ) {
            ("bounce", "blocked") => FeedbackKind::Soft,
            ("bounce", _) if status.starts_with('4') => FeedbackKind::Soft,
            ("bounce", _) => FeedbackKind::Hard,
            ("deferred", _) => FeedbackKind::Soft,
            ("spamreport", _) => FeedbackKind::Complaint,
            ("delivered", _) => FeedbackKind::Delivered,
            ("unsubscribe" | "group_unsubscribe", _) => FeedbackKind::Unsubscribe,
            _ => continue,
        };
        let id = s(e, &["sg_event_id"]).unwrap_or("").to_owned();
        if id.is_empty() {
            continue;
        }
        out.extend(event(
            kind,
            "sendgrid",
            id,
            s(e, &["smtp-id"]),
            s(e, &["email"]),
            status,
            s(e, &["reason"]).unwrap_or(""),
        ));
    }
    Ok(out)
}
