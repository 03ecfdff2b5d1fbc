//! Sends: the list, one send's live progress (its page polls `progress` once a second),
//! pause / resume / cancel, the failed recipients with the server's reply, «retry failed»,
//! a local-hour send's waves, an alert's article, and starting a send from the preview.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{
    alerts,
    extract::{Form, Id},
    respond::{PageError, done},
    session::Me,
    view::{self, render},
};
use crate::{
    app::{App, OpError, Refusal, SendControl, WaveView},
    config::Digits,
    render::{HOUR, MINUTE, count_ar},
    store::{ALERT_SCHEDULE, DigestKind, DigestOutcome, DigestStatus, GuardStop, Progress, now_ms},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/sends", get(list).post(start))
        .route("/sends/{id}", get(send))
        .route("/sends/{id}/progress", get(progress))
        .route("/sends/{id}/failures", get(failures))
        .route("/sends/{id}/{action}", post(control))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    before: String,
    done: Option<String>,
}

const PER_PAGE: i64 = 50;

async fn list(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let mut c = view::context(&app, &me, "الإرسال", "sends", q.done.as_deref());
    let sends = app.store.sends(q.before.parse().ok(), PER_PAGE).await?;
    let older = (sends.len() as i64 == PER_PAGE)
        .then(|| sends.last().map(|s| s.id))
        .flatten();
    // Sends that paused themselves, and why.
    let guard_notes: Vec<serde_json::Value> = sends
        .iter()
        .filter_map(|s| {
            let text = guard_text(s.status, &s.guard, app.settings.newsletter.digits)?;
            Some(serde_json::json!({"id": s.id, "text": text}))
        })
        .collect();
    c.insert("guard_notes", &guard_notes);
    c.insert("sends", &sends);
    c.insert("older", &older);
    super::planned::insert_plans(&app, &me, &mut c).await?;
    Ok(render("sends.html", &c))
}

/// A send's progress as its page shows it: numbers written as the newsroom writes them.
#[derive(Serialize)]
struct ProgressView {
    status: DigestStatus,
    status_label: &'static str,
    percent: i64,
    /// How many failed: the page fetches its failures table again when this changes.
    failed: i64,
    sent_text: String,
    total_text: String,
    failed_text: String,
    pending_text: String,
    rate_text: String,
    eta_text: String,
    error: Option<String>,
    /// Why the send paused itself, while it stands paused by the guard (in Arabic).
    guard_text: Option<String>,
}

fn progress_view(app: &App, p: &Progress) -> ProgressView {
    let d: Digits = app.settings.newsletter.digits;
    let n = |x: i64| view::number(x, d);
    let done = p.total - p.pending;
    let percent = if p.total > 0 {
        done * 100 / p.total
    } else {
        100
    };
    let now = now_ms();
    let rate = p.started_at.map(|s| {
        let secs = ((p.finished_at.unwrap_or(now) - s) as f64 / 1000.0).max(0.001);
        p.sent as f64 / secs
    });
    let rate_text = match rate {
        Some(r) if r > 0.0 => format!("{} رسالة في الثانية", view::digits(&format!("{:.1}", r), d)),
        _ => "—".into(),
    };
    let eta_text = match (p.status, rate) {
        (DigestStatus::Done, _) => "انتهى".into(),
        (DigestStatus::Sending, Some(r)) if r > 0.0 && p.pending > 0 => {
            let secs = (p.pending as f64 / r).ceil() as u64;
            let at = chrono::Utc::now() + chrono::Duration::seconds(secs as i64);
            let local = at.with_timezone(&app.settings.newsroom_tz());
            let left = if secs >= 5400 {
                count_ar(secs.div_ceil(3600), &HOUR)
            } else {
                count_ar(secs.div_ceil(60).max(1), &MINUTE)
            };
            view::digits(
                &format!("نحو الساعة {} (بعد {left})", local.format("%H:%M")),
                d,
            )
        }
        _ => "—".into(),
    };
    let guard_text = guard_text(p.status, &p.guard, d);
    ProgressView {
        status: p.status,
        status_label: view::send_status_label(p.status),
        failed: p.failed,
        percent,
        sent_text: n(p.sent),
        total_text: n(p.total),
        failed_text: n(p.failed),
        pending_text: n(p.pending),
        rate_text,
        eta_text,
        error: guard_text.is_none().then(|| p.error.clone()).flatten(),
        guard_text,
    }
}

