//! The sign-up prompt: the page, the fragment a site embeds under its articles, and the form
//! both post to. Both forms carry the reader's time zone, which a small script of ours
//! (`/subscribe/zone.js`) fills from the browser, and the alerts opt-in box.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{ConnectInfo, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;

use super::{
    client::client_ip,
    error::PageFailure,
    extract::{BodyError, BodyFields, JsonOrForm, Repeated},
    page::page,
    ratelimit::Limits,
};
use crate::{
    app::{App, SignupError},
    domain::{ReaderZone, SubscriberEmail, SubscriberName},
    render::{ChoiceGroup, ChoiceOption, MINUTE, Page, count_ar, cron_in_words_of},
    store::{ReaderClock, now_ms},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/subscribe") }),
        )
        .route("/subscribe", get(subscribe_page).post(subscribe))
        .route("/subscribe/embed", get(embed))
        .route("/subscribe/zone.js", get(zone_script))
}

/// Fills the sign-up forms' hidden `tz` field from the browser: a file of ours, as the
/// pages' policy allows only our own scripts (`web/headers.rs`), and one a site's page that
/// embeds the form can load from us.
const ZONE_JS: &str = include_str!("../../static/zone.js");

async fn zone_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            // Loaded by the news site's pages, from another origin.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        ZONE_JS,
    )
        .into_response()
}

const CHECK_INBOX: &str =
    "شكراً لك! أرسلنا رسالة إلى بريدك الإلكتروني، افتحها واضغط رابط التأكيد لإتمام اشتراكك.";

fn form_page(app: &App, error: Option<String>, email: String, name: String, alerts: bool) -> Page {
    Page {
        title: app.settings.newsletter.name.clone(),
        lines: vec![app.settings.newsletter.prompt.clone()],
        error,
        form: "subscribe",
        action: "/subscribe".into(),
        email,
        name_value: name,
        back_url: Some(app.settings.newsletter.site_url.clone()),
        stamp: app.tokens.form_stamp(now_ms()),
        groups: schedule_choice(app),
        alerts_checked: alerts,
        ..Default::default()
    }
}

/// The schedules as checkboxes (those new readers get ticked), when there is a choice to
/// make and the link did not make it already.
fn schedule_choice(app: &App) -> Vec<ChoiceGroup> {
    let s = &app.settings;
    if s.schedules.len() < 2 {
        return vec![];
    }
    vec![ChoiceGroup {
        legend: "متى تصلك النشرة".into(),
        options: s
            .schedules
            .iter()
            .map(|x| ChoiceOption {
                field: "schedule".into(),
                sub: false,
                value: x.name.clone(),
                label: format!(
                    "{} — {}",
                    x.label,
                    cron_in_words_of(&x.cron, s.newsletter.digits)
                ),
                checked: x.for_new_readers,
            })
            .collect(),
        selects: vec![],
    }]
}

