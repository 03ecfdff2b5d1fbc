//! «المقالات»: the next digests' desk. For each schedule, what its next digest will carry and
//! how: its subject, «كلمة التحرير», the lead story, the order (up and down buttons that work
//! without script), the articles taken out, and a subject test. The twin of
//! `GET/PUT /api/schedules/{name}/next`.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, Query, State},
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;

use super::{
    dashboard::Done,
    extract::{Form, Id},
    respond::{PageError, done},
    session::Me,
    view::{self, render},
};
use crate::{
    app::{App, DeskChange, OpError, SubjectTestIn},
    store::Role,
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/articles", get(articles))
        .route("/articles/desk", post(save))
        .route("/articles/{id}/{action}", post(article_action))
}

async fn articles(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let mut c = view::context(&app, &me, "المقالات", "articles", q.done.as_deref());
    let mut list = Vec::new();
    for s in &app.settings.schedules {
        list.push(app.next_digest_view(&me, &s.name).await?);
    }
    c.insert("schedules", &list);
    Ok(render("articles.html", &c))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeskForm {
    schedule: String,
    subject: String,
    note: String,
    /// An article id, or empty for none.
    lead: String,
    /// One subject per line; empty: no test.
    test_subjects: String,
    test_percent: String,
    test_wait: String,
    /// "clear": back to the schedule's defaults.
    clear: String,
}

/// Saves the desk form: subject, note, lead and subject test as the editor left them.
async fn save(
    State(app): State<Arc<App>>,
    me: Me,
    body: Result<Form<DeskForm>, PageError>,
) -> Result<Response, PageError> {
    me.require(Role::Editor)?;
    let Form(f) = body?;
    let change = if f.clear == "clear" {
        DeskChange {
            subject: Some(None),
            note_html: Some(None),
            lead: Some(None),
            order: Some(None),
            subject_test: Some(None),
            excluded: None,
        }
    } else {
        let subjects: Vec<String> = f
            .test_subjects
            .lines()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let test = (!subjects.is_empty()).then(|| SubjectTestIn {
            subjects,
            sample_percent: f.test_percent.trim().parse().ok(),
            min_sample: None,
            wait: Some(format!(
                "{}m",
                f.test_wait.trim().parse::<u32>().unwrap_or(60)
            )),
        });
        DeskChange {
            subject: Some(Some(f.subject)),
            note_html: Some(Some(f.note)),
            lead: Some(f.lead.trim().parse().ok()),
            order: None,
            subject_test: Some(test),
            excluded: None,
        }
    };
    app.shape_next_digest(&me, &f.schedule, change).await?;
    let key = if f.clear == "clear" {
        "desk_cleared"
    } else {
        "desk_saved"
    };
    Ok(done("/admin/articles", key))
}

#[derive(Deserialize)]
struct Action {
    action: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScheduleForm {
    schedule: String,
}

/// Takes an article out of the next digest or puts it back, or moves it up or down.
async fn article_action(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Path(Action { action }): Path<Action>,
    Form(form): Form<ScheduleForm>,
) -> Result<Response, PageError> {
    let key = match action.as_str() {
        "exclude" | "include" => {
            let exclude = action == "exclude";
            app.exclude_article(&me, &form.schedule, id, exclude)
                .await?;
            if exclude { "excluded" } else { "included" }
        }
        "up" | "down" => {
            let mut order = app.next_digest_view(&me, &form.schedule).await?.order;
            if let Some(i) = order.iter().position(|a| *a == id) {
                let j = if action == "up" {
                    i.checked_sub(1)
                } else {
                    Some(i + 1)
                };
                if let Some(j) = j.filter(|j| *j < order.len()) {
                    order.swap(i, j);
                }
            }
            let change = DeskChange {
                order: Some(Some(order)),
                ..DeskChange::default()
            };
            app.shape_next_digest(&me, &form.schedule, change).await?;
            "moved"
        }
        _ => return Err(OpError::NotFound("action").into()),
    };
    Ok(done("/admin/articles", key))
}
