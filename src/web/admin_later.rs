//! The admin API's sends for later: `POST /api/sends` with `at` (RFC 3339), `PUT
//! /api/sends/{id}` to move one or change its subject while it waits, `GET /api/sends` to
//! list them, and what `GET /api/sends/{id}` says of one. Cancelling is the ordinary
//! `POST /api/sends/{id}/cancel`.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{RawQuery, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ApiError,
    extract::{BodyError, StrictJson},
};
use crate::{
    app::{Actor, App, OpError, PlanRefusal, send_status_name},
    store::Role,
};

/// `POST /api/sends` with `at`: 202 `{"id", "status": "scheduled", "starts_at", …}`.
pub(super) async fn plan(
    app: &App,
    actor: &Actor,
    schedule: Option<String>,
    test_to: Option<String>,
    at: Option<String>,
    local: bool,
    subject: Option<String>,
) -> Result<Response, ApiError> {
    if test_to.is_some() {
        return Err(OpError::from(PlanRefusal::TestLater).into());
    }
    let Some(at) = at else {
        return Err(ApiError::invalid(
            "invalid_at",
            "`local` and `subject` plan a send for later: give `at`, when it starts (RFC 3339)",
        ));
    };
    let at = parse_at(&at)?;
    let plan = app
        .plan_send(actor, schedule.as_deref(), at, subject.as_deref(), local)
        .await?;
    let view = serde_json::to_value(app.plan_view(&plan)).map_err(anyhow::Error::from)?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

fn parse_at(s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::invalid(
                "invalid_at",
                format!(
                    "at: not an RFC 3339 date and time with its offset, such as 2027-01-05T07:00:00+03:00 ({e})"
                ),
            )
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EditIn {
    at: Option<String>,
    /// `""`: the schedule's subject again.
    subject: Option<String>,
}

/// `PUT /api/sends/{id}` `{"at"?, "subject"?}`: while it waits (409 after it starts).
pub(super) async fn edit(
    app: &App,
    actor: &Actor,
    id: i64,
    body: Result<StrictJson<EditIn>, BodyError>,
) -> Result<Json<Value>, ApiError> {
    actor.require(Role::Editor)?;
    let StrictJson(e) = body?;
    if e.at.is_none() && e.subject.is_none() {
        return Err(ApiError::invalid(
            "invalid_request",
            "give `at`, `subject` or both",
        ));
    }
    let at = e.at.as_deref().map(parse_at).transpose()?;
    let plan = app.edit_plan(actor, id, at, e.subject.as_deref()).await?;
    Ok(Json(
        serde_json::to_value(app.plan_view(&plan)).map_err(anyhow::Error::from)?,
    ))
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
}

/// `GET /api/sends?status=scheduled`: the sends waiting for their time, soonest first;
/// without `status`, the latest 50 sends, newest first.
pub(super) async fn list_sends(
    State(app): State<Arc<App>>,
    Extension(actor): Extension<Actor>,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    actor.require(Role::Viewer)?;
    // Parsed here so a bad parameter gets this API's JSON error, not axum's plain text.
    let q: ListQuery = serde_urlencoded::from_str(query.0.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::invalid("invalid_query", format!("query string: {e}")))?;
    match q.status.as_deref() {
        Some("scheduled") => {
            let plans = app.waiting_plans(&actor).await?;
            let views: Vec<_> = plans.iter().map(|p| app.plan_view(p)).collect();
            Ok(Json(json!({ "sends": views })))
        }
        None | Some("") => {
            let mut sends = Vec::new();
            for s in app.store.sends(None, 50).await? {
                let mut v = serde_json::to_value(&s).map_err(anyhow::Error::from)?;
                v["status"] = json!(send_status_name(s.status));
                sends.push(v);
            }
            Ok(Json(json!({ "sends": sends })))
        }
        Some(_) => Err(ApiError::invalid(
            "invalid_status",
            "status is `scheduled`, or left out for the latest sends",
        )),
    }
}

/// What `GET /api/sends/{id}` adds for a planned send: `scheduled` while it waits, when it
/// starts, its own subject and local time, and why it sent nothing.
pub(super) async fn describe(app: &App, id: i64, v: &mut Value) -> Result<(), ApiError> {
    if let Some(plan) = app.store.plan(id).await? {
        let view = app.plan_view(&plan);
        v["status"] = json!(view.status);
        v["starts_at"] = json!(view.starts_at);
        v["subject"] = json!(view.subject);
        v["planned_subject"] = json!(view.planned_subject);
        v["local"] = json!(view.local);
        v["local_time"] = json!(view.local_time);
        if let Some(reason) = view.reason {
            v["reason"] = json!(reason);
        }
    }
    Ok(())
}
