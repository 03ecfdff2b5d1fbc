//! Provider webhooks: `POST /webhooks/{ses,postmark,mailgun,sendgrid}`.
//!
//! Each checks that the provider sent it before anything is read: Amazon SNS signs with a
//! certificate fetched only from an SNS host on port 443, never through a redirect, and only
//! for a message whose topic and shape are acceptable (so a stranger cannot make us fetch);
//! Mailgun signs with HMAC-SHA256 and a token that
//! must not come twice; SendGrid signs with ECDSA P-256 a timestamp that must be within minutes
//! of now; Postmark sends Basic auth from the
//! URL. A bad signature answers 401 and changes nothing. A provider without credentials in
//! the configuration answers 404. Events then go to the one handler (`App::record_feedback`),
//! which records each once, so a provider's retry changes nothing.
//!
//! Long (about 770 lines) because the four providers' checks and event shapes, and the DER
//! reading of an SNS certificate, live in one file: one concern per provider, four providers.
//! Issue 16 splits it into a file per provider and takes the X.509 parsing from a crate.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use ring::signature::{self, UnparsedPublicKey};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{
    app::App,
    domain::SubscriberEmail,
    store::{FeedbackEvent, FeedbackKind, FeedbackResult, FeedbackTarget},
};

/// Largest webhook body: SendGrid batches up to a few thousand events.
pub const MAX_BODY: usize = 2 << 20;
/// Mailgun tokens remembered against replay, and for how long a signature is good.
const MAILGUN_TOKENS: usize = 100_000;
const MAILGUN_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How far SendGrid's signed timestamp may be from our clock, either way: a signed request
/// captured once cannot be sent again later. SendGrid posts within seconds of signing.
const SENDGRID_WINDOW: Duration = Duration::from_secs(5 * 60);
/// SNS signing certificates kept.
const SNS_CERTS: usize = 16;
/// Largest SNS signing certificate read (Amazon's are under 2 KiB), and how long its fetch
/// may take: SNS gives up on us after 15 s.
const SNS_CERT_MAX: usize = 64 * 1024;
const SNS_FETCH_TIME: Duration = Duration::from_secs(10);

/// What the webhooks remember between requests, bounded.
pub struct WebhookState {
    mailgun_tokens: Mutex<HashMap<String, Instant>>,
    sns_certs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    /// For SNS certificates and subscription confirmations: follows no redirect, since a
    /// redirect would take the fetch away from the host that was checked.
    sns_http: reqwest::Client,
}

impl WebhookState {
    pub fn new() -> anyhow::Result<WebhookState> {
        let sns_http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(SNS_FETCH_TIME)
            .build()
            .context("failed to build the SNS HTTP client")?;
        Ok(WebhookState {
            mailgun_tokens: Mutex::default(),
            sns_certs: Mutex::default(),
            sns_http,
        })
    }
}

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/webhooks/{provider}", post(webhook))
}

