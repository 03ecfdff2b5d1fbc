//! «عاجل»: breaking-news alerts as the newsroom decides them. An urgent article waits here
//! with whom it would reach now; «أرسل» starts it when the undo window ends, and until then
//! the page counts down beside «تراجع» (the script counts the seconds; without it a reload
//! shows the same state). Sent alerts link to their send's page.
//!
//! The operations (roles, the audit log, what state allows what) are the application's:
//! `App::send_alert` and `App::cancel_alert`, as for the API's twins.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Path, Query, State},
    response::Response,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{
    dashboard::Done,
    extract::Id,
    respond::{PageError, done},
    session::Me,
    view::{self, render},
};
use crate::{
    app::{AlertPlan, AlertView, App, OpError},
    config::Digits,
    render::{MINUTE, Noun, READER_AFTER, SECOND, count_ar_as},
    store::{Alert, AlertStatus, now_ms},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/alerts", get(list))
        .route("/alerts/{id}/{action}", post(decide))
}

/// Beyond this the countdown is in minutes.
const SECONDS_SHOWN: i64 = 120;
/// An approved alert past its start for less than this is about to start (the scheduler
/// wakes at `send_at`): the page looks again in a moment. Longer, something holds it, and the
/// page stops asking.
const STARTING_GRACE_MS: i64 = 60_000;

/// One alert as the page shows it.
#[derive(Serialize)]
struct AlertRow {
    id: i64,
    title: String,
    url: String,
    status: AlertStatus,
    /// The badge's class (the console's send colours).
    badge: &'static str,
    /// «بانتظار القرار», «يُرسل بعد ٤٢ ثانية», «أُرسل», «أُلغي».
    status_text: String,
    /// In the undo window: the time left («٤٢ ثانية») and its seconds, which the script
    /// counts down.
    left_text: Option<String>,
    countdown: Option<i64>,
    /// Past its start and not yet started: the page looks again in a moment.
    starting: bool,
    created_at: i64,
    decided_at: Option<i64>,
    /// Who decided: an account, or «تلقائياً» (`alerts.approval = "auto"`).
    decided_by: Option<String>,
    auto: bool,
    digest_id: Option<i64>,
    /// While it can still be sent or taken back.
    open: bool,
    reach: Option<Reach>,
}

/// Whom an open alert reaches, in sentences.
#[derive(Serialize)]
struct Reach {
    now: String,
    later: String,
    over_budget: String,
    held: String,
}

fn reach(p: &AlertPlan, d: Digits) -> Reach {
    let n = |x: usize| view::number(x as i64, d);
    Reach {
        now: if p.now == 0 {
            "لا يصل الآن إلى أي قارئ".into()
        } else {
            format!("يصل الآن إلى {}", count(p.now as i64, &READER_AFTER, d))
        },
        later: format!("بعد ساعات الهدوء: {}", n(p.later)),
        over_budget: format!("تجاوزوا حدّهم اليومي: {}", n(p.over_budget)),
        held: format!("ينتظرون النشرة: {}", n(p.held)),
    }
}

fn count(n: i64, noun: &Noun, d: Digits) -> String {
    count_ar_as(n.max(0) as u64, noun, &view::number(n, d))
}

/// «٤٢ ثانية», «3 دقائق»: how long until an alert starts.
fn time_left(secs: i64, d: Digits) -> String {
    if secs > SECONDS_SHOWN {
        count((secs + 59) / 60, &MINUTE, d)
    } else {
        count(secs, &SECOND, d)
    }
}

/// A noun's forms for the script's countdown, in `render::plural`'s order (one, two, few,
/// many, hundreds), so the words are written once.
fn forms(n: &Noun) -> String {
    [n.one, n.two, n.few, n.many, n.singular].join("|")
}

fn row(v: AlertView, now: i64, d: Digits) -> AlertRow {
    let AlertView { alert, reach: r } = v;
    let Alert {
        id,
        title,
        url,
        status,
        created_at,
        decided_at,
        decided_by,
        send_at,
        digest_id,
        ..
    } = alert;
    let left_ms = send_at.map_or(0, |at| at - now);
    let secs = (left_ms + 999) / 1000;
    let in_undo = status == AlertStatus::Approved && left_ms > 0;
    let left_text = in_undo.then(|| time_left(secs, d));
    let (badge, status_text) = match status {
        AlertStatus::Waiting => ("paused", "بانتظار القرار".to_owned()),
        AlertStatus::Approved => match &left_text {
            Some(left) => ("queued", format!("يُرسل بعد {left}")),
            None => ("sending", "يبدأ إرساله الآن".to_owned()),
        },
        AlertStatus::Sent => ("done", "أُرسل".to_owned()),
        AlertStatus::Cancelled => ("cancelled", "أُلغي".to_owned()),
    };
    let auto = decided_by.as_deref() == Some("auto");
    AlertRow {
        id,
        title,
        url,
        status,
        badge,
        status_text,
        countdown: in_undo.then_some(secs),
        left_text,
        starting: status == AlertStatus::Approved && !in_undo && left_ms > -STARTING_GRACE_MS,
        created_at,
        decided_at,
        decided_by: decided_by.filter(|_| !auto),
        auto,
        digest_id,
        open: matches!(status, AlertStatus::Waiting | AlertStatus::Approved),
        reach: r.map(|p| reach(&p, d)),
    }
}

