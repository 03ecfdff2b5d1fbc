//! Amazon SES through SNS: the SNS envelope's signature is checked (over the canonical string
//! of its fields, with the key of a certificate `sns` fetched from an SNS host), a subscription
//! is confirmed, and a notification's SES bounces, complaints and deliveries become events.
//!
//! Everything that can be checked without a fetch is checked first: a message that would be
//! refused anyway must not make us fetch anything.

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::signature;
use serde_json::Value;

use super::{
    event::{Events, event, parse_json, s},
    refuse::Refuse,
    sns::{self, Certificates},
};
use crate::{config::Webhooks, store::FeedbackKind};

/// The events of one SNS message; `None` for a subscription confirmation, now confirmed.
pub async fn events(
    w: &Webhooks,
    certs: &Certificates,
    body: &[u8],
) -> Result<Option<Events>, Refuse> {
    if w.ses_topic_arns.is_empty() {
        return Err(Refuse::NotFound);
    }
    let v = parse_json(body)?;
    let field = |k: &str| s(&v, &[k]);
    let topic = field("TopicArn").unwrap_or("");
    if !w.ses_topic_arns.iter().any(|t| t == topic) {
        return Err(Refuse::Unauthorized("unknown topic"));
    }
    let cert_url = field("SigningCertURL").unwrap_or("");
    if !sns::cert_url_allowed(cert_url, &w.sns_cert_hosts) {
        return Err(Refuse::Unauthorized("signing certificate not from SNS"));
    }
    let ty = field("Type").unwrap_or("");
    let names: &[&str] = match ty {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        _ => return Err(Refuse::Bad("unknown SNS message type".into())),
    };
    let mut to_sign = String::new();
    for n in names {
        match field(n) {
            Some(val) => {
                to_sign.push_str(n);
                to_sign.push('\n');
                to_sign.push_str(val);
                to_sign.push('\n');
            }
            None if *n == "Subject" => {}
            None => return Err(Refuse::Unauthorized("unsigned message")),
        }
    }
    let alg: &dyn signature::VerificationAlgorithm = match field("SignatureVersion") {
        Some("1") => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Some("2") => &signature::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(Refuse::Unauthorized("unknown signature version")),
    };
    // An RSA signature is as long as its key: 2048 to 8192 bits.
    let sig = STANDARD
        .decode(field("Signature").unwrap_or(""))
        .ok()
        .filter(|s| (256..=1024).contains(&s.len()))
        .ok_or(Refuse::Unauthorized("malformed signature"))?;
    let subscribe_url = field("SubscribeURL").unwrap_or("");
    if ty == "SubscriptionConfirmation"
        && !sns::cert_url_allowed_host(subscribe_url, &w.sns_cert_hosts)
    {
        return Err(Refuse::Unauthorized("subscribe URL not at SNS"));
    }
    let message: Option<Value> = match ty {
        "Notification" => Some(
            serde_json::from_str(field("Message").unwrap_or(""))
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| Refuse::Bad("Message is not SES JSON".into()))?,
        ),
        _ => None,
    };
    let key = certs.key(cert_url).await?;
    signature::UnparsedPublicKey::new(alg, key.as_slice())
        .verify(to_sign.as_bytes(), &sig)
        .map_err(|_| Refuse::Unauthorized("bad signature"))?;

    if ty == "SubscriptionConfirmation" {
        certs.confirm(subscribe_url).await?;
        tracing::info!(topic, "SNS subscription confirmed");
        return Ok(None);
    }
    let Some(m) = message else {
        return Ok(Some(Vec::new()));
    };
    Ok(Some(ses_events(field("MessageId").unwrap_or(""), &m)))
}

/// The events of one SES notification (`m`, the SNS message's `Message`), one per recipient.
fn ses_events(sns_id: &str, m: &Value) -> Events {
    let kind_name = s(m, &["notificationType"]).or_else(|| s(m, &["eventType"]));
    let message_id = s(m, &["mail", "commonHeaders", "messageId"]);
    let mut out = Vec::new();
    let mut add = |kind, list: Option<&Value>, key: &str, status: &str, detail: &str| {
        for r in list
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
            .take(1000)
        {
            let email = r.get(key).and_then(|e| e.as_str()).or_else(|| r.as_str());
            let st = r.get("status").and_then(|x| x.as_str()).unwrap_or(status);
            let de = r
                .get("diagnosticCode")
                .and_then(|x| x.as_str())
                .unwrap_or(detail);
            out.extend(event(
                kind,
                "ses",
                format!("{sns_id}:{}", email.unwrap_or("")),
                message_id,
                email,
                st,
                de,
            ));
        }
    };
    match kind_name {
        Some("Bounce") => {
            let b = m.get("bounce").cloned().unwrap_or(Value::Null);
            let kind = if s(&b, &["bounceType"]) == Some("Permanent") {
                FeedbackKind::Hard
            } else {
                FeedbackKind::Soft
            };
            add(kind, b.get("bouncedRecipients"), "emailAddress", "", "");
        }
        Some("Complaint") => {
            let c = m.get("complaint").cloned().unwrap_or(Value::Null);
            let t = s(&c, &["complaintFeedbackType"])
                .unwrap_or("abuse")
                .to_owned();
            add(
                FeedbackKind::Complaint,
                c.get("complainedRecipients"),
                "emailAddress",
                &t,
                "",
            );
        }
        Some("Delivery") => {
            let d = m.get("delivery").cloned().unwrap_or(Value::Null);
            add(FeedbackKind::Delivered, d.get("recipients"), "", "", "");
        }
        _ => {}
    }
    out
}
