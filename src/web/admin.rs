//! The admin API, behind `Authorization: Bearer <security.admin_token>`.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use crate::{
    app::{App, ControlError, SendControl},
    domain::{SubscriberEmail, token::constant_time_eq},
    store::{DigestKind, DigestOutcome, DigestStatus, NewArticle, SubscriberStatus, now_ms},
};

pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/articles", post(add_article))
        .route("/ingest", post(ingest))
        .route("/sends", post(create_send))
        .route("/sends/{id}", get(send_status))
        .route("/sends/{id}/pause", post(pause))
        .route("/sends/{id}/resume", post(resume))
        .route("/sends/{id}/cancel", post(cancel))
        .route("/sends/{id}/retry", post(retry))
        .route("/sends/{id}/failures", get(failures))
        .route("/subscribers", get(list_subscribers))
        .route(
            "/subscribers/{email}",
            axum::routing::delete(erase_subscriber),
        )
        .layer(middleware::from_fn_with_state(app, require_token))
}

async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if given.is_empty()
        || !constant_time_eq(
            given.as_bytes(),
            app.settings.security.admin_token.as_bytes(),
        )
    {
        return ApiError::Unauthorized.into_response();
    }
    next.run(req).await
}

/// Parses a JSON body ourselves so a malformed one gets our error shape, not axum's text.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("invalid_json", format!("request body: {e}")))
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
    #[serde(default)]
    image: String,
    published_at: Option<chrono::DateTime<chrono::Utc>>,
    guid: Option<String>,
}

async fn add_article(
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let a: ArticleIn = json_body(&body)?;
    let raw = NewArticle {
        guid: a.guid,
        url: a.url,
        title: a.title,
        author: a.author,
        summary: a.summary,
        content_html: a.content_html,
        image: a.image,
        tags: a.tags,
        published_at: a.published_at.map(|d| d.timestamp_millis()),
        source: "api".into(),
        ..Default::default()
    };
    let article = App::normalize_article(raw)
        .await
        .map_err(|e| ApiError::invalid("invalid_article", e.to_string()))?;
    let (id, new) = app.add_article(article).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"id": id, "new": new}))).into_response())
}

async fn ingest(State(app): State<Arc<App>>) -> Json<Value> {
    Json(serde_json::to_value(app.ingest_all().await).unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct SendIn {
    schedule: Option<String>,
    test_to: Option<String>,
}

async fn create_send(
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: SendIn = if body.is_empty() {
        SendIn::default()
    } else {
        json_body(&body)?
    };
    let schedule = app
        .settings
        .schedule(req.schedule.as_deref())
        .map_err(|e| ApiError::Invalid {
            status: StatusCode::NOT_FOUND,
            code: "unknown_schedule",
            message: e.to_string(),
        })?;
    let test_to = match req.test_to.as_deref() {
        Some(t) => Some(
            SubscriberEmail::parse(t)
                .map_err(|e| ApiError::invalid("invalid_email", format!("test_to: {e}")))?,
        ),
        None => None,
    };
    let kind = if test_to.is_some() {
        DigestKind::Test
    } else {
        DigestKind::Manual
    };
    match app
        .create_digest(schedule, kind, None, test_to.as_ref())
        .await?
    {
        DigestOutcome::Created { id, recipients } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "recipients": recipients})),
        )
            .into_response()),
        DigestOutcome::NothingNew | DigestOutcome::Stale => Ok((
            StatusCode::OK,
            Json(json!({"id": null, "reason": "nothing_new"})),
        )
            .into_response()),
        DigestOutcome::Exists(id) => {
            Ok((StatusCode::OK, Json(json!({"id": id, "reason": "exists"}))).into_response())
        }
    }
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

async fn send_status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let p = app
        .store
        .progress(parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut v = serde_json::to_value(&p).map_err(anyhow::Error::from)?;
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

/// Pause, resume, cancel or retry a send, through the one door every caller uses.
async fn control(app: &App, id: &str, c: SendControl) -> Result<Json<Value>, ApiError> {
    let id = parse_id(id)?;
    match app.control_send(id, c).await {
        Ok((p, requeued)) => {
            let mut v = serde_json::to_value(p).map_err(anyhow::Error::from)?;
            if c == SendControl::Retry {
                v["requeued"] = json!(requeued);
            }
            Ok(Json(v))
        }
        Err(ControlError::NotFound) => Err(ApiError::NotFound),
        Err(ControlError::InvalidState(status)) => Err(ApiError::Invalid {
            status: StatusCode::CONFLICT,
            code: "invalid_state",
            message: format!("send {id} is {status}"),
        }),
        Err(ControlError::Store(e)) => Err(ApiError::Internal(e)),
    }
}

async fn pause(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    control(&app, &id, SendControl::Pause).await
}

async fn resume(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    control(&app, &id, SendControl::Resume).await
}

async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    control(&app, &id, SendControl::Cancel).await
}

async fn retry(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    control(&app, &id, SendControl::Retry).await
}

async fn failures(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    app.store.digest(id).await?.ok_or(ApiError::NotFound)?;
    let f = app.store.failures(id, 1000).await?;
    Ok(Json(json!({"id": id, "failures": f})))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    page: Option<String>,
}

async fn list_subscribers(
    State(app): State<Arc<App>>,
    query: axum::extract::RawQuery,
) -> Result<Json<Value>, ApiError> {
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
    let status: Option<SubscriberStatus> = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::invalid(
                "invalid_status",
                "status is one of pending, confirmed, unsubscribed, bounced",
            )
        })?),
    };
    const PER_PAGE: i64 = 100;
    let (rows, total) = app
        .store
        .list_subscribers(
            status,
            q.q.as_deref().filter(|s| !s.is_empty()),
            page,
            PER_PAGE,
        )
        .await?;
    Ok(Json(
        json!({"page": page, "per_page": PER_PAGE, "total": total, "subscribers": rows}),
    ))
}

async fn erase_subscriber(
    State(app): State<Arc<App>>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    let email = SubscriberEmail::parse(&email)
        .map_err(|e| ApiError::invalid("invalid_email", e.to_string()))?;
    if app.erase(&email).await? {
        Ok((StatusCode::OK, Json(json!({"erased": true}))).into_response())
    } else {
        Err(ApiError::NotFound)
    }
}
