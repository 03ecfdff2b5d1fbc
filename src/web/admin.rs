//! The admin API, behind `Authorization: Bearer <token>`: an API token made in the console
//! (with its role), or the configuration's `admin_token` (an owner). Every handler calls the
//! operation the console and the command line call, which checks the role and writes the
//! audit log.

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::{FromRequestParts, Path, Request, State},
    http::{StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    admin_later::{self as later, EditIn, list_sends},
    client::client_ip,
    error::ApiError,
    extract::{BodyError, PathId, StrictJson},
};
use crate::{
    app::{Actor, App, OpError, Reputation, SendControl, SubjectTestIn, send_status_name},
    domain::SubscriberEmail,
    store::{DigestOutcome, DigestStatus, NewArticle, ReaderFilter, Role, now_ms},
};

pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/articles", post(add_article))
        .route("/ingest", post(ingest))
        .route("/sends", post(create_send).get(list_sends))
        .route("/sends/{id}", get(send_status).put(edit_send))
        .route("/sends/{id}/{action}", post(control))
        .route("/sends/{id}/failures", get(failures))
        .route("/sends/{id}/report.csv", get(report_csv))
        .route("/alerts", get(list_alerts))
        .route("/alerts/{id}/send", post(send_alert))
        .route("/alerts/{id}/cancel", post(cancel_alert))
        .route("/relays", get(relays))
        .route("/reputation", get(reputation))
        .route("/subscribers", get(list_subscribers))
        .route(
            "/subscribers/{email}",
            axum::routing::delete(erase_subscriber),
        )
        .merge(super::admin_desk::router())
        .layer(middleware::from_fn_with_state(app, require_token))
}

/// Each relay's health and counters as this process sees them; `[]` for the outbox.
async fn relays(State(app): State<Arc<App>>) -> Json<Value> {
    let list = app
        .mailer
        .transport
        .relays()
        .map(|r| r.statuses())
        .unwrap_or_default();
    Json(json!({ "relays": list }))
}

/// The DMARC reports of the last thirty days, counted (the console's «السمعة»).
async fn reputation(State(app): State<Arc<App>>) -> Result<Json<Reputation>, ApiError> {
    Ok(Json(app.reputation().await?))
}

async fn require_token(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
    let client = client_ip(&app.settings.server, peer, req.headers()).to_string();
    match app.bearer(&given, &client).await {
        Ok(Some(actor)) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => ApiError::Internal(e).into_response(),
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        match e {
            OpError::Forbidden(role) => ApiError::Invalid {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: format!("this needs a token with the {role} role"),
            },
            OpError::NotFound(_) => ApiError::NotFound,
            OpError::InvalidState(status) => ApiError::Invalid {
                status: StatusCode::CONFLICT,
                code: "invalid_state",
                message: format!("the send is {}", send_status_name(status)),
            },
            OpError::Refused(crate::app::Refusal::Plan(r)) => {
                ApiError::invalid(r.code(), r.to_string())
            }
            OpError::Refused(r @ crate::app::Refusal::AlertState(..)) => ApiError::Invalid {
                status: StatusCode::CONFLICT,
                code: "invalid_state",
                message: r.to_string(),
            },
            OpError::Refused(r @ crate::app::Refusal::UnknownSchedule(_)) => ApiError::Invalid {
                status: StatusCode::NOT_FOUND,
                code: "unknown_schedule",
                message: r.to_string(),
            },
            OpError::Refused(r) => ApiError::invalid("refused", r.to_string()),
            OpError::Store(e) => ApiError::Internal(e),
        }
    }
}

/// A send's id in the path; one that is not a number is this API's JSON 404.
struct Id(i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, ApiError> {
        let PathId(id) = PathId::from_request_parts(parts, state).await?;
        Ok(Id(id))
    }
}

#[derive(Deserialize)]
struct Action {
    action: String,
}

#[derive(Deserialize)]
struct ArticleIn {
    url: String,
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    content_html: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    tags: Vec<String>,
    /// The site's section for the article (a `[[sections]]` slug or one of its categories).
    #[serde(default)]
    section: Option<String>,
    #[serde(default)]
    image: String,
    published_at: Option<chrono::DateTime<chrono::Utc>>,
    guid: Option<String>,
    /// Breaking news: a candidate for an alert.
    #[serde(default)]
    urgent: bool,
}

async fn add_article(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    // Read after the role check: a viewer's token is refused whatever it sends.
    body: Result<StrictJson<ArticleIn>, BodyError>,
) -> Result<Response, ApiError> {
    actor.require(Role::Editor)?;
    let StrictJson(a) = body?;
    let raw = NewArticle {
        guid: a.guid,
        url: a.url,
        title: a.title,
        author: a.author,
        summary: a.summary,
        content_html: a.content_html,
        image: a.image,
        tags: a.tags,
        categories: a.section.into_iter().collect(),
        published_at: a.published_at.map(|d| d.timestamp_millis()),
        source: "api".into(),
        urgent: a.urgent,
        ..Default::default()
    };
    let article = App::normalize_article(raw)
        .await
        .map_err(|e| ApiError::invalid("invalid_article", e.to_string()))?;
    let (id, new) = app.push_article(&actor, article).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"id": id, "new": new}))).into_response())
}