/// Why a send paused itself, as the console says it, while it stands paused.
fn guard_text(status: DigestStatus, stop: &GuardStop, d: Digits) -> Option<String> {
    (status == DigestStatus::Paused)
        .then(|| stop.arabic())
        .flatten()
        .map(|t| view::digits(&t, d))
}

#[derive(Deserialize)]
struct Action {
    action: String,
}

async fn send(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let s = app
        .store
        .sends(Some(id + 1), 1)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(OpError::NotFound("send"))?;
    let digest = app
        .store
        .digest(id)
        .await?
        .ok_or(OpError::NotFound("send"))?;
    let p = app
        .store
        .progress(id)
        .await?
        .ok_or(OpError::NotFound("send"))?;
    let mut c = view::context(&app, &me, &s.subject, "sends", q.done.as_deref());
    let archive_url = match digest.kind {
        DigestKind::Test => None,
        _ => Some(app.settings.public_url(&format!("/archive/{id}"))),
    };
    c.insert("archive_url", &archive_url);
    c.insert("created_by", &s.created_by);
    c.insert("plan", &app.store.plan(id).await?);
    #[derive(Serialize)]
    struct SendView<'a> {
        id: i64,
        subject: &'a str,
        schedule: &'a str,
        kind: DigestKind,
        created_at: i64,
        test_to: Option<&'a str>,
    }
    c.insert(
        "s",
        &SendView {
            id,
            subject: &s.subject,
            schedule: &s.schedule,
            kind: s.kind,
            created_at: s.created_at,
            test_to: digest.test_to.as_deref(),
        },
    );
    c.insert("p", &progress_view(&app, &p));
    c.insert("provider_waits", &provider_waits(&app, p.status).await?);
    let now = now_ms();
    let waves: Vec<WaveRow> = app
        .send_waves(id)
        .await?
        .into_iter()
        .map(|w| wave_row(w, now))
        .collect();
    // While a wave waits for its hour, the send ends with the last one, whatever the rate.
    let last_wave = waves
        .iter()
        .any(|w| w.waiting)
        .then(|| waves.iter().filter_map(|w| w.at).max())
        .flatten();
    c.insert("waves", &waves);
    c.insert("last_wave", &last_wave);
    let alert = if s.schedule == ALERT_SCHEDULE {
        alerts::of_send(&app, id).await?
    } else {
        None
    };
    c.insert("alert", &alert);
    c.insert("failures", &app.store.failures(id, 500).await?);
    c.insert("click_counts", &app.settings.newsletter.click_counts);
    c.insert("clicks", &app.store.digest_clicks(id).await?);
    c.insert("test", &subject_test_view(&app, id).await?);
    c.insert("report", &super::report::view(&app, id, p.status).await?);
    c.insert("routing", &app.send_routing(id, !p.status.is_open()).await?);
    c.insert("warmup_on", &app.settings.delivery.warmup.enabled());
    Ok(render("send.html", &c))
}

/// Mailbox providers whose readers wait, for the page of a send still under way.
async fn provider_waits(app: &App, status: DigestStatus) -> anyhow::Result<Vec<serde_json::Value>> {
    if !(status.is_open() || status == DigestStatus::Paused) {
        return Ok(vec![]);
    }
    let d = app.settings.newsletter.digits;
    Ok(app
        .provider_waits()
        .await?
        .into_iter()
        .map(|w| {
            serde_json::json!({
                "provider": w.provider.as_str(),
                "name": w.provider.arabic(),
                "services": w.provider.services(),
                "until": w.until_ms,
                "deferred": view::number(w.deferred, d),
                "judged": view::number(w.judged, d),
            })
        })
        .collect())
}

/// A wave of a local-hour send as its page shows it.
#[derive(Serialize)]
struct WaveRow {
    /// The IANA name; `city` is how the newsroom says it, when we know it.
    zone: String,
    city: Option<&'static str>,
    /// The slot's hour there («07:00»).
    local_time: String,
    /// When that is in the newsroom's time (ms).
    at: Option<i64>,
    readers: i64,
    sent: i64,
    /// Its hour has not come yet.
    waiting: bool,
}

fn wave_row(w: WaveView, now: i64) -> WaveRow {
    let at = chrono::DateTime::parse_from_rfc3339(&w.at)
        .ok()
        .map(|t| t.timestamp_millis());
    WaveRow {
        city: crate::domain::city_of(&w.timezone),
        waiting: at.is_some_and(|at| at > now) && w.sent < w.readers,
        zone: w.timezone,
        local_time: w.local_time,
        at,
        readers: w.readers,
        sent: w.sent,
    }
}

