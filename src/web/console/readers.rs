//! Readers: search and filter, a reader's consent history, unsubscribe, erase (after a
//! confirmation page), CSV import with a per-row report, CSV export.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Multipart, Query, State},
    http::header,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{
    dashboard::Done,
    extract::{Form, Id},
    respond::{PageError, done},
    session::Me,
    view::{self, render},
};
use crate::{
    app::{App, OpError, Refusal},
    store::{ReaderFilter, Role, SubscriberStatus},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/readers", get(list))
        // A POST, so the console's same-origin check stands before it: a cross-site link
        // or image cannot make an editor's browser download every reader.
        .route("/readers/export.csv", post(export))
        .route("/readers/import", get(import_page))
        .route("/readers/{id}", get(reader))
        .route("/readers/{id}/unsubscribe", post(unsubscribe))
        .route("/readers/{id}/erase", get(erase_page).post(erase))
}

/// The import takes a file: a larger body limit than other console forms.
pub fn import_router() -> Router<Arc<App>> {
    Router::new().route("/readers/import", post(import))
}

const PER_PAGE: i64 = 50;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: String,
    status: String,
    source: String,
    page: String,
    done: Option<String>,
}

async fn list(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let mut c = view::context(&app, &me, "القرّاء", "readers", q.done.as_deref());
    let status: Option<SubscriberStatus> = q.status.parse().ok();
    let source = view::SOURCES
        .iter()
        .find(|(k, _)| *k == q.source)
        .map(|(k, _)| (*k).to_owned());
    let text: String = q.q.trim().chars().take(254).collect();
    let page = q.page.parse::<i64>().unwrap_or(1).clamp(1, 100_000);
    let filter = ReaderFilter {
        status,
        source: source.clone(),
        q: (!text.is_empty()).then(|| text.clone()),
    };
    let (rows, total) = app.store.list_subscribers(&filter, page, PER_PAGE).await?;
    let url = |p: i64| {
        let query = serde_urlencoded::to_string([
            ("q", text.as_str()),
            ("status", status.map(|s| s.as_str()).unwrap_or_default()),
            ("source", source.as_deref().unwrap_or_default()),
            ("page", &p.to_string()),
        ])
        .unwrap_or_default();
        format!("/admin/readers?{query}")
    };
    c.insert("more", &(total > page * PER_PAGE));
    c.insert("prev_url", &url(page - 1));
    c.insert("next_url", &url(page + 1));
    c.insert("rows", &rows);
    c.insert("total", &total);
    c.insert("page", &page);
    c.insert("q", &text);
    c.insert("status", status.map(|s| s.as_str()).unwrap_or_default());
    c.insert("source", source.as_deref().unwrap_or_default());
    c.insert(
        "all_statuses",
        &SubscriberStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    );
    c.insert("all_sources", &view::SOURCES);
    Ok(render("readers.html", &c))
}

async fn reader(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let r = app
        .store
        .subscriber(id)
        .await?
        .ok_or(OpError::NotFound("reader"))?;
    let mut c = view::context(&app, &me, "قارئ", "readers", q.done.as_deref());
    // `embed:https://…/article`: the page the form was under.
    let source_url = r
        .source
        .split_once(':')
        .map(|(_, u)| u)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    c.insert("source_url", &source_url);
    c.insert("history", &app.store.consent_history(id).await?);
    // What the reader chose on their preferences page, by the names readers see:
    // «يومية: سياسة، ثقافة · أسبوعية: كل الأقسام».
    if let Some((_, choice)) = app.reader_choice(id).await? {
        let s = &app.settings;
        let taken: Vec<String> = s
            .schedules
            .iter()
            .filter(|x| app.takes_schedule(&choice, &x.name))
            .map(|x| {
                if s.sections.is_empty() {
                    return x.label.clone();
                }
                let list = choice.sections_in(&x.name).map(str::to_owned);
                let names = match &list {
                    None => "كل الأقسام".to_owned(),
                    Some(_) => s
                        .sections
                        .iter()
                        .filter(|c| App::chosen(&list, &c.slug))
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join("، "),
                };
                format!("{}: {names}", x.label)
            })
            .collect();
        c.insert("chosen", &taken.join(" · "));
    }
    let zone_city = r.timezone.as_deref().and_then(crate::domain::zone::city_of);
    c.insert("zone_city", &zone_city);
    c.insert("r", &r);
    Ok(render("reader.html", &c))
}

async fn unsubscribe(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
) -> Result<Response, PageError> {
    app.unsubscribe_reader(&me, id).await?;
    Ok(done(&format!("/admin/readers/{id}"), "unsubscribed"))
}

