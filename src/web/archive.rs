//! The public archive: web copies of sent digests (each digest's "view in browser" link).

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::get,
};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::{PageFailure, links::message_page, page};
use crate::{
    app::App,
    render::{Page, PageEntry, SlotMarkers, arabic_date_time},
    store::{DigestKind, DigestStatus},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/archive", get(archive))
        .route("/archive/{id}", get(archive_entry))
}

/// The time zone a schedule's issues are dated in.
fn zone(app: &App, schedule: &str) -> Tz {
    app.settings
        .schedules
        .iter()
        .find(|s| s.name == schedule)
        .or(app.settings.schedules.first())
        .map(|s| s.cron.timezone())
        .unwrap_or(chrono_tz::UTC)
}

async fn archive(State(app): State<Arc<App>>) -> Result<Response, PageFailure> {
    let entries = app.store.archive(100).await?;
    let p = Page {
        title: format!("أرشيف {}", app.settings.newsletter.name),
        lines: if entries.is_empty() {
            vec!["لم تُرسل أي نشرة بعد.".into()]
        } else {
            vec![]
        },
        entries: entries
            .into_iter()
            .map(|e| PageEntry {
                url: format!("/archive/{}", e.id),
                subject: e.subject,
                date: Utc
                    .timestamp_millis_opt(e.created_at)
                    .single()
                    .map(|d| arabic_date_time(&d.with_timezone(&zone(&app, &e.schedule))))
                    .unwrap_or_default(),
            })
            .collect(),
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    };
    Ok(page(StatusCode::OK, app.renderer.page(&app.settings, &p)))
}

async fn archive_entry(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageFailure> {
    let not_found = || {
        message_page(
            &app,
            StatusCode::NOT_FOUND,
            "غير موجود",
            "لا توجد نشرة بهذا الرقم.",
        )
    };
    let Ok(id) = id.parse::<i64>() else {
        return Ok(not_found());
    };
    let Some(d) = app.store.digest(id).await? else {
        return Ok(not_found());
    };
    // A cancelled send was never published.
    if d.status == DigestStatus::Cancelled {
        return Ok(not_found());
    }
    // A test send is not published; its own "view in browser" link carries the key.
    if d.kind == DigestKind::Test
        && !q
            .get("key")
            .is_some_and(|k| app.tokens.verify_archive(id, k))
    {
        return Ok(not_found());
    }
    let html = if d.web_html.is_empty() {
        // A digest from before web copies were stored: the email, filled for nobody.
        SlotMarkers::from_key(&d.slot_key).fill_generic(
            &d.html,
            &app.settings.public_url("/subscribe"),
            &app.settings.public_url(&format!("/archive/{id}")),
        )
    } else {
        d.web_html
    };
    Ok(page(StatusCode::OK, html))
}