async fn progress(State(app): State<Arc<App>>, _me: Me, Id(id): Id) -> Result<Response, PageError> {
    let p = app
        .store
        .progress(id)
        .await?
        .ok_or(OpError::NotFound("send"))?;
    Ok(Json(progress_view(&app, &p)).into_response())
}

/// The failures table alone, for a send's page to refresh when the count changes.
async fn failures(State(app): State<Arc<App>>, me: Me, Id(id): Id) -> Result<Response, PageError> {
    app.store
        .progress(id)
        .await?
        .ok_or(OpError::NotFound("send"))?;
    let mut c = view::context(&app, &me, "", "sends", None);
    c.insert("s", &serde_json::json!({ "id": id }));
    c.insert("failures", &app.store.failures(id, 500).await?);
    Ok(render("send_failures.html", &c))
}

async fn control(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Path(Action { action }): Path<Action>,
) -> Result<Response, PageError> {
    let (c, key) = match action.as_str() {
        "pause" => (SendControl::Pause, "paused"),
        "resume" => (SendControl::Resume, "resumed"),
        "cancel" => (SendControl::Cancel, "cancelled"),
        "retry" => (SendControl::Retry, "retried"),
        _ => return Err(OpError::NotFound("action").into()),
    };
    let (_, requeued) = app.control(&me, id, c).await?;
    let key = if c == SendControl::Retry && requeued == 0 {
        "nothing_to_retry"
    } else {
        key
    };
    Ok(done(&format!("/admin/sends/{id}"), key))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StartForm {
    schedule: String,
    confirm: String,
}

/// Starts a send to every confirmed reader: the form must say so (a checkbox), so a stray
/// click does not mail a million people.
async fn start(
    State(app): State<Arc<App>>,
    me: Me,
    Form(form): Form<StartForm>,
) -> Result<Response, PageError> {
    if form.confirm != "yes" {
        return Err(OpError::Refused(Refusal::NotConfirmed).into());
    }
    match app.start_send(&me, Some(&form.schedule), &[]).await? {
        DigestOutcome::Created { id, .. } | DigestOutcome::Exists(id) => {
            Ok(Redirect::to(&format!("/admin/sends/{id}")).into_response())
        }
        DigestOutcome::NothingNew | DigestOutcome::Stale | DigestOutcome::Paused => {
            Ok(done("/admin/sends", "nothing_new"))
        }
    }
}

/// A send's subject test for its page: each subject's sample, sent, clickers and rate, and
/// the winner with why, in Arabic.
async fn subject_test_view(app: &App, id: i64) -> anyhow::Result<Option<serde_json::Value>> {
    let Some(t) = app.subject_test_results(id).await? else {
        return Ok(None);
    };
    let rows: Vec<serde_json::Value> = t
        .subjects
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let rate = if s.sent > 0 {
                format!("{:.1}٪", s.clicked as f64 * 100.0 / s.sent as f64)
            } else {
                "—".into()
            };
            serde_json::json!({"subject": s.subject, "readers": s.readers.to_string(), "sent": s.sent.to_string(),
                               "clicked": s.clicked.to_string(), "rate": rate, "won": t.winner == Some(i as i64)})
        })
        .collect();
    let why = match t.note.as_deref() {
        None => "لم يُختر الفائز بعد: باقي القرّاء ينتظرون نهاية الاختبار.",
        Some("significant") => {
            "فاز بأكثر القرّاء نقراً، والفرق ذو دلالة إحصائية (اختبار النسبتين، ٩٥٪)."
        }
        Some("not_significant") => {
            "فاز بأكثر القرّاء نقراً، لكن الفرق ليس ذا دلالة إحصائية (اختبار النسبتين، ٩٥٪): قد تكون الصدفة."
        }
        Some("tie") => "تعادل العنوانان الأولان في عدد من نقروا، ففاز الأسبق في القائمة.",
        Some("no_clicks") => "لم ينقر أحد من العيّنات، ففاز العنوان الأول.",
        Some(_) => "الجمهور أصغر من أن يُختبر عليه: وصل الجميعَ العنوانُ الأول.",
    };
    Ok(Some(
        serde_json::json!({"rows": rows, "decide_at": t.decide_at,
                               "decided": t.winner.is_some(), "why": why}),
    ))
}
