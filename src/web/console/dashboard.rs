//! The dashboard: readers by status, sign-ups and departures a day, the last sends, the next
//! digests.

use std::{collections::BTreeMap, fmt::Write, sync::Arc};

use axum::{
    Router,
    extract::{Query, State},
    response::Response,
    routing::get,
};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{
    respond::PageError,
    session::Me,
    view::{self, render},
};
use crate::{
    app::App,
    store::{AlertStatus, now_ms},
};

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/", get(dashboard))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Done {
    pub done: Option<String>,
}

const DAYS: i64 = 30;
/// The latest alerts, among which the dashboard counts those waiting for a decision.
const ALERTS_LOOKED_AT: i64 = 50;
/// Consent events are counted per quarter hour, then folded into the newsroom's days (every
/// time zone's offset is a whole number of quarter hours).
const BUCKET_MS: i64 = 15 * 60 * 1000;

#[derive(Serialize)]
struct StatusCount {
    status: &'static str,
    count: i64,
}

#[derive(Serialize)]
pub struct ScheduleView {
    pub name: String,
    pub next: Option<i64>,
    pub waiting: usize,
    pub paused: bool,
}

/// Each schedule's next fire, whether it is paused, and how many articles wait for it.
pub async fn schedule_views(app: &App) -> anyhow::Result<Vec<ScheduleView>> {
    let states = app.store.schedule_states().await?;
    let mut out = Vec::new();
    for s in &app.settings.schedules {
        let state = states.iter().find(|st| st.name == s.name);
        let waiting = app.preview_articles(s).await?.len();
        out.push(ScheduleView {
            name: s.name.clone(),
            next: s.cron.next_after(Utc::now()).map(|t| t.timestamp_millis()),
            waiting,
            paused: state.is_some_and(|st| st.paused != 0),
        });
    }
    Ok(out)
}

async fn dashboard(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let mut c = view::context(&app, &me, "نظرة عامة", "dashboard", q.done.as_deref());
    let statuses: Vec<StatusCount> = app
        .store
        .status_counts()
        .await?
        .into_iter()
        .map(|(s, n)| StatusCount {
            status: s.as_str(),
            count: n,
        })
        .collect();
    c.insert("statuses", &statuses);

    // Days in the newsroom's time zone, oldest first, today last.
    let tz = app.settings.newsroom_tz();
    let today = Utc::now().with_timezone(&tz).date_naive();
    let first = today - chrono::Days::new((DAYS - 1) as u64);
    let day_start = |d: chrono::NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    };
    let since = day_start(first);
    let mut per_day: BTreeMap<chrono::NaiveDate, (i64, i64)> = (0..DAYS)
        .map(|i| (first + chrono::Days::new(i as u64), (0, 0)))
        .collect();
    for (bucket, event, n) in app.store.consent_counts(since, BUCKET_MS).await? {
        let Some(t) = Utc.timestamp_millis_opt(bucket).single() else {
            continue;
        };
        if let Some(day) = per_day.get_mut(&t.with_timezone(&tz).date_naive()) {
            match event.as_str() {
                "signup" => day.0 += n,
                "unsubscribe" | "bounce" => day.1 += n,
                _ => {}
            }
        }
    }
    let days: Vec<(i64, i64)> = per_day.values().copied().collect();
    c.insert("days", &DAYS);
    c.insert("signups_total", &days.iter().map(|d| d.0).sum::<i64>());
    c.insert("departures_total", &days.iter().map(|d| d.1).sum::<i64>());
    c.insert("chart", &chart(&days));
    // Right to left: the oldest day is drawn on the right, as its label is.
    c.insert("first_day", &since);
    c.insert("last_day", &now_ms());
    c.insert("sends", &app.store.sends(None, 8).await?);
    // Breaking news waiting for «أرسل» is the first thing an editor should see.
    let waiting = app
        .store
        .alerts(ALERTS_LOOKED_AT)
        .await?
        .iter()
        .filter(|a| a.status == AlertStatus::Waiting)
        .count();
    c.insert("alerts_waiting", &waiting);
    c.insert("schedules", &schedule_views(&app).await?);
    if let Some(relays) = app.mailer.transport.relays() {
        c.insert("relays", &relays.statuses());
    }
    Ok(render("dashboard.html", &c))
}

/// Two bars a day (sign-ups, departures), drawn right to left, as an SVG with a text
/// equivalent for screen readers. Only numbers go into it.
fn chart(days: &[(i64, i64)]) -> String {
    let (w, h) = (600.0, 150.0);
    let max = days.iter().map(|d| d.0.max(d.1)).max().unwrap_or(0).max(1) as f64;
    let slot = w / days.len().max(1) as f64;
    let bar = (slot / 2.0 - 1.0).max(1.0);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"اشتراكات ومغادرات كل يوم\">"
    );
    for (i, (ins, outs)) in days.iter().enumerate() {
        // Day i from the right edge.
        let x = w - (i as f64 + 1.0) * slot;
        for (k, (n, class)) in [(*ins, "in"), (*outs, "out")].into_iter().enumerate() {
            let bh = if n > 0 {
                (n as f64 / max * (h - 4.0)).max(2.0)
            } else {
                0.0
            };
            let bx = x + slot / 2.0 - (k as f64) * (bar + 1.0);
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\"><title>{n}</title></rect>",
                h - bh
            );
        }
    }
    svg.push_str("</svg>");
    svg
}
