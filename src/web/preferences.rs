//! A reader's preferences page: which schedules and which sections reach them, breaking news
//! or not, and the city whose clock they live by (`clock_form`), by the signed link in every
//! digest's footer and on the confirmation page. No login: the link is the key, as the
//! unsubscribe link is.
//!
//! A GET only shows the page (link scanners follow GETs). Saving answers on the same page in
//! Arabic; the next digest follows the new choice. Unticking everything does not save an
//! empty choice (a subscription that receives nothing): the reader is asked whether they
//! want to unsubscribe instead.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use super::{
    clock_form,
    error::PageFailure,
    extract::{BodyError, StrictForm},
    page::{message_page, page},
};
use crate::{
    app::App,
    domain::TokenKind,
    render::{ChoiceGroup, ChoiceOption, Page, cron_in_words_of},
    store::{Choice, ReaderClock, SubscriberStatus},
};

/// More fields than any real form has (a few schedules, at most 12 sections), in more bytes.
const MAX_FIELDS: usize = 64;
const MAX_BYTES: usize = 4096;

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/preferences/{token}", get(show).post(save))
}

fn bad_link(app: &App) -> Response {
    message_page(
        app,
        StatusCode::BAD_REQUEST,
        "رابط غير صالح",
        "رابط الاختيارات هذا غير صالح. استخدم الرابط الموجود في آخر نشرة وصلتك.",
    )
}

/// A subscribed reader, as the page shows them.
struct Reader {
    id: i64,
    choice: Choice,
    clock: ReaderClock,
}

/// The reader the token names, if it is ours and they are subscribed; else the page to show.
async fn reader(app: &App, token: &str) -> Result<Result<Reader, Response>, PageFailure> {
    let Ok(t) = app.tokens.verify(token, TokenKind::Preferences) else {
        return Ok(Err(bad_link(app)));
    };
    if t.subscriber_id == 0 {
        return Ok(Err(message_page(
            app,
            StatusCode::OK,
            "اختر ما يصلك",
            "هذا الرابط من رسالة تجريبية. في النشرة التي تصل القرّاء يفتح صفحة يختار فيها كل قارئ الأقسام ومواعيد النشرة.",
        )));
    }
    let id = t.subscriber_id;
    Ok(match app.reader_choice(id).await? {
        Some((SubscriberStatus::Pending | SubscriberStatus::Confirmed, choice)) => {
            match app.reader_clock(id).await? {
                Some(clock) => Ok(Reader { id, choice, clock }),
                None => Err(bad_link(app)),
            }
        }
        Some(_) => Err(message_page(
            app,
            StatusCode::OK,
            "لست مشتركاً",
            "اشتراكك في النشرة غير فعّال، فلا شيء يصلك منا. يمكنك الاشتراك من جديد من صفحة الاشتراك.",
        )),
        None => Err(bad_link(app)),
    })
}

/// The page, as `r` has things now; `saved` reports a save, `error` a refusal.
fn form(app: &App, token: &str, r: &Reader, saved: bool, error: Option<&str>) -> Response {
    let (reader, choice) = (r.id, &r.choice);
    let s = &app.settings;
    let schedule = |x: &crate::config::Schedule, label: String| ChoiceOption {
        field: "schedule".into(),
        value: x.name.clone(),
        label,
        checked: app.takes_schedule(choice, &x.name),
        sub: false,
    };
    // When each arrives: «يومية — كل يوم ٧:٠٠ صباحاً بتوقيت بغداد».
    let when = |x: &crate::config::Schedule| cron_in_words_of(&x.cron, s.newsletter.digits);
    let mut groups = if s.sections.is_empty() {
        vec![ChoiceGroup {
            legend: "متى تصلك النشرة".into(),
            options: s
                .schedules
                .iter()
                .map(|x| schedule(x, format!("{} — {}", x.label, when(x))))
                .collect(),
            selects: vec![],
        }]
    } else {
        // One group per schedule: whether it comes, and with which sections.
        s.schedules
            .iter()
            .map(|x| {
                let chosen = choice.sections_in(&x.name).map(str::to_owned);
                let takes = app.takes_schedule(choice, &x.name);
                let mut options = vec![schedule(x, format!("تصلني هذه النشرة ({})", when(x)))];
                // A section under a schedule the reader does not get is not something they
                // chose: it is ticked only once the schedule is.
                options.extend(s.sections.iter().map(|c| ChoiceOption {
                    field: format!("section.{}", x.name),
                    value: c.slug.clone(),
                    label: c.name.clone(),
                    checked: takes && App::chosen(&chosen, &c.slug),
                    sub: true,
                }));
                ChoiceGroup {
                    legend: format!("النشرة: {}", x.label),
                    options,
                    selects: vec![],
                }
            })
            .collect()
    };
    groups.extend(clock_form::groups(app, &r.clock));
    let p = Page {
        title: "اختر ما يصلك".into(),
        status: saved.then(|| "حُفظت اختياراتك، وتسري من النشرة القادمة.".to_owned()),
        error: error.map(str::to_owned),
        lines: vec![format!(
            "اختر ما تريد أن يصلك من {}. لا تحتاج إلى كلمة مرور: هذا الرابط خاص بك، فلا تشاركه.",
            s.newsletter.name
        )],
        form: "preferences",
        action: format!("/preferences/{token}"),
        groups,
        unsubscribe_action: unsubscribe_action(app, reader),
        back_url: Some(s.newsletter.site_url.clone()),
        ..Default::default()
    };
    page(StatusCode::OK, app.renderer.page(s, &p))
}