enum Refuse {
    NotFound,
    Unauthorized(&'static str),
    Bad(String),
    Failed(anyhow::Error),
}

impl IntoResponse for Refuse {
    fn into_response(self) -> Response {
        match self {
            Refuse::NotFound => StatusCode::NOT_FOUND.into_response(),
            Refuse::Unauthorized(why) => {
                tracing::warn!(why, "webhook refused");
                (StatusCode::UNAUTHORIZED, Json(json!({ "error": why }))).into_response()
            }
            Refuse::Bad(why) => {
                (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response()
            }
            Refuse::Failed(e) => {
                tracing::error!(error = %format!("{e:#}"), "webhook failed; the provider will retry");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        }
    }
}

impl From<anyhow::Error> for Refuse {
    fn from(e: anyhow::Error) -> Refuse {
        Refuse::Failed(e)
    }
}

async fn webhook(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Refuse> {
    if body.len() > MAX_BODY {
        return Err(Refuse::Bad("body too large".into()));
    }
    let events = match provider.as_str() {
        "postmark" => postmark(&app, &headers, &body)?,
        "mailgun" => mailgun(&app, &body)?,
        "sendgrid" => sendgrid(&app, &headers, &body)?,
        "ses" => match ses(&app, &body).await? {
            Some(events) => events,
            None => return Ok(Json(json!({ "confirmed": true }))),
        },
        _ => return Err(Refuse::NotFound),
    };
    let mut recorded = 0;
    for ev in events {
        if matches!(
            app.record_feedback(ev).await?,
            FeedbackResult::Recorded { .. }
        ) {
            recorded += 1;
        }
    }
    Ok(Json(json!({ "recorded": recorded })))
}

fn normalized(email: &str) -> Option<String> {
    SubscriberEmail::parse(email.trim())
        .ok()
        .map(|e| e.normalized())
}

/// One event, about our Message-ID when the provider kept it, else about the address (the
/// provider proved who it is, so its word on the address is taken).
fn event(
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

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

type Events = Vec<FeedbackEvent>;

fn parse_json(body: &[u8]) -> Result<Value, Refuse> {
    serde_json::from_slice(body).map_err(|e| Refuse::Bad(format!("not JSON: {e}")))
}

// ------------------------------------------------------------------ Postmark

fn postmark(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Events, Refuse> {
    let w = &app.settings.webhooks;
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

// ------------------------------------------------------------------ Mailgun

fn mailgun(app: &App, body: &[u8]) -> Result<Events, Refuse> {
    let key = app.settings.webhooks.mailgun_signing_key.expose_secret();
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
        let mut seen = app.webhooks.mailgun_tokens.lock().expect("not poisoned");
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
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

// ------------------------------------------------------------------ SendGrid

fn sendgrid(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Events, Refuse> {
    let key = app.settings.webhooks.sendgrid_public_key.trim();
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
    let point = spki_key(&spki).ok_or_else(|| {
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

// ------------------------------------------------------------------ Amazon SES through SNS

async fn ses(app: &App, body: &[u8]) -> Result<Option<Events>, Refuse> {
    let w = &app.settings.webhooks;
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
    if !cert_url_allowed(cert_url, &w.sns_cert_hosts) {
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
    // The rest of the shape is checked before the certificate is fetched too: a message that
    // would be refused anyway must not make us fetch anything.
    let subscribe_url = field("SubscribeURL").unwrap_or("");
    if ty == "SubscriptionConfirmation" && !cert_url_allowed_host(subscribe_url, &w.sns_cert_hosts)
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
    let key = sns_key(app, cert_url).await?;
    UnparsedPublicKey::new(alg, key.as_slice())
        .verify(to_sign.as_bytes(), &sig)
        .map_err(|_| Refuse::Unauthorized("bad signature"))?;

    if ty == "SubscriptionConfirmation" {
        let answer = app
            .webhooks
            .sns_http
            .get(subscribe_url)
            .send()
            .await
            .map_err(|e| {
                Refuse::Failed(anyhow::anyhow!("cannot confirm the SNS subscription: {e}"))
            })?;
        if !answer.status().is_success() {
            return Err(Refuse::Failed(anyhow::anyhow!(
                "cannot confirm the SNS subscription: SNS answered {}",
                answer.status()
            )));
        }
        tracing::info!(topic, "SNS subscription confirmed");
        return Ok(None);
    }
    let Some(m) = message else {
        return Ok(Some(Vec::new()));
    };
    let sns_id = field("MessageId").unwrap_or("").to_owned();
    let kind_name = s(&m, &["notificationType"]).or_else(|| s(&m, &["eventType"]));
    let message_id = s(&m, &["mail", "commonHeaders", "messageId"]);
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
    Ok(Some(out))
}

/// `https://sns.<region>.amazonaws.com[.cn]/….pem` on port 443, or a host the operator listed.
fn cert_url_allowed(url: &str, extra: &[String]) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    listed(&u, extra) || (https_443(&u) && sns_host(host(&u)) && u.path().ends_with(".pem"))
}

fn cert_url_allowed_host(url: &str, extra: &[String]) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    listed(&u, extra) || (https_443(&u) && sns_host(host(&u)))
}

/// https on its own port: another port on an SNS name is not SNS's service.
fn https_443(u: &url::Url) -> bool {
    u.scheme() == "https" && u.port_or_known_default() == Some(443)
}

fn host(u: &url::Url) -> &str {
    u.host_str().unwrap_or("")
}

/// A listed `host` allows https on port 443 there; a listed `host:port` allows that port
/// (how the tests serve a certificate on a port of their own).
fn listed(u: &url::Url, extra: &[String]) -> bool {
    let h = host(u);
    extra.iter().any(|e| match u.port() {
        Some(p) => *e == format!("{h}:{p}"),
        None => e == h && https_443(u),
    })
}

fn sns_host(host: &str) -> bool {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"));
    match rest.and_then(|r| r.strip_prefix("sns.")) {
        Some(region) => {
            region.len() >= 3
                && region
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
        None => false,
    }
}

/// The RSA public key (PKCS#1) of the certificate at `url`, fetched once.
async fn sns_key(app: &App, url: &str) -> Result<Arc<Vec<u8>>, Refuse> {
    if let Some(k) = app
        .webhooks
        .sns_certs
        .lock()
        .expect("not poisoned")
        .get(url)
    {
        return Ok(k.clone());
    }
    let fetch_failed = |e: reqwest::Error| {
        Refuse::Failed(anyhow::anyhow!("cannot fetch the SNS certificate: {e}"))
    };
    let mut answer = app
        .webhooks
        .sns_http
        .get(url)
        .send()
        .await
        .map_err(fetch_failed)?;
    if answer.status().is_redirection() {
        return Err(Refuse::Unauthorized("certificate URL redirects"));
    }
    if !answer.status().is_success() {
        return Err(Refuse::Failed(anyhow::anyhow!(
            "cannot fetch the SNS certificate: {}",
            answer.status()
        )));
    }
    if answer
        .content_length()
        .is_some_and(|n| n > SNS_CERT_MAX as u64)
    {
        return Err(Refuse::Unauthorized("certificate too large"));
    }
    // Read in chunks so a large body is cut at the limit, not held whole first.
    let mut pem = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(fetch_failed)? {
        if pem.len() + chunk.len() > SNS_CERT_MAX {
            return Err(Refuse::Unauthorized("certificate too large"));
        }
        pem.extend_from_slice(&chunk);
    }
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(&pem)
        .map_err(|_| Refuse::Unauthorized("not a PEM certificate"))?;
    let key = Arc::new(
        cert_public_key(&der).ok_or(Refuse::Unauthorized("no RSA key in the certificate"))?,
    );
    let mut certs = app.webhooks.sns_certs.lock().expect("not poisoned");
    if certs.len() >= SNS_CERTS {
        certs.clear();
    }
    certs.insert(url.to_owned(), key.clone());
    Ok(key)
}

/// One DER element: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The key bits inside a SubjectPublicKeyInfo (the BIT STRING without its unused-bits byte).
fn spki_key(spki: &[u8]) -> Option<&[u8]> {
    let (tag, seq, _) = tlv(spki)?;
    if tag != 0x30 {
        return None;
    }
    let (_alg_tag, _alg, rest) = tlv(seq)?;
    let (bit_tag, bits, _) = tlv(rest)?;
    (bit_tag == 0x03 && bits.first() == Some(&0)).then(|| &bits[1..])
}

/// The public key of an X.509 certificate (for RSA: the PKCS#1 RSAPublicKey ring takes).
fn cert_public_key(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, cert_seq, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(cert_seq)?;
    let mut rest = tbs;
    // [0] version, when present.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serial, signature algorithm, issuer, validity, subject
    for _ in 0..5 {
        rest = tlv(rest)?.2;
    }
    let (tag, spki_content, _) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let spki_len = rest.len() - tlv(rest)?.2.len();
    let _ = spki_content;
    spki_key(&rest[..spki_len]).map(|k| k.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_hosts_serve_certificates() {
        let none: Vec<String> = Vec::new();
        assert!(cert_url_allowed(
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
            &none
        ));
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.net/x.pem",
            "https://evil.net/sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com/x.txt",
            "https://s3.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
            "https://sns.eu-west-1.amazonaws.com:80/x.pem",
        ] {
            assert!(!cert_url_allowed(bad, &none), "{bad}");
        }
        assert!(cert_url_allowed(
            "https://sns.eu-west-1.amazonaws.com:443/x.pem",
            &none
        ));
    }

    #[test]
    fn a_listed_host_is_allowed_on_its_listed_port_only() {
        let listed = vec!["127.0.0.1:4000".to_owned(), "certs.example.net".to_owned()];
        for good in [
            "http://127.0.0.1:4000/cert.pem",
            "https://certs.example.net/cert.pem",
            "https://certs.example.net:443/cert.pem",
        ] {
            assert!(cert_url_allowed(good, &listed), "{good}");
        }
        for bad in [
            "http://127.0.0.1:4001/cert.pem",
            "http://127.0.0.1/cert.pem",
            "http://certs.example.net/cert.pem",
            "https://certs.example.net:8443/cert.pem",
        ] {
            assert!(!cert_url_allowed(bad, &listed), "{bad}");
        }
    }
}