async fn ingest(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, ApiError> {
    let report = app.ingest_now(&actor).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}

#[derive(Deserialize, Default)]
struct SendIn {
    schedule: Option<String>,
    test_to: Option<String>,
    /// Two to four subjects tried on samples; readers' clicks choose the one the rest get.
    subject_test: Option<SubjectTestIn>,
    /// A send for later: when (RFC 3339); see `later`.
    at: Option<String>,
    /// With `at`: each reader at `at`'s time of day in their own zone.
    #[serde(default)]
    local: bool,
    /// With `at`: the send's own subject instead of the schedule's.
    subject: Option<String>,
}

async fn create_send(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    // No body at all is a send of the first schedule.
    body: Result<Option<StrictJson<SendIn>>, BodyError>,
) -> Result<Response, ApiError> {
    let req = body?.map(|StrictJson(r)| r).unwrap_or_default();
    if req.at.is_some() || req.local || req.subject.is_some() {
        if req.subject_test.is_some() {
            return Err(ApiError::invalid(
                "invalid_request",
                "subject_test: a send for later takes the subject test its schedule's desk holds \
                 (PUT /api/schedules/{name}/next)"
                    .to_owned(),
            ));
        }
        return later::plan(
            &app,
            &actor,
            req.schedule,
            req.test_to,
            req.at,
            req.local,
            req.subject,
        )
        .await;
    }
    let test_to = match req.test_to.as_deref() {
        Some(t) => Some(
            SubscriberEmail::parse(t)
                .map_err(|e| ApiError::invalid("invalid_email", format!("test_to: {e}")))?,
        ),
        None => None,
    };
    let out = match req.subject_test {
        Some(_) if test_to.is_some() => {
            return Err(ApiError::invalid(
                "invalid_request",
                "subject_test: a test send tries no subjects".to_owned(),
            ));
        }
        Some(test) => {
            app.start_send_tested(&actor, req.schedule.as_deref(), test)
                .await?
        }
        None => {
            app.start_send(&actor, req.schedule.as_deref(), test_to.as_slice())
                .await?
        }
    };
    match out {
        DigestOutcome::Created { id, recipients } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "recipients": recipients})),
        )
            .into_response()),
        DigestOutcome::NothingNew | DigestOutcome::Stale | DigestOutcome::Paused => Ok((
            StatusCode::OK,
            Json(json!({"id": null, "reason": "nothing_new"})),
        )
            .into_response()),
        DigestOutcome::Exists(id) => {
            Ok((StatusCode::OK, Json(json!({"id": id, "reason": "exists"}))).into_response())
        }
    }
}

/// A send for later moved or retitled while it waits (`later`).
async fn edit_send(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Id(id): Id,
    body: Result<StrictJson<EditIn>, BodyError>,
) -> Result<Json<Value>, ApiError> {
    later::edit(&app, &actor, id, body).await
}

async fn send_status(State(app): State<Arc<App>>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    let p = app.store.progress(id).await?.ok_or(ApiError::NotFound)?;
    let mut v = serde_json::to_value(&p).map_err(anyhow::Error::from)?;
    // The send paused itself (`delivery.guard`): what it saw, and why in words; while it is
    // open, the mailbox providers whose readers wait.
    v["guard"] = json!(crate::app::guard_json(&p.guard));
    if p.status.is_open() || p.status == DigestStatus::Paused {
        v["provider_backoffs"] = json!(app.provider_waits().await?);
    }
    // What came back after the relay took the messages: bounces, complaints, deliveries.
    let feedback = app.store.feedback_counts(p.id).await?;
    v["feedback"] = serde_json::to_value(&feedback).map_err(anyhow::Error::from)?;
    // Clicks per article of this send (`newsletter.click_counts`); never per reader.
    let clicks = app.store.digest_clicks(p.id).await?;
    v["clicks"] = serde_json::to_value(&clicks).map_err(anyhow::Error::from)?;
    // A subject test: each subject's sample, sent and clickers; the winner and why.
    if let Some(test) = app.subject_test_results(p.id).await? {
        v["subject_test"] = serde_json::to_value(&test).map_err(anyhow::Error::from)?;
    }
    // Once it is no longer under way, per edition and mailbox provider: delivered, failed,
    // bounced, complained, unsubscribed, clicked (also as CSV: `report.csv`). It reads
    // the whole ledger of the send (~0.5 s at 100,000 readers), too much for a script
    // polling the progress.
    if !p.status.is_open() {
        let providers = app.send_report(p.id).await?;
        v["providers"] = serde_json::to_value(&providers).map_err(anyhow::Error::from)?;
    }
    // Messages per relay (once it is over: it reads the whole ledger of the send), and what
    // a warm-up holds back per provider.
    let routing = app.send_routing(p.id, !p.status.is_open()).await?;
    if !routing.relays.is_empty() {
        v["relays"] = serde_json::to_value(&routing.relays).map_err(anyhow::Error::from)?;
    }
    if app.settings.delivery.warmup.enabled() {
        v["warmup"] = serde_json::to_value(&routing.warmup).map_err(anyhow::Error::from)?;
    }
    // A send planned for later: `scheduled` while it waits, when it starts, why it sent
    // nothing.
    later::describe(&app, p.id, &mut v).await?;
    // A local-hour send's waves: zone, the slot's hour there, readers, sent.
    let waves = app.send_waves(p.id).await?;
    if !waves.is_empty() {
        v["waves"] = serde_json::to_value(&waves).map_err(anyhow::Error::from)?;
    }
    // Rate and estimated finish, from the send so far.
    if let Some(started) = p.started_at {
        let end = p.finished_at.unwrap_or_else(now_ms);
        let secs = ((end - started) as f64 / 1000.0).max(0.001);
        let rate = p.sent as f64 / secs;
        v["rate_per_second"] = json!((rate * 10.0).round() / 10.0);
        if p.status == DigestStatus::Sending && rate > 0.0 {
            let eta_ms = now_ms() + (p.pending as f64 / rate * 1000.0) as i64;
            v["estimated_finish"] =
                json!(chrono::DateTime::from_timestamp_millis(eta_ms).map(|d| d.to_rfc3339()));
        }
    }
    Ok(Json(v))
}

