//! Sends for later in the console: «أرسل في…» on the preview page plans one (a date and time
//! in the newsroom's zone, or that time in each reader's own), and the sends list shows those
//! waiting with their time, a form to move one or change its subject, and «ألغِ». Cancelling
//! is the sends' own `/admin/sends/{id}/cancel`. The API's twins are in `web::admin_later`.

use std::sync::Arc;

use axum::{Router, extract::State, response::Response, routing::post};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::{
    extract::{Form, Id},
    respond::{PageError, done},
    session::Me,
};
use crate::{
    app::{App, OpError, PlanRefusal, Refusal},
    store::Plan,
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/planned", post(plan))
        .route("/planned/{id}", post(edit))
}

/// What a `datetime-local` input sends (and shows).
const INPUT: &str = "%Y-%m-%dT%H:%M";

#[derive(Deserialize, Default)]
#[serde(default)]
struct PlanForm {
    schedule: String,
    at: String,
    subject: String,
    /// `yes`: each reader at this time in their own zone.
    local: String,
    /// `yes`: the editor ticked «نعم، أرسل…» (a send to every reader needs it).
    confirm: String,
}

/// «أرسل في…»: plans the send, then shows it in the sends list.
async fn plan(
    State(app): State<Arc<App>>,
    me: Me,
    Form(form): Form<PlanForm>,
) -> Result<Response, PageError> {
    if form.confirm != "yes" {
        return Err(OpError::Refused(Refusal::NotConfirmed).into());
    }
    let at = app.newsroom_instant(read_input(&form.at)?)?;
    let subject = (!form.subject.trim().is_empty()).then_some(form.subject.as_str());
    app.plan_send(&me, Some(&form.schedule), at, subject, form.local == "yes")
        .await?;
    Ok(done("/admin/sends", "planned"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EditForm {
    at: String,
    subject: String,
}

/// Moves a waiting send or changes its subject (empty: the schedule's).
async fn edit(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Form(form): Form<EditForm>,
) -> Result<Response, PageError> {
    let plan = app.plan_or_404(id).await?;
    // The time as the form showed it is not a move: a send due this minute keeps it while
    // its subject changes.
    let at = if form.at == at_input(&app, &plan) {
        None
    } else {
        Some(app.newsroom_instant(read_input(&form.at)?)?)
    };
    app.edit_plan(&me, id, at, Some(&form.subject)).await?;
    Ok(done("/admin/sends", "plan_changed"))
}

fn read_input(s: &str) -> Result<NaiveDateTime, PageError> {
    NaiveDateTime::parse_from_str(s, INPUT)
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| PageError::Form)
}

impl From<PlanRefusal> for PageError {
    fn from(r: PlanRefusal) -> PageError {
        PageError::Op(r.into())
    }
}

/// A waiting send as the sends list shows it.
#[derive(Serialize)]
struct PlanRow {
    id: i64,
    schedule: String,
    subject: String,
    starts_at: i64,
    /// «07:00» for a send at each reader's own time.
    local_clock: Option<String>,
    /// The time the edit form shows, in the newsroom's zone.
    at_input: String,
    planned_subject: String,
    created_by: Option<String>,
}

/// The time a waiting send's edit form shows: the wall-clock time asked for, in the
/// newsroom's zone.
fn at_input(app: &App, p: &Plan) -> String {
    match &p.local_time {
        Some(clock) => clock.get(..16).unwrap_or(clock).to_owned(),
        None => Utc
            .timestamp_millis_opt(p.starts_at)
            .single()
            .map(|t| {
                t.with_timezone(&app.settings.newsroom_tz())
                    .format(INPUT)
                    .to_string()
            })
            .unwrap_or_default(),
    }
}

/// The sends list's «مجدولة لوقت لاحق»: `plans` in its context.
pub async fn insert_plans(app: &App, me: &Me, c: &mut Context) -> Result<(), PageError> {
    let rows: Vec<PlanRow> = app
        .waiting_plans(me)
        .await?
        .into_iter()
        .map(|p| PlanRow {
            at_input: at_input(app, &p),
            local_clock: p
                .local_time
                .as_deref()
                .and_then(|c| c.get(11..16))
                .map(str::to_owned),
            id: p.id,
            schedule: p.schedule,
            subject: p.subject,
            starts_at: p.starts_at,
            planned_subject: p.planned_subject.unwrap_or_default(),
            created_by: p.created_by,
        })
        .collect();
    c.insert("plans", &rows);
    Ok(())
}
