//! The public archive: web copies of sent digests (each digest's "view in browser" link), a
//! paginated list of them, and the same list as an Atom feed.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::{
    error::PageFailure,
    extract::{IdError, PathId},
    page::{message_page, page},
};
use crate::{
    app::App,
    render::{Page, PageEntry, SlotMarkers, calendar, escape_html},
    store::{DigestKind, DigestStatus},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/archive", get(archive))
        .route("/archive.xml", get(archive_feed))
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

/// Issues on one page of the archive, and in the feed.
const PER_PAGE: i64 = 20;

async fn archive(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageFailure> {
    let n = q
        .get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 100_000);
    // One more than a page says whether there is a next one.
    let mut entries = app.store.archive(PER_PAGE + 1, (n - 1) * PER_PAGE).await?;
    let more = entries.len() as i64 > PER_PAGE;
    entries.truncate(PER_PAGE as usize);
    let s = &app.settings;
    let p = Page {
        title: format!("أرشيف {}", s.newsletter.name),
        lines: if entries.is_empty() {
            vec!["لا أعداد هنا.".into()]
        } else {
            vec![]
        },
        entries: entries
            .into_iter()
            .map(|e| {
                let date = Utc
                    .timestamp_millis_opt(e.created_at)
                    .single()
                    .map(|d| {
                        let at = d.with_timezone(&zone(&app, &e.schedule));
                        let n = &s.newsletter;
                        let day = calendar::date_line(at.date_naive(), n.calendar, n.digits);
                        // A subject that carries the date already gets only the time.
                        if e.subject.contains(&day) {
                            calendar::digits(&at.format("%H:%M").to_string(), n.digits)
                        } else {
                            calendar::date_time_line(&at, n.calendar, n.digits)
                        }
                    })
                    .unwrap_or_default();
                PageEntry {
                    url: format!("/archive/{}", e.id),
                    subject: e.subject,
                    date,
                }
            })
            .collect(),
        newer_url: (n > 1).then(|| format!("/archive?page={}", n - 1)),
        older_url: more.then(|| format!("/archive?page={}", n + 1)),
        back_url: Some(s.newsletter.site_url.clone()),
        ..Default::default()
    };
    Ok(page(StatusCode::OK, app.renderer.page(s, &p)))
}

/// The archive as an Atom feed (RFC 4287): the latest published issues, each linking to its
/// web copy.
async fn archive_feed(State(app): State<Arc<App>>) -> Result<Response, PageFailure> {
    let entries = app.store.archive(PER_PAGE, 0).await?;
    let s = &app.settings;
    let rfc3339 = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let archive_url = s.public_url("/archive");
    let mut xml = String::with_capacity(1024 + entries.len() * 400);
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    xml.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"ar\">\n");
    xml.push_str(&format!(
        "<id>{}</id>\n<title>{}</title>\n<updated>{}</updated>\n<link rel=\"self\" href=\"{}\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n<author><name>{}</name></author>\n",
        escape_html(&archive_url),
        escape_html(&s.newsletter.name),
        rfc3339(entries.first().map(|e| e.created_at).unwrap_or(0)),
        escape_html(&s.public_url("/archive.xml")),
        escape_html(&archive_url),
        escape_html(&s.newsletter.site_name),
    ));
    for e in &entries {
        let url = escape_html(&s.public_url(&format!("/archive/{}", e.id))).into_owned();
        xml.push_str(&format!(
            "<entry>\n<id>{url}</id>\n<title>{}</title>\n<updated>{}</updated>\n<link rel=\"alternate\" type=\"text/html\" href=\"{url}\"/>\n</entry>\n",
            escape_html(&e.subject),
            rfc3339(e.created_at),
        ));
    }
    xml.push_str("</feed>\n");
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        xml,
    )
        .into_response())
}

async fn archive_entry(
    State(app): State<Arc<App>>,
    id: Result<PathId, IdError>,
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
    let id = match id {
        Ok(PathId(id)) => id,
        Err(IdError::NotANumber) => return Ok(not_found()),
        Err(IdError::Unread(u)) => return Ok(u.into_response()),
    };
    let Some(d) = app.store.digest(id).await? else {
        return Ok(not_found());
    };
    // A cancelled send was never published; a send planned for later has no digest while
    // it waits, nor ever if nothing was new at its time.
    if d.status == DigestStatus::Cancelled || d.html.is_empty() {
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
            &app.settings.public_url("/subscribe"),
            &app.settings.public_url(&format!("/archive/{id}")),
        )
    } else {
        d.web_html
    };
    Ok(page(StatusCode::OK, html))
}
