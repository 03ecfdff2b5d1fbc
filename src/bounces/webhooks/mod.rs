//! Provider webhooks: `POST /webhooks/{ses,postmark,mailgun,sendgrid}`.
//!
//! Each checks that the provider sent it before anything is read: Amazon SNS signs with a
//! certificate fetched only from an SNS host on port 443, never through a redirect, and only
//! for a message whose topic and shape are acceptable (so a stranger cannot make us fetch);
//! Mailgun signs with HMAC-SHA256 and a token that must not come twice; SendGrid signs with
//! ECDSA P-256 a timestamp that must be within minutes of now; Postmark sends Basic auth from
//! the URL. A bad signature answers 401 and changes nothing. A provider without credentials in
//! the configuration answers 404. Events then go to the one handler (`App::record_feedback`),
//! which records each once, so a provider's retry changes nothing.
//!
//! One file per provider; `event` and `refuse` hold what they share, `sns` where an SNS
//! certificate may come from and how it is read. This file only routes.

mod event;
mod mailgun;
mod postmark;
mod refuse;
mod sendgrid;
mod ses;
mod sns;

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::HeaderMap,
    routing::post,
};
use serde_json::{Value, json};

use crate::{app::App, store::FeedbackResult};
use refuse::Refuse;

/// Largest webhook body: SendGrid batches up to a few thousand events.
pub const MAX_BODY: usize = 2 << 20;

/// What the webhooks remember between requests, bounded: the router's own state, built with
/// it (one per server), so `App` carries nothing of the providers'.
struct WebhookState {
    mailgun: mailgun::Replays,
    sns: sns::Certificates,
}

/// `POST /webhooks/{provider}`, with the state the webhooks keep between requests.
pub fn router() -> Router<Arc<App>> {
    let state = WebhookState {
        mailgun: mailgun::Replays::default(),
        sns: sns::Certificates::new(),
    };
    Router::new()
        .route("/webhooks/{provider}", post(webhook))
        .layer(Extension(Arc::new(state)))
}

async fn webhook(
    State(app): State<Arc<App>>,
    Extension(memory): Extension<Arc<WebhookState>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Refuse> {
    if body.len() > MAX_BODY {
        return Err(Refuse::Bad("body too large".into()));
    }
    let w = &app.settings.webhooks;
    let events = match provider.as_str() {
        "postmark" => postmark::events(w, &headers, &body)?,
        "mailgun" => mailgun::events(w, &memory.mailgun, &body)?,
        "sendgrid" => sendgrid::events(w, &headers, &body)?,
        "ses" => match ses::events(w, &memory.sns, &body).await? {
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