/// How the newsroom's alerts are decided, in a sentence: who approves, the undo window.
fn how_text(app: &App, d: Digits) -> String {
    let a = &app.settings.alerts;
    if a.approval == crate::config::Approval::Auto {
        return "يُرسل كل خبر عاجل فور وصوله، من دون انتظار قرار (alerts.approval = \"auto\")."
            .into();
    }
    let undo = a.undo;
    if undo == Duration::ZERO {
        "ينتظر كل خبر عاجل قرارك هنا، ويبدأ إرساله فور «أرسل».".into()
    } else {
        format!(
            "ينتظر كل خبر عاجل قرارك هنا. بعد «أرسل» يبقى أمامك {} تلغيه فيها بـ«تراجع» من دون أن يصل إلى أحد.",
            time_left(undo.as_secs() as i64, d)
        )
    }
}

/// The readers' budget, in a sentence.
fn budget_text(app: &App, d: Digits) -> String {
    let a = &app.settings.alerts;
    let per_day = view::number(i64::from(a.max_per_day), d);
    // In words: "23:00-07:00" between Arabic words is drawn backwards by the bidi rules.
    let quiet = a.quiet.map_or(String::new(), |(from, to)| {
        view::digits(
            &format!(
                "، ولا شيء في ساعات هدوئه (من {} إلى {} بتوقيته)",
                from.format("%H:%M"),
                to.format("%H:%M")
            ),
            d,
        )
    });
    format!(
        "يصل التنبيه إلى من اختار التنبيهات من القرّاء المؤكَّدين، بحدّ {per_day} في اليوم لكل قارئ ما لم يختر غيره{quiet}."
    )
}

async fn list(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let alerts = app.list_alerts(&me).await?;
    let d = app.settings.newsletter.digits;
    let now = now_ms();
    let rows: Vec<AlertRow> = alerts.into_iter().map(|a| row(a, now, d)).collect();
    let mut c = view::context(&app, &me, "عاجل", "alerts", q.done.as_deref());
    c.insert("alerts", &rows);
    c.insert("how", &how_text(&app, d));
    c.insert("budget", &budget_text(&app, d));
    c.insert("categories", &app.settings.alerts.categories);
    c.insert("second_forms", &forms(&SECOND));
    c.insert("minute_forms", &forms(&MINUTE));
    Ok(render("alerts.html", &c))
}

#[derive(Deserialize)]
struct Action {
    action: String,
}

/// «أرسل», and «تراجع» (or «تجاهل» for one still waiting): both come back to the page.
async fn decide(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Path(Action { action }): Path<Action>,
) -> Result<Response, PageError> {
    match action.as_str() {
        "send" => {
            app.send_alert(&me, id).await?;
            Ok(done("/admin/alerts", "alert_sent"))
        }
        "cancel" => {
            app.cancel_alert(&me, id).await?;
            Ok(done("/admin/alerts", "alert_cancelled"))
        }
        _ => Err(OpError::NotFound("action").into()),
    }
}

/// An alert's send as its page shows it: the article, who approved it and when.
#[derive(Serialize)]
pub struct SentAlert {
    title: String,
    url: String,
    decided_by: Option<String>,
    auto: bool,
    decided_at: Option<i64>,
}

/// The alert whose send is `digest`, among the latest (the page of an older one shows
/// without it).
pub async fn of_send(app: &App, digest: i64) -> anyhow::Result<Option<SentAlert>> {
    const LOOKED_AT: i64 = 200;
    Ok(app
        .store
        .alerts(LOOKED_AT)
        .await?
        .into_iter()
        .find(|a| a.digest_id == Some(digest))
        .map(|a| {
            let auto = a.decided_by.as_deref() == Some("auto");
            SentAlert {
                title: a.title,
                url: a.url,
                decided_by: a.decided_by.filter(|_| !auto),
                auto,
                decided_at: a.decided_at,
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_reads_as_sentences() {
        let p = AlertPlan {
            now: 2,
            later: 1,
            over_budget: 0,
            held: 12,
            ..Default::default()
        };
        let r = reach(&p, Digits::Arabic);
        assert_eq!(r.now, "يصل الآن إلى قارئين");
        assert_eq!(r.later, "بعد ساعات الهدوء: ١");
        assert_eq!(r.held, "ينتظرون النشرة: ١٢");
        let p = AlertPlan {
            now: 1200,
            ..Default::default()
        };
        assert_eq!(reach(&p, Digits::Latin).now, "يصل الآن إلى 1,200 قارئ");
        assert_eq!(
            reach(&AlertPlan::default(), Digits::Latin).now,
            "لا يصل الآن إلى أي قارئ"
        );
    }

    #[test]
    fn the_countdown_is_in_seconds_then_minutes() {
        assert_eq!(time_left(1, Digits::Latin), "ثانية واحدة");
        assert_eq!(time_left(42, Digits::Arabic), "٤٢ ثانية");
        assert_eq!(time_left(120, Digits::Latin), "120 ثانية");
        assert_eq!(time_left(121, Digits::Latin), "3 دقائق");
        assert_eq!(time_left(3600, Digits::Latin), "60 دقيقة");
        assert_eq!(
            forms(&SECOND),
            "ثانية واحدة|ثانيتين|ثوانٍ|ثانية|ثانية",
            "the script's order"
        );
    }
}