async fn subscribe_page(State(app): State<Arc<App>>, Query(offer): Query<Offer>) -> Response {
    let offer = offer.known(&app);
    let mut p = form_page(&app, None, String::new(), String::new(), false);
    if !offer.schedule.is_empty() {
        p.groups.clear();
    }
    p.section = offer.section;
    p.schedule = offer.schedule;
    p.article = offer.article;
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

async fn embed(
    State(app): State<Arc<App>>,
    Query(offer): Query<Offer>,
) -> Result<Response, PageFailure> {
    let offer = offer.known(&app);
    let html = app.renderer.embed(
        &app.settings,
        &app.settings.public_url("/subscribe"),
        &app.tokens.form_stamp(now_ms()),
        (&offer.section, &offer.schedule),
        &offer.article,
    )?;
    // Pasted into the site's pages (or fetched by its server and inserted): our headers do
    // not reach it there. Any site may also frame it.
    Ok((
        [
            ("Access-Control-Allow-Origin", "*"),
            ("Cache-Control", "public, max-age=300"),
            (
                "Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; form-action *; frame-ancestors *",
            ),
        ],
        Html(html),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SubscribeForm {
    email: String,
    name: String,
    source: String,
    /// The honeypot: hidden from people, filled by form-filling programs.
    website: String,
    /// The form's signed time stamp.
    t: Option<String>,
    /// A section slug: the sign-up under a sports article subscribes to sport.
    section: String,
    /// The schedules the form ticked (`schedule=daily&schedule=weekly`), or the one a
    /// hidden field or a script names.
    schedule: Repeated,
    /// The article the form is under, as the site's template fills it in.
    article: String,
    /// The reader's time zone as their browser gave it (`zone.js`), a string in a form or
    /// JSON; anything that is not an IANA zone is no zone (the newsroom's).
    tz: Option<serde_json::Value>,
    /// The alerts opt-in: `1` (or JSON `true`) asks for breaking news; anything else not.
    alerts: Option<serde_json::Value>,
}

/// A forged `tz` (a NUL in it) costs the zone only: the reader is signed up in the
/// newsroom's zone and sees the same answer as anyone.
impl BodyFields for SubscribeForm {
    const DROPPED_WITH_NUL: &'static [&'static str] = &["tz"];
}

impl SubscribeForm {
    fn clock(&self) -> ReaderClock {
        use serde_json::Value;
        ReaderClock {
            zone: self
                .tz
                .as_ref()
                .and_then(Value::as_str)
                .and_then(ReaderZone::parse),
            alerts: self.wants_alerts(),
            alerts_per_day: None,
        }
    }

    fn wants_alerts(&self) -> bool {
        use serde_json::Value;
        match &self.alerts {
            Some(Value::String(s)) => s == "1",
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_u64() == Some(1),
            _ => false,
        }
    }
}

/// `?section=…&schedule=…` of the sign-up page or the embed, carried into its form as hidden
/// fields when they name a configured section or schedule.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Offer {
    section: String,
    schedule: String,
    /// The article the embed goes under, for a site that fetches the fragment per article.
    article: String,
}

impl Offer {
    fn known(self, app: &App) -> Offer {
        let s = &app.settings;
        Offer {
            section: Some(self.section)
                .filter(|x| s.sections.iter().any(|c| c.slug == *x))
                .unwrap_or_default(),
            schedule: Some(self.schedule)
                .filter(|x| s.schedules.iter().any(|c| c.name == *x))
                .unwrap_or_default(),
            article: article_on_site(app, &self.article).unwrap_or_default(),
        }
    }
}

impl SubscribeForm {
    /// Whether a program filled this form: the hidden field has text, or the form came back
    /// sooner than a person could fill it (or with a stamp we did not sign). A form without
    /// a stamp (a script, an embed pasted before stamps) is taken as a person's.
    fn by_a_program(&self, app: &App) -> bool {
        if !self.website.is_empty() {
            return true;
        }
        match self.t.as_deref() {
            None | Some("") => false,
            Some(t) => match app.tokens.verify_form_stamp(t) {
                Some(at) => now_ms() - at < app.settings.server.min_fill_time.as_millis() as i64,
                None => true,
            },
        }
    }
}

/// How the reader gets the answer: a page for the form, JSON for scripts.
struct Reply<'a> {
    app: &'a App,
    json: bool,
    email: String,
    name: String,
    alerts: bool,
}

impl Reply<'_> {
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        if self.json {
            return (status, Json(json!({"error": code, "message": message}))).into_response();
        }
        let p = form_page(
            self.app,
            Some(message.to_owned()),
            self.email.clone(),
            self.name.clone(),
            self.alerts,
        );
        page(status, self.app.renderer.page(&self.app.settings, &p))
    }
}