/// The latest alerts; those still open say whom they would reach now.
async fn list_alerts(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Value>, ApiError> {
    let alerts = app.list_alerts(&actor).await?;
    Ok(Json(json!({ "alerts": alerts })))
}

/// «أرسل»: the alert starts when its undo window ends.
async fn send_alert(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Id(id): Id,
) -> Result<Json<Value>, ApiError> {
    let alert = app.send_alert(&actor, id).await?;
    Ok(Json(
        serde_json::to_value(alert).map_err(anyhow::Error::from)?,
    ))
}

/// «تراجع»: cancelled with nothing sent, while it has not started.
async fn cancel_alert(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Id(id): Id,
) -> Result<Json<Value>, ApiError> {
    let alert = app.cancel_alert(&actor, id).await?;
    Ok(Json(
        serde_json::to_value(alert).map_err(anyhow::Error::from)?,
    ))
}

/// Pause, resume, cancel or retry a send, through the one door every caller uses.
async fn control(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Id(id): Id,
    Path(Action { action }): Path<Action>,
) -> Result<Json<Value>, ApiError> {
    let c = match action.as_str() {
        "pause" => SendControl::Pause,
        "resume" => SendControl::Resume,
        "cancel" => SendControl::Cancel,
        "retry" => SendControl::Retry,
        _ => return Err(ApiError::NotFound),
    };
    let (p, requeued) = app.control(&actor, id, c).await?;
    let mut v = serde_json::to_value(&p).map_err(anyhow::Error::from)?;
    v["guard"] = json!(crate::app::guard_json(&p.guard));
    if c == SendControl::Retry {
        v["requeued"] = json!(requeued);
    }
    Ok(Json(v))
}

async fn failures(State(app): State<Arc<App>>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    app.store.digest(id).await?.ok_or(ApiError::NotFound)?;
    let f = app.store.failures(id, 1000).await?;
    Ok(Json(json!({"id": id, "failures": f})))
}

/// The send's report by mailbox provider as CSV, as the console's twin gives it.
async fn report_csv(State(app): State<Arc<App>>, Id(id): Id) -> Result<Response, ApiError> {
    app.store.progress(id).await?.ok_or(ApiError::NotFound)?;
    Ok(super::report::csv_file(&app, id).await?)
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    page: Option<String>,
}

async fn list_subscribers(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    query: axum::extract::RawQuery,
) -> Result<Json<Value>, ApiError> {
    // Every reader, page by page, is what the CSV export gives: the same role, before the
    // query is even read.
    actor.require(Role::Editor)?;
    // Parsed here so a bad parameter gets this API's JSON error, not axum's plain text.
    let q: ListQuery = serde_urlencoded::from_str(query.0.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::invalid("invalid_query", format!("query string: {e}")))?;
    let page = match q.page.as_deref() {
        None | Some("") => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| {
                ApiError::invalid("invalid_page", "page is a number from 1 to 1000000")
            })?,
    };
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::invalid(
                "invalid_status",
                "status is one of pending, confirmed, unsubscribed, bounced",
            )
        })?),
    };
    const PER_PAGE: i64 = 100;
    let filter = ReaderFilter {
        status,
        source: None,
        q: q.q.filter(|s| !s.is_empty()),
    };
    let (rows, total) = app.list_readers(&actor, &filter, page, PER_PAGE).await?;
    Ok(Json(
        json!({"page": page, "per_page": PER_PAGE, "total": total, "subscribers": rows}),
    ))
}

async fn erase_subscriber(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    let email = SubscriberEmail::parse(&email)
        .map_err(|e| ApiError::invalid("invalid_email", e.to_string()))?;
    app.erase_address(&actor, &email).await?;
    Ok((StatusCode::OK, Json(json!({"erased": true}))).into_response())
}