/// The reader's one-click unsubscribe, for "leave everything".
fn unsubscribe_action(app: &App, reader: i64) -> String {
    format!("/unsubscribe/{}", app.tokens.unsubscribe(reader))
}

async fn show(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
) -> Result<Response, PageFailure> {
    Ok(match reader(&app, &token).await? {
        Ok(r) => form(&app, &token, &r, false, None),
        Err(r) => r,
    })
}

async fn save(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    // Read after the link is checked: a bad link is answered as a bad link.
    body: Result<StrictForm<Vec<(String, String)>, MAX_BYTES>, BodyError>,
) -> Result<Response, PageFailure> {
    // A body that never arrived whole is axum's answer, as for any route that reads one.
    if let Err(BodyError::Unread(u)) = body {
        return Ok(u.into_response());
    }
    let r = match reader(&app, &token).await? {
        Ok(r) => r,
        Err(r) => return Ok(r),
    };
    let (id, current) = (r.id, &r.choice);
    let Ok(StrictForm(fields)) = body else {
        return Ok(bad_form(&app, &token, &r, UNREADABLE));
    };
    if fields.len() > MAX_FIELDS {
        return Ok(bad_form(&app, &token, &r, UNREADABLE));
    }
    let clock = match clock_form::read(&app, &r.clock, &fields) {
        Ok(c) => c,
        Err(why) => return Ok(bad_form(&app, &token, &r, why)),
    };
    let picked = |field: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(k, _)| k == field)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let s = &app.settings;
    // Sections per schedule (`section.daily`), or one list for all (`section`).
    let per_schedule = fields.iter().any(|(k, _)| k.starts_with("section."));
    let (schedules, all) = (picked("schedule"), picked("section"));
    let chosen: Vec<(String, Vec<String>)> = s
        .schedules
        .iter()
        .filter(|x| schedules.contains(&x.name))
        .map(|x| {
            let mut secs = if per_schedule {
                picked(&format!("section.{}", x.name))
            } else {
                all.clone()
            };
            // A schedule ticked now showed its sections unticked (it was not taken): with
            // none ticked under it (and some ticked elsewhere), it comes with every section.
            if per_schedule && secs.is_empty() && !app.takes_schedule(current, &x.name) {
                secs = s.sections.iter().map(|c| c.slug.clone()).collect();
            }
            (x.name.clone(), secs)
        })
        // A schedule with no section ticked brings nothing: it is not taken.
        .filter(|(_, secs)| {
            s.sections.is_empty() || s.sections.iter().any(|c| secs.contains(&c.slug))
        })
        .collect();
    if chosen.is_empty() {
        let p = Page {
            title: "هل تريد إلغاء اشتراكك؟".into(),
            lines: vec![
                "لم تختر شيئاً، فلن يصلك منا أي شيء. هل تريد إلغاء اشتراكك في النشرة؟".into(),
                "لم نغيّر اختياراتك بعد.".into(),
            ],
            form: "unsubscribe_question",
            action: format!("/preferences/{token}"),
            unsubscribe_action: unsubscribe_action(&app, id),
            ..Default::default()
        };
        return Ok(page(StatusCode::OK, app.renderer.page(s, &p)));
    }
    let choice = app.choice_per_schedule(&chosen);
    if !app.save_preferences(id, &choice, &clock).await? {
        return Ok(message_page(
            &app,
            StatusCode::OK,
            "لست مشتركاً",
            "اشتراكك في النشرة غير فعّال، فلم نحفظ شيئاً.",
        ));
    }
    let saved = Reader { id, choice, clock };
    Ok(form(&app, &token, &saved, true, None))
}

const UNREADABLE: &str = "تعذّرت قراءة النموذج، فلم نحفظ شيئاً. أعد اختيارك ثم احفظه.";

/// The page as it was, with why nothing was saved.
fn bad_form(app: &App, token: &str, r: &Reader, why: &str) -> Response {
    let mut page = form(app, token, r, false, Some(why));
    *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    page
}
