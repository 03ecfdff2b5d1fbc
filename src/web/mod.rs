//! HTTP: the public pages readers and mail providers touch, the admin API and the console.
//!
//! Each area exposes `router()`; this module merges them and adds the layers every request
//! gets (body size limit, security headers); `server` runs them with every wait bounded.

mod admin;
mod archive;
mod client;
mod console;
mod headers;
mod links;
mod ops;
mod preferences;
mod ratelimit;
mod redirect;
mod server;
mod signup;

pub use ratelimit::ClientLimiter;
pub use server::serve;

/// This process's per-client limits, shared by the handlers of the public forms.
#[derive(Clone)]
pub(crate) struct Limits {
    pub signup: Option<Arc<ClientLimiter>>,
    pub login: Option<Arc<ClientLimiter>>,
}

use std::sync::Arc;

use axum::{
    Json, Router,
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;

use crate::app::App;

/// Sign-up forms and API calls are small; a feed article pushed by the API is the largest.
/// (The console's CSV import has its own, larger limit.)
const MAX_BODY: usize = 2 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let limits = Limits {
        signup: ClientLimiter::per_hour(app.settings.server.signups_per_hour),
        login: ClientLimiter::per_hour(app.settings.security.logins_per_hour),
    };
    Router::new()
        .merge(signup::router())
        .merge(links::router())
        .merge(archive::router())
        .merge(preferences::router())
        .merge(redirect::router())
        .merge(ops::router())
        .merge(crate::bounces::webhooks::router())
        .nest("/api", admin::router(app.clone()))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        // The import route has its own limit; it is nested after the general one.
        .nest("/admin", console::router(app.clone()))
        .route(
            "/admin/",
            axum::routing::get(|| async { axum::response::Redirect::to("/admin") }),
        )
        .fallback(not_found)
        .layer(axum::Extension(limits))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            refuse_nul_in_uri,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            headers::security_headers,
        ))
        .with_state(app)
}

/// Why a form body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the form cannot be read")]
pub struct FormError;

/// An `application/x-www-form-urlencoded` body. serde_urlencoded turns invalid UTF-8 into
/// U+FFFD without a word and lets a stray `%` through: both are refused first.
pub(crate) fn decode_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, FormError> {
    let mut decoded_check = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'%' => {
                let hex = body.get(i + 1..i + 3).ok_or(FormError)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(FormError);
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
    decoded_check.extend(percent_encoding::percent_decode(body));
    std::str::from_utf8(&decoded_check).map_err(|_| FormError)?;
    // No text of ours holds a NUL, and PostgreSQL refuses one.
    if decoded_check.contains(&0) {
        return Err(FormError);
    }
    serde_urlencoded::from_bytes(body).map_err(|_| FormError)
}

/// A JSON body, refused (with serde's reason) when it is not JSON for `T` or when any of its
/// strings holds a NUL: no text of ours has one, and PostgreSQL refuses it.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if has_nul(&v) {
        return Err("a string holds a NUL character (\\u0000)".into());
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// A path nobody serves: an Arabic page (the console's own under `/admin`), JSON for the API.
async fn not_found(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    uri: axum::http::Uri,
) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/webhooks/") {
        return ApiError::NotFound.into_response();
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return console::not_found_page();
    }
    links::message_page(
        &app,
        StatusCode::NOT_FOUND,
        "الصفحة غير موجودة",
        "لم نجد الصفحة التي طلبتها. ربما تغيّر رابطها أو حُذفت.",
    )
}

/// A request whose path or query holds a NUL (`%00`) is refused before any handler: no
/// address, token or search of ours has one, and PostgreSQL refuses it (a 500 otherwise).
async fn refuse_nul_in_uri(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = req.uri();
    let nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    if !nul(uri.path()) && !uri.query().is_some_and(nul) {
        return next.run(req).await;
    }
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/webhooks/") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "bad_request", "message": "the request's path or query holds a NUL character (%00)"})),
        )
            .into_response();
    }
    links::message_page(
        &app,
        StatusCode::BAD_REQUEST,
        "طلب غير صالح",
        "يحتوي الرابط على رموز غير مقبولة. تحقّق منه أو ارجع إلى الصفحة السابقة.",
    )
}

/// An API error: client errors carry a code and a message; internal ones are logged and
/// answered with a bare 500.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Invalid {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [("WWW-Authenticate", "Bearer")],
                Json(json!({"error": "unauthorized", "message": "missing or wrong bearer token"})),
            )
                .into_response(),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "not_found", "message": "no such resource"})),
            )
                .into_response(),
            ApiError::Invalid {
                status,
                code,
                message,
            } => (status, Json(json!({"error": code, "message": message}))).into_response(),
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "internal", "message": "internal error"})),
                )
                    .into_response()
            }
        }
    }
}

/// A failure behind a reader's page (the store is down, a render failed): logged, and
/// answered with an Arabic page, never with the API's JSON.
#[derive(Debug)]
pub struct PageFailure(pub anyhow::Error);

impl From<anyhow::Error> for PageFailure {
    fn from(e: anyhow::Error) -> PageFailure {
        PageFailure(e)
    }
}

const FAILURE_PAGE: &str = "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>عطل مؤقت</title></head>\
<body style=\"font-family:Tahoma,'Geeza Pro','Noto Sans Arabic',Arial,sans-serif;direction:rtl;text-align:right;margin:48px auto;max-width:560px;padding:0 16px;line-height:1.9\">\
<main dir=\"rtl\"><h1>عطل مؤقت</h1><p>حدث عطل لدينا ولم يكتمل طلبك. يرجى المحاولة بعد قليل.</p></main></body></html>";

impl IntoResponse for PageFailure {
    fn into_response(self) -> Response {
        tracing::error!(error = %format!("{:#}", self.0), "page failed");
        let mut r = page(StatusCode::SERVICE_UNAVAILABLE, FAILURE_PAGE.to_owned());
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("30"),
        );
        r
    }
}

/// A full HTML page with a status.
pub fn page(status: StatusCode, html: String) -> Response {
    (status, [("Cache-Control", "no-store")], Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq, Default)]
    #[serde(default)]
    struct F {
        email: String,
        name: String,
    }

    #[test]
    fn form_decoding() {
        let f: F = decode_form(b"email=a%40b.org&name=%D9%86+x&x").unwrap();
        assert_eq!(
            f,
            F {
                email: "a@b.org".into(),
                name: "ن x".into()
            }
        );
        for bad in [
            &b"email=%ZZ"[..],
            b"email=%4",
            b"email=%FF",
            b"name=%D9&x=%86",
        ] {
            assert_eq!(decode_form::<F>(bad), Err(FormError), "{bad:?}");
        }
        let f: F = decode_form(b"email=a%0D%0Ab").unwrap();
        assert_eq!(
            f.email, "a\r\nb",
            "decoded as sent; the address check refuses it"
        );
    }
}
