//! Mailgun: HMAC-SHA256 over timestamp and token with the webhook signing key; each token is
//! taken once, so a captured request cannot be sent again.

use secrecy::ExposeSecret;
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{
    event::{Events, event, parse_json, s},
    refuse::Refuse,
};
use crate::{config::Webhooks, store::FeedbackKind};

/// Mailgun tokens remembered against replay, and for how long a signature is good.
const MAILGUN_TOKENS: usize = 100_000;
const MAILGUN_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The tokens seen within the window, bounded by `MAILGUN_TOKENS`.
#[derive(Default)]
pub struct Replays(Mutex<HashMap<String, Instant>>);

pub fn events(w: &Webhooks, replays: &Replays, body: &[u8]) -> Result<Events, Refuse> {
    let key = w.mailgun_signing_key.expose_secret();
    if key.is_empty() {
        return Err(Refuse::NotFound);
    }
    let v = parse_json(body)?;
    let (Some(ts), Some(token), Some(sig)) = (
        s(&v, &["signature", "timestamp"]),
        s(&v, &["signature", "token"]),
        s(&v, &["signature", "signature"]),
    ) else {
        return Err(Refuse::Unauthorized("no signature"));
    };
    let given = decode_hex(sig).ok_or(Refuse::Unauthorized("malformed signature"))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(ts.as_bytes());
    mac.update(token.as_bytes());
    if mac.verify_slice(&given).is_err() {
        return Err(Refuse::Unauthorized("bad signature"));
    }
    let at: i64 = ts
        .parse()
        .map_err(|_| Refuse::Unauthorized("bad timestamp"))?;
    let age = chrono::Utc::now().timestamp() - at;
    if age.unsigned_abs() > MAILGUN_WINDOW.as_secs() {
        return Err(Refuse::Unauthorized("signature too old"));
    }
    {
        let mut seen = replays.0.lock().expect("not poisoned");
        if seen.contains_key(token) {
            return Err(Refuse::Unauthorized("replayed token"));
        }
        if seen.len() >= MAILGUN_TOKENS {
            seen.retain(|_, t| t.elapsed() < MAILGUN_WINDOW);
            if seen.len() >= MAILGUN_TOKENS {
                // Full of fresh tokens: a flood. Refuse rather than forget.
                return Err(Refuse::Failed(anyhow::anyhow!("too many webhook tokens")));
            }
        }
        seen.insert(token.to_owned(), Instant::now());
    }
    let d = v.get("event-data").cloned().unwrap_or(Value::Null);
    let kind = match (
        s(&d, &["event"]).unwrap_or(""),
        s(&d, &["severity"]).unwrap_or(""),
    ) {
        ("failed", "permanent") => FeedbackKind::Hard,
        ("failed", _) => FeedbackKind::Soft,
        ("complained", _) => FeedbackKind::Complaint,
        ("delivered", _) => FeedbackKind::Delivered,
        ("unsubscribed", _) => FeedbackKind::Unsubscribe,
        _ => return Ok(Vec::new()),
    };
    let code = d
        .pointer("/delivery-status/enhanced-code")
        .and_then(|c| c.as_str().map(str::to_owned))
        .or_else(|| d.pointer("/delivery-status/code").map(|c| c.to_string()))
        .unwrap_or_default();
    Ok(event(
        kind,
        "mailgun",
        s(&d, &["id"]).unwrap_or(token).to_owned(),
        s(&d, &["message", "headers", "message-id"]),
        s(&d, &["recipient"]),
        &code,
        s(&d, &["delivery-status", "message"]).unwrap_or(""),
    )
    .into_iter()
    .collect())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    // A SHA-256 MAC is 64 digits: anything past twice that is not worth decoding.
    if s.len() > 128 {
        return None;
    }
    hex::decode(s).ok()
}
