//! What readers and mail providers touch: sign-up, confirmation, one-click unsubscribe, the
//! archive, health and metrics.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use std::net::SocketAddr;

use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;

use super::page;
use crate::{
    app::App,
    domain::{EmailError, SubscriberEmail, TokenKind},
    render::{Page, PageEntry, arabic_date, fill_generic},
    store::{ConfirmOutcome, now_ms},
};

/// A confirm link is good for a week.
const CONFIRM_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/subscribe") }),
        )
        .route("/subscribe", get(subscribe_page).post(subscribe))
        .route("/subscribe/embed", get(embed))
        .route("/confirm/{token}", get(confirm))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route("/archive", get(archive))
        .route("/archive/{id}", get(archive_entry))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

fn subscribe_form(app: &App, error: Option<String>, email: String) -> Page {
    Page {
        title: app.settings.newsletter.name.clone(),
        lines: vec![app.settings.newsletter.prompt.clone()],
        error,
        form: "subscribe",
        action: "/subscribe".into(),
        email,
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    }
}

async fn subscribe_page(State(app): State<Arc<App>>) -> Response {
    page(
        StatusCode::OK,
        app.renderer
            .page(&app.settings, &subscribe_form(&app, None, String::new())),
    )
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

const CHECK_INBOX: &str =
    "شكراً لك! أرسلنا رسالة إلى بريدك الإلكتروني، افتحها واضغط رابط التأكيد لإتمام اشتراكك.";

async fn subscribe(
    State(app): State<Arc<App>>,
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
        serde_urlencoded_form(&body)
    };
    let reply_invalid = |message: &str, email: String| -> Response {
        if is_json {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "invalid_email", "message": message})),
            )
                .into_response()
        } else {
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                app.renderer.page(
                    &app.settings,
                    &subscribe_form(&app, Some(message.to_owned()), email),
                ),
            )
        }
    };
    if let Some(limit) = &app.signup_limit
        && let Err(wait) = limit.check(client_ip(&app, peer, &headers))
    {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let message = format!("محاولات كثيرة من هذا العنوان. يرجى المحاولة بعد {minutes} دقيقة.");
        let retry = [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())];
        return if is_json {
            (
                StatusCode::TOO_MANY_REQUESTS,
                retry,
                Json(json!({"error": "rate_limited", "message": message})),
            )
                .into_response()
        } else {
            let page = app.renderer.page(
                &app.settings,
                &subscribe_form(&app, Some(message), String::new()),
            );
            (StatusCode::TOO_MANY_REQUESTS, retry, Html(page)).into_response()
        };
    }
    let Ok(form) = form else {
        return reply_invalid(
            "تعذّرت قراءة الطلب. أعد المحاولة من نموذج الاشتراك.",
            String::new(),
        );
    };
    let email = match SubscriberEmail::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            // Echo back only what is safe to show in the field again.
            let echo: String = form
                .email
                .chars()
                .filter(|c| !c.is_control())
                .take(254)
                .collect();
            return reply_invalid(email_error_ar(&e), echo);
        }
    };
    let source = consent_source(&headers, &form.source);
    if let Err(e) = app.subscribe(&email, &form.name, &source).await {
        return super::ApiError::Internal(e).into_response();
    }
    if is_json {
        (
            StatusCode::OK,
            Json(json!({"status": "check_inbox", "message": CHECK_INBOX})),
        )
            .into_response()
    } else {
        let p = Page {
            title: "تحقّق من بريدك".into(),
            lines: vec![CHECK_INBOX.into()],
            back_url: Some(app.settings.newsletter.site_url.clone()),
            ..Default::default()
        };
        page(StatusCode::OK, app.renderer.page(&app.settings, &p))
    }
}

/// The client's address: the TCP peer, or the configured proxy header's first address.
fn client_ip(app: &App, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    let name = &app.settings.server.client_ip_header;
    if name.is_empty() {
        return peer.ip();
    }
    headers
        .get(name.as_str())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer.ip())
}

/// Where consent was given: the article page that embedded the form, or our own page.
fn consent_source(headers: &HeaderMap, form_source: &str) -> String {
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::feeds::safe_url)
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

