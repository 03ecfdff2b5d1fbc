//! The sign-up prompt: the page, the fragment a site embeds under its articles, and the form
//! both post to.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;

use super::{client::client_ip, page};
use crate::{
    app::{App, SignupError},
    domain::{EmailError, NameError, SubscriberEmail, SubscriberName},
    render::{MINUTE, Page, count_ar},
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/subscribe") }),
        )
        .route("/subscribe", get(subscribe_page).post(subscribe))
        .route("/subscribe/embed", get(embed))
}

const CHECK_INBOX: &str =
    "شكراً لك! أرسلنا رسالة إلى بريدك الإلكتروني، افتحها واضغط رابط التأكيد لإتمام اشتراكك.";

fn form_page(app: &App, error: Option<String>, email: String, name: String) -> Page {
    Page {
        title: app.settings.newsletter.name.clone(),
        lines: vec![app.settings.newsletter.prompt.clone()],
        error,
        form: "subscribe",
        action: "/subscribe".into(),
        email,
        name_value: name,
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    }
}

async fn subscribe_page(State(app): State<Arc<App>>) -> Response {
    let p = form_page(&app, None, String::new(), String::new());
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

async fn embed(State(app): State<Arc<App>>) -> Response {
    match app
        .renderer
        .embed(&app.settings, &app.settings.public_url("/subscribe"))
    {
        Ok(html) => (
            [
                ("Access-Control-Allow-Origin", "*"),
                ("Cache-Control", "public, max-age=300"),
            ],
            Html(html),
        )
            .into_response(),
        Err(e) => super::ApiError::Internal(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
struct SubscribeForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    source: String,
}

/// The Arabic message a reader sees for each way an address can be wrong.
fn email_error_ar(e: &EmailError) -> &'static str {
    match e {
        EmailError::Empty => "يرجى إدخال عنوان بريدك الإلكتروني.",
        EmailError::TooLong => "عنوان البريد الإلكتروني أطول من المسموح.",
        EmailError::Control | EmailError::Invalid => {
            "عنوان البريد الإلكتروني غير صالح. اكتبه بالشكل name@example.com من دون مسافات أو أسماء."
        }
    }
}

fn name_error_ar(e: &NameError) -> &'static str {
    match e {
        NameError::TooLong => "الاسم أطول من المسموح (60 حرفاً على الأكثر).",
        NameError::Invalid => {
            "اكتب اسمك بالحروف فقط: من دون أرقام أو روابط أو رموز. يمكنك أيضاً ترك الحقل فارغاً."
        }
    }
}

/// How the reader gets the answer: a page for the form, JSON for scripts.
struct Reply<'a> {
    app: &'a App,
    json: bool,
    email: String,
    name: String,
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
    axum::Extension(limit): axum::Extension<super::SignupLimit>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let form: Result<SubscribeForm, ()> = if is_json {
        serde_json::from_slice(&body).map_err(|_| ())
    } else {
        decode_form(&body)
    };
    let mut reply = Reply {
        app: &app,
        json: is_json,
        email: String::new(),
        name: String::new(),
    };
    if let Some(limit) = &limit.0
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
    let Ok(form) = form else {
        return reply.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
            "تعذّرت قراءة الطلب. أعد المحاولة من نموذج الاشتراك.",
        );
    };
    reply.email = echo(&form.email, 254);
    reply.name = echo(&form.name, 60);
    let email = match SubscriberEmail::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return reply.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
                email_error_ar(&e),
            );
        }
    };
    let name = match SubscriberName::parse(&form.name) {
        Ok(n) => n,
        Err(e) => {
            return reply.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_name",
                name_error_ar(&e),
            );
        }
    };
    let source = consent_source(&headers, &form.source);
    match app.subscribe(&email, &name, &source).await {
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
    if is_json {
        return (
            StatusCode::OK,
            Json(json!({"status": "check_inbox", "message": CHECK_INBOX})),
        )
            .into_response();
    }
    // Back to the article the form was under, when it is on the site.
    let back = article_referer(&app, &headers);
    let p = Page {
        title: "تحقّق من بريدك".into(),
        lines: vec![CHECK_INBOX.into()],
        back_label: back.as_ref().map(|_| "العودة إلى المقال".to_owned()),
        back_url: Some(back.unwrap_or_else(|| app.settings.newsletter.site_url.clone())),
        ..Default::default()
    };
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

/// The page the form was posted from, if it is on the news site (and not the site's home).
fn article_referer(app: &App, headers: &HeaderMap) -> Option<String> {
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::domain::safe_url)?;
    let r = url::Url::parse(&referer).ok()?;
    let site = url::Url::parse(&app.settings.newsletter.site_url).ok()?;
    (r.host_str() == site.host_str() && !r.path().trim_end_matches('/').is_empty())
        .then_some(referer)
}

/// Where consent was given: the article page that embedded the form, or our own page.
fn consent_source(headers: &HeaderMap, form_source: &str) -> String {
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::domain::safe_url)
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

fn decode_form(body: &[u8]) -> Result<SubscribeForm, ()> {
    let mut f = SubscribeForm::default();
    for (k, v) in url_decode_pairs(body)? {
        match k.as_str() {
            "email" => f.email = v,
            "name" => f.name = v,
            "source" => f.source = v,
            _ => {}
        }
    }
    Ok(f)
}

/// `application/x-www-form-urlencoded` pairs; invalid UTF-8 is an error, not a guess
/// (serde_urlencoded would turn it into U+FFFD silently).
fn url_decode_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ()> {
    fn decode(s: &[u8]) -> Result<String, ()> {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let h = std::str::from_utf8(&s[i + 1..i + 3]).map_err(|_| ())?;
                    out.push(u8::from_str_radix(h, 16).map_err(|_| ())?);
                    i += 2;
                }
                b'%' => return Err(()),
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| ())
    }
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut it = p.splitn(2, |&b| b == b'=');
            let k = decode(it.next().unwrap_or_default())?;
            let v = decode(it.next().unwrap_or_default())?;
            Ok((k, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let pairs = url_decode_pairs(b"email=a%40b.org&name=%D9%86+x&x").unwrap();
        assert_eq!(pairs[0], ("email".into(), "a@b.org".into()));
        assert_eq!(pairs[1], ("name".into(), "ن x".into()));
        assert!(url_decode_pairs(b"email=%ZZ").is_err());
        assert!(url_decode_pairs(b"email=%4").is_err());
        assert!(url_decode_pairs(b"email=%FF").is_err());
        assert_eq!(url_decode_pairs(b"email=a%0D%0Ab").unwrap()[0].1, "a\r\nb");
    }
}