async fn erase_page(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
) -> Result<Response, PageError> {
    me.require(Role::Editor)?;
    let r = app
        .store
        .subscriber(id)
        .await?
        .ok_or(OpError::NotFound("reader"))?;
    let mut c = view::context(&app, &me, "محو بيانات قارئ", "readers", None);
    c.insert("r", &r);
    Ok(render("erase.html", &c))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Confirm {
    confirm: String,
}

async fn erase(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Form(form): Form<Confirm>,
) -> Result<Response, PageError> {
    if form.confirm != "yes" {
        return Ok(done(&format!("/admin/readers/{id}/erase"), "confirm"));
    }
    app.erase_reader(&me, id).await?;
    Ok(done("/admin/readers", "erased"))
}

async fn import_page(State(app): State<Arc<App>>, me: Me) -> Result<Response, PageError> {
    me.require(Role::Editor)?;
    let c = view::context(&app, &me, "استيراد قرّاء", "readers", None);
    Ok(render("import.html", &c))
}

#[derive(Serialize)]
struct RowView {
    line: u64,
    /// What the row said (the address or the name at fault), for the editor to find it.
    value: String,
    reason: String,
}

#[derive(Serialize)]
struct ReportView {
    added: u64,
    known: u64,
    rejected: u64,
    /// Readers added without the name their row gave.
    unnamed: u64,
    /// Readers added in the newsroom's time zone, theirs not being one.
    unzoned: u64,
    /// Rows turned away and names left out, in the file's order.
    errors: Vec<RowView>,
    /// Whether `errors` holds every such row.
    complete: bool,
}

async fn import(
    State(app): State<Arc<App>>,
    me: Me,
    mut form: Multipart,
) -> Result<Response, PageError> {
    me.require(Role::Editor)?;
    let (mut file, mut name, mut confirmed) = (None, String::new(), false);
    while let Some(field) = form.next_field().await.map_err(|_| PageError::Form)? {
        match field.name() {
            Some("file") => {
                name = field.file_name().unwrap_or_default().to_owned();
                file = Some(field.bytes().await.map_err(|_| PageError::Form)?);
            }
            Some("confirmed") => {
                confirmed = field.text().await.map_err(|_| PageError::Form)? == "yes";
            }
            _ => {}
        }
    }
    let file = file.ok_or(PageError::Form)?;
    let mut c = view::context(&app, &me, "استيراد قرّاء", "readers", None);
    let (report, failure) = match app
        .import_csv(&me, std::io::Cursor::new(file), confirmed, &name)
        .await
    {
        Ok(r) => {
            let stopped = r.stopped.clone().map(|why| {
                format!("توقّف الاستيراد عند خطأ في بنية الملف ({why})؛ أُضيفت الأسطر التي قبله.")
            });
            (Some(r), stopped)
        }
        Err(OpError::Refused(r @ Refusal::Csv(_))) => (None, Some(r.arabic())),
        Err(e) => return Err(e.into()),
    };
    if let Some(r) = report {
        let mut errors: Vec<RowView> = r
            .errors
            .iter()
            .map(|(line, why)| RowView {
                line: *line,
                value: why.value(),
                reason: why.arabic(),
            })
            .chain(r.names.iter().map(|(line, name)| RowView {
                line: *line,
                value: name.value(),
                reason: name.arabic(),
            }))
            .chain(r.zones.iter().map(|(line, zone)| RowView {
                line: *line,
                value: zone.value(),
                reason: zone.arabic(),
            }))
            .collect();
        errors.sort_by_key(|e| e.line);
        c.insert(
            "report",
            &ReportView {
                added: r.added,
                known: r.known,
                rejected: r.rejected,
                unnamed: r.unnamed,
                unzoned: r.unzoned,
                complete: errors.len() as u64 == r.rejected + r.unnamed + r.unzoned,
                errors,
            },
        );
    } else {
        c.insert(
            "report",
            &ReportView {
                added: 0,
                known: 0,
                rejected: 0,
                unnamed: 0,
                unzoned: 0,
                errors: vec![],
                complete: true,
            },
        );
    }
    c.insert("failure", &failure);
    Ok(render("import.html", &c))
}

async fn export(State(app): State<Arc<App>>, me: Me) -> Result<Response, PageError> {
    let stream = app.export_csv(&me).await?;
    let name = format!(
        "readers-{}.csv",
        chrono::Utc::now()
            .with_timezone(&app.settings.newsroom_tz())
            .format("%Y-%m-%d")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