fn serde_urlencoded_form(body: &[u8]) -> Result<SubscribeForm, ()> {
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

/// `application/x-www-form-urlencoded` pairs; invalid UTF-8 is an error, not a guess.
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

fn message_page(app: &App, status: StatusCode, title: &str, line: &str) -> Response {
    let p = Page {
        title: title.into(),
        lines: vec![line.into()],
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    };
    page(status, app.renderer.page(&app.settings, &p))
}

async fn confirm(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let bad = || {
        message_page(
            &app,
            StatusCode::BAD_REQUEST,
            "رابط غير صالح",
            "رابط التأكيد هذا غير صالح أو انتهت صلاحيته. اشترك من جديد لتصلك رسالة تأكيد جديدة.",
        )
    };
    let Ok(t) = app.tokens.verify(&token, TokenKind::Confirm) else {
        return bad();
    };
    if now_ms() - t.issued > CONFIRM_TTL_MS {
        return message_page(
            &app,
            StatusCode::GONE,
            "انتهت صلاحية الرابط",
            "انتهت صلاحية رابط التأكيد. اشترك من جديد لتصلك رسالة تأكيد جديدة.",
        );
    }
    match app.store.confirm(t.subscriber_id, t.issued, now_ms()).await {
        Ok(ConfirmOutcome::Confirmed | ConfirmOutcome::AlreadyConfirmed) => message_page(
            &app,
            StatusCode::OK,
            "تم تأكيد اشتراكك",
            &format!(
                "أهلاً بك! ستصلك {} على بريدك الإلكتروني.",
                app.settings.newsletter.name
            ),
        ),
        Ok(ConfirmOutcome::Stale | ConfirmOutcome::Unknown) => bad(),
        Err(e) => super::ApiError::Internal(e).into_response(),
    }
}

async fn unsubscribe_page(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    // A GET changes nothing: link scanners and previews follow GETs.
    if app.tokens.verify(&token, TokenKind::Unsubscribe).is_err() {
        return message_page(
            &app,
            StatusCode::BAD_REQUEST,
            "رابط غير صالح",
            "رابط إلغاء الاشتراك هذا غير صالح.",
        );
    }
    let p = Page {
        title: "إلغاء الاشتراك".into(),
        lines: vec![format!(
            "هل تريد إيقاف وصول {} إلى بريدك؟",
            app.settings.newsletter.name
        )],
        form: "unsubscribe",
        action: format!("/unsubscribe/{token}"),
        ..Default::default()
    };
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

/// RFC 8058 one-click: works with no cookie and no page, answers 200, never redirects.
async fn unsubscribe(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let Ok(t) = app.tokens.verify(&token, TokenKind::Unsubscribe) else {
        return message_page(
            &app,
            StatusCode::BAD_REQUEST,
            "رابط غير صالح",
            "رابط إلغاء الاشتراك هذا غير صالح.",
        );
    };
    match app.store.unsubscribe(t.subscriber_id, now_ms()).await {
        Ok(changed) => {
            if changed {
                tracing::info!(subscriber = t.subscriber_id, "unsubscribed");
            }
            message_page(
                &app,
                StatusCode::OK,
                "تم إلغاء اشتراكك",
                "لن تصلك رسائل أخرى منا. يمكنك الاشتراك من جديد في أي وقت.",
            )
        }
        Err(e) => super::ApiError::Internal(e).into_response(),
    }
}

async fn archive(State(app): State<Arc<App>>) -> Response {
    let entries = match app.store.archive(100).await {
        Ok(e) => e,
        Err(e) => return super::ApiError::Internal(e).into_response(),
    };
    let p = Page {
        title: format!("أرشيف {}", app.settings.newsletter.name),
        lines: if entries.is_empty() {
            vec!["لم تُرسل أي نشرة بعد.".into()]
        } else {
            vec![]
        },
        entries: entries
            .into_iter()
            .map(|e| PageEntry {
                url: format!("/archive/{}", e.id),
                subject: e.subject,
                date: Utc
                    .timestamp_millis_opt(e.created_at)
                    .single()
                    .map(|d| arabic_date(&d))
                    .unwrap_or_default(),
            })
            .collect(),
        back_url: Some(app.settings.newsletter.site_url.clone()),
        ..Default::default()
    };
    page(StatusCode::OK, app.renderer.page(&app.settings, &p))
}

async fn archive_entry(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let not_found = || {
        message_page(
            &app,
            StatusCode::NOT_FOUND,
            "غير موجود",
            "لا توجد نشرة بهذا الرقم.",
        )
    };
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    match app.store.digest(id).await {
        Ok(Some(d)) if d.kind != "test" => {
            // The web copy is the same for everyone: its "unsubscribe" becomes "subscribe".
            let html = fill_generic(&d.html, &app.settings.public_url("/subscribe"));
            page(StatusCode::OK, html)
        }
        Ok(_) => not_found(),
        Err(e) => super::ApiError::Internal(e).into_response(),
    }
}

async fn health(State(app): State<Arc<App>>) -> Response {
    if app.store.ping().await {
        Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database_unavailable"})),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let depth = app.store.queue_depth().await.unwrap_or(-1);
    let confirmed = app.store.count_subscribers("confirmed").await.unwrap_or(-1);
    let body = app.metrics.render(&[
        (
            "nashra_queue_depth",
            "Deliveries waiting or in flight.",
            depth,
        ),
        (
            "nashra_subscribers_confirmed",
            "Confirmed subscribers.",
            confirmed,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
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