/// What a form field may show again: no control characters, bounded.
fn echo(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

async fn subscribe(
    State(app): State<Arc<App>>,
    axum::Extension(limits): axum::Extension<Limits>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<JsonOrForm<SubscribeForm>, BodyError>,
) -> Response {
    // An unreadable form is answered after the rate limit, in the kind of body it came in.
    let (form, is_json) = match body {
        Ok(JsonOrForm { value, json }) => (Some(value), json),
        // A body that never arrived whole: axum's answer, before anything else.
        Err(BodyError::Unread(u)) => return u.into_response(),
        Err(e) => (None, matches!(e, BodyError::Json(_))),
    };
    let mut reply = Reply {
        app: &app,
        json: is_json,
        email: String::new(),
        name: String::new(),
        alerts: false,
    };
    if let Some(limit) = &limits.signup
        && let Err(wait) = limit.check(client_ip(&app.settings.server, peer, &headers))
    {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let message = format!(
            "وصلتنا محاولات اشتراك كثيرة من شبكتك. يرجى المحاولة بعد {}.",
            count_ar(minutes, &MINUTE)
        );
        let mut r = reply.error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", &message);
        if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let Some(form) = form else {
        return reply.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            "تعذّرت قراءة الطلب. أعد المحاولة من نموذج الاشتراك.",
        );
    };
    reply.email = echo(&form.email, 254);
    reply.name = echo(&form.name, 60);
    reply.alerts = form.wants_alerts();
    let email = match SubscriberEmail::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return reply.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
                e.arabic(),
            );
        }
    };
    let name = match SubscriberName::parse(&form.name) {
        Ok(n) => n,
        Err(e) => {
            return reply.error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_name", e.arabic());
        }
    };
    let article = form_article(&app, &headers, &form.article);
    let source = consent_source(&headers, &form.source, article.as_deref());
    if form.by_a_program(&app) {
        // The answer a person gets, so the program learns nothing; nothing is stored.
        tracing::info!("sign-up form filled by a program; answered, not stored");
        return check_inbox(&app, article, is_json);
    }
    let clock = form.clock();
    let one = |v: &str| (!v.is_empty()).then(|| vec![v.to_owned()]);
    let schedules: Vec<String> = form.schedule.0.into_iter().take(16).collect();
    let choice = app.choice_from(
        (!schedules.is_empty()).then_some(schedules.as_slice()),
        one(&form.section).as_deref(),
    );
    match app.subscribe(&email, &name, &source, &choice, &clock).await {
        Ok(()) => {}
        Err(SignupError::NoSmtpUtf8) => {
            return reply.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
                "لا نستطيع بعد إرسال رسائل إلى عنوان فيه حروف غير لاتينية قبل علامة @. يرجى استخدام عنوان آخر.",
            );
        }
        Err(SignupError::Store(e)) => {
            // Never "check your inbox" for a sign-up that was not stored.
            tracing::error!(error = %format!("{e:#}"), "sign-up not stored");
            return reply.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "تعذّر حفظ اشتراكك الآن بسبب عطل لدينا. يرجى المحاولة بعد قليل.",
            );
        }
    }
    check_inbox(&app, article, is_json)
}

/// "Check your inbox": the one answer to every sign-up that was not refused.
fn check_inbox(app: &App, article: Option<String>, is_json: bool) -> Response {
    if is_json {
        return (
            StatusCode::OK,
            Json(json!({"status": "check_inbox", "message": CHECK_INBOX})),
        )
            .into_response();
    }
    // Back to the article the form was under, when it is on the site.
    let back = article;
    let p = Page {
        title: "تحقّق من بريدك".into(),
        lines: vec![CHECK_INBOX.into()],
        back_label: back.as_ref().map(|_| "العودة إلى المقال".to_owned()),
        back_url: Some(back.unwrap_or_else(|| app.settings.newsletter.site_url.clone())),
        ..Default::default()
    };
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

/// The article the form was under: the form's `article` field, which the site's template
/// fills (a browser sends another host only the site's origin as Referer), else the Referer
/// when the site and Nashra share a host. Only a page of the news site, not its home.
fn form_article(app: &App, headers: &HeaderMap, field: &str) -> Option<String> {
    article_on_site(app, field).or_else(|| {
        let referer = headers.get(header::REFERER)?.to_str().ok()?;
        article_on_site(app, referer)
    })
}

/// `u` when it is a page of the news site other than its home.
fn article_on_site(app: &App, u: &str) -> Option<String> {
    let u = crate::domain::safe_url(u)?;
    let parsed = url::Url::parse(&u).ok()?;
    let site = url::Url::parse(&app.settings.newsletter.site_url).ok()?;
    (parsed.host_str() == site.host_str() && !parsed.path().trim_end_matches('/').is_empty())
        .then_some(u)
}

/// Where consent was given: the article page that embedded the form (as the form says, else
/// its Referer), or our own page.
fn consent_source(headers: &HeaderMap, form_source: &str, article: Option<&str>) -> String {
    let referer = article
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::domain::safe_url)
        })
        .map(|u| {
            u.split(['?', '#'])
                .next()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>()
        });
    let kind = if form_source == "embed" {
        "embed"
    } else {
        "page"
    };
    match referer {
        Some(r) => format!("{kind}:{r}"),
        None => kind.to_owned(),
    }
}
