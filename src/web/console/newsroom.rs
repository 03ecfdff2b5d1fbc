//! What the next digests hold: the articles (and taking one out), the schedules (and
//! pausing one), the preview at two widths with its size and text part, and test sends.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, Query, State},
    response::Response,
    routing::{get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{
    dashboard::Done,
    extract::Form,
    respond::{PageError, done},
    session::Me,
    view::{self, render},
};
use crate::{
    app::{App, OpError, Refusal},
    domain::SubscriberEmail,
    store::{DigestOutcome, Role, SubscriberStatus},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/schedules", get(schedules))
        .route("/schedules/{name}/{action}", post(pause))
        .route("/preview", get(preview))
        .route("/preview/test", post(test_send))
}

/// Gmail shows only the first ~102 KB of a message's HTML, hiding the rest (and the
/// unsubscribe link with it) behind «View entire message».
const GMAIL_CLIP: usize = 102 * 1024;
const NEAR_CLIP: usize = 90 * 1024;

#[derive(Serialize)]
struct ScheduleView {
    name: String,
    label: String,
    /// «كل يوم ٧:٠٠ صباحاً بتوقيت بغداد».
    when: String,
    cron: String,
    timezone: String,
    next: Vec<i64>,
    last: Option<i64>,
    paused: bool,
    waiting: usize,
    max_articles: u32,
}

async fn schedules(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let mut c = view::context(&app, &me, "الجداول", "schedules", q.done.as_deref());
    let states = app.store.schedule_states().await?;
    let mut list = Vec::new();
    for s in &app.settings.schedules {
        let state = states.iter().find(|st| st.name == s.name);
        let mut next = Vec::new();
        let mut at = Utc::now();
        while next.len() < 3 {
            let Some(n) = s.cron.next_after(at) else {
                break;
            };
            next.push(n.timestamp_millis());
            at = n;
        }
        list.push(ScheduleView {
            name: s.name.clone(),
            label: s.label.clone(),
            when: crate::render::cron_in_words_of(&s.cron, app.settings.newsletter.digits),
            cron: s.cron.expression().to_owned(),
            timezone: s.cron.timezone().name().to_owned(),
            next,
            last: state.map(|st| st.last_slot),
            paused: state.is_some_and(|st| st.paused != 0),
            waiting: app.preview_articles(s).await?.len(),
            max_articles: s.max_articles,
        });
    }
    c.insert("schedules", &list);
    Ok(render("schedules.html", &c))
}

async fn pause(
    State(app): State<Arc<App>>,
    me: Me,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return Err(OpError::NotFound("action").into()),
    };
    app.pause_schedule(&me, &name, paused).await?;
    let key = if paused {
        "schedule_paused"
    } else {
        "schedule_resumed"
    };
    Ok(done("/admin/schedules", key))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PreviewQuery {
    schedule: String,
    done: Option<String>,
}

#[derive(Serialize)]
struct DigestView {
    subject: String,
    html: String,
    text: String,
    articles: usize,
    kb: i64,
    size_level: &'static str,
}

async fn preview(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, PageError> {
    me.require(Role::Editor)?;
    let name = (!q.schedule.is_empty()).then_some(q.schedule.as_str());
    let schedule = app
        .settings
        .schedule(name)
        .map_err(|_| Refusal::UnknownSchedule(q.schedule.clone()))?;
    let mut c = view::context(&app, &me, "المعاينة", "preview", q.done.as_deref());
    let articles = app.preview_articles(schedule).await?.len();
    let digest = app.preview(schedule).await?.map(|d| {
        let size = d.html.len();
        DigestView {
            subject: d.subject,
            kb: size.div_ceil(1024) as i64,
            size_level: if size > GMAIL_CLIP {
                "over"
            } else if size > NEAR_CLIP {
                "near"
            } else {
                "ok"
            },
            html: d.html,
            text: d.text,
            articles,
        }
    });
    c.insert("digest", &digest);
    c.insert("schedule", &schedule.name);
    c.insert(
        "schedules",
        &app.settings
            .schedules
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
    );
    c.insert(
        "confirmed",
        &app.store
            .count_subscribers(SubscriberStatus::Confirmed)
            .await?,
    );
    if digest.is_some() {
        c.insert("audience", &app.send_audience(schedule).await?);
    }
    let mut r = render("preview.html", &c);
    // The digest is shown in frames of this page (srcdoc, sandboxed): they may be framed
    // by it, and only by it.
    r.headers_mut().insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' https: data:; connect-src 'self'; form-action 'self'; \
             frame-src 'self' about:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    Ok(r)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TestForm {
    schedule: String,
    to: String,
}

/// Up to ten addresses, one per line (or separated by commas or spaces).
fn test_addresses(to: &str) -> Result<Vec<SubscriberEmail>, Refusal> {
    let list: Vec<&str> = to
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    if list.is_empty() || list.len() > 10 {
        return Err(Refusal::TestAddresses);
    }
    list.iter()
        .map(|a| SubscriberEmail::parse(a).map_err(|e| Refusal::BadAddress(e.to_string())))
        .collect()
}

async fn test_send(
    State(app): State<Arc<App>>,
    me: Me,
    body: Result<Form<TestForm>, PageError>,
) -> Result<Response, PageError> {
    me.require(Role::Editor)?;
    let Form(form) = body?;
    let to = test_addresses(&form.to)?;
    // One test send to every address: one row in the sends list.
    let sent = matches!(
        app.start_send(&me, Some(&form.schedule), &to).await?,
        DigestOutcome::Created { .. }
    );
    let query =
        serde_urlencoded::to_string([("schedule", form.schedule.as_str())]).unwrap_or_default();
    let key = if sent { "tested" } else { "nothing_new" };
    Ok(done(&format!("/admin/preview?{query}"), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_addresses_one_to_ten() {
        assert_eq!(
            test_addresses("a@example.org\nb@example.org, c@example.org")
                .unwrap()
                .len(),
            3
        );
        assert_eq!(test_addresses(""), Err(Refusal::TestAddresses));
        let eleven = (0..11)
            .map(|i| format!("r{i}@example.org\n"))
            .collect::<String>();
        assert_eq!(test_addresses(&eleven), Err(Refusal::TestAddresses));
        assert!(matches!(
            test_addresses("a@example.org\nnot-an-address"),
            Err(Refusal::BadAddress(_))
        ));
    }
}
