//! The console at `/admin`: server-rendered Arabic pages for editors, one small script of
//! our own for live progress. Every page needs a session (see `session`); every
//! state-changing request must come from our own pages (`same_origin`); what each role may
//! do is checked by the application's operations, which also write the audit log.

mod accounts;
mod dashboard;
mod newsroom;
mod readers;
mod sends;
mod sign_in;
mod view;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use tower_http::limit::RequestBodyLimitLayer;

use super::{client::client_ip, page};
use crate::app::{Actor, App, OpError, SessionLookup};

pub use view::{render, render_error};

/// The session cookie over http (development): its path keeps it off every other route.
pub const COOKIE: &str = "nashra_session";
/// The session cookie under an https `public_url`. The `__Host-` prefix makes the browser
/// refuse it unless it is `Secure`, host-only and `Path=/`, so a sibling subdomain or a
/// plain-http page cannot plant or overwrite a session (the price: `Path=/` instead of
/// `/admin`, which the prefix requires).
pub const HOST_COOKIE: &str = "__Host-nashra_session";
/// Console forms are small…
const MAX_FORM: usize = 64 * 1024;
/// …but a CSV of readers is not.
const MAX_IMPORT: usize = 50 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    view::check_templates();
    let pages = Router::new()
        .merge(dashboard::router())
        .merge(readers::router())
        .merge(newsroom::router())
        .merge(sends::router())
        .merge(accounts::router())
        .layer(RequestBodyLimitLayer::new(MAX_FORM))
        .merge(readers::import_router().layer(RequestBodyLimitLayer::new(MAX_IMPORT)))
        .layer(middleware::from_fn_with_state(app.clone(), require_session));
    Router::new()
        .merge(sign_in::router().layer(RequestBodyLimitLayer::new(MAX_FORM)))
        .route("/static/{file}", get(view::asset))
        .merge(pages)
        .layer(middleware::from_fn_with_state(app, same_origin))
}

/// Refuses a state-changing request that did not come from a page of ours: the browser says
/// where it came from (`Sec-Fetch-Site`), or at least its origin (`Origin`). A request with
/// neither is refused too (a form of ours always carries one).
async fn same_origin(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    if is_same_origin(req.headers(), &app.settings.public_origin()) {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "cross-site console request refused");
    render_error(
        StatusCode::FORBIDDEN,
        "طلب مرفوض",
        "رُفض هذا الطلب لأنه لم يصدر من صفحات لوحة التحكم نفسها. افتح اللوحة وأعد المحاولة منها.",
    )
}

fn is_same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    headers
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() == public_origin.as_bytes())
}

/// Under an https `public_url`: the `__Host-` cookie, `Secure`, on `/`.
fn https(app: &App) -> bool {
    app.settings.server.public_url.starts_with("https://")
}

/// The name of the session cookie this deployment uses.
pub fn cookie_name(app: &App) -> &'static str {
    if https(app) { HOST_COOKIE } else { COOKIE }
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(app: &App, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(app);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` for `value` (or one that ends the cookie, for `None`).
pub fn set_cookie(app: &App, value: Option<&str>) -> HeaderValue {
    let (name, path, secure) = if https(app) {
        (HOST_COOKIE, "/", "; Secure")
    } else {
        (COOKIE, "/admin", "")
    };
    let s = match value {
        Some(v) => format!(
            "{name}={v}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            app.settings.security.session_max.as_secs()
        ),
        None => format!("{name}=; Path={path}; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""))
}

pub fn client_of(app: &App, req: &Request) -> String {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
    client_ip(&app.settings.server, peer, req.headers()).to_string()
}

/// Lets a request through with its account (an [`Actor`] in its extensions), or sends the
/// browser to sign in.
async fn require_session(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let client = client_of(&app, &req);
    let cookie = session_cookie(&app, req.headers()).unwrap_or_default();
    match app.session(&cookie, &client).await {
        Ok(SessionLookup::Full(actor)) => {
            req.extensions_mut().insert(actor);
            req.extensions_mut().insert(SessionId(cookie));
            let mut res = next.run(req).await;
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Ok(SessionLookup::AwaitingCode) => Redirect::to("/admin/login/code").into_response(),
        Ok(SessionLookup::None) => {
            // The path as the browser asked for it (this router is nested under /admin).
            let next_path = req
                .extensions()
                .get::<axum::extract::OriginalUri>()
                .and_then(|u| u.0.path_and_query().map(|p| p.as_str().to_owned()))
                .filter(|_| req.method() == Method::GET)
                .unwrap_or_else(|| "/admin".into());
            let to = format!(
                "/admin/login?next={}",
                url::form_urlencoded::byte_serialize(next_path.as_bytes()).collect::<String>()
            );
            let mut res = Redirect::to(&to).into_response();
            if !cookie.is_empty() {
                // A cookie for a session that ended: clear it.
                res.headers_mut()
                    .insert(header::SET_COOKIE, set_cookie(&app, None));
            }
            res
        }
        Err(e) => PageError::from(OpError::Store(e)).into_response(),
    }
}

/// The session cookie's value, for logging out.
#[derive(Clone)]
pub struct SessionId(pub String);

/// Why a console page could not do what was asked, shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error("bad form")]
    Form,
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> PageError {
        PageError::Op(OpError::Store(e))
    }
}

impl From<crate::app::Refusal> for PageError {
    fn from(r: crate::app::Refusal) -> PageError {
        PageError::Op(OpError::Refused(r))
    }
}

impl From<super::FormError> for PageError {
    fn from(_: super::FormError) -> PageError {
        PageError::Form
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::Op(OpError::Forbidden(role)) => (
                StatusCode::FORBIDDEN,
                "ليست لديك الصلاحية",
                format!(
                    "هذا الإجراء يحتاج دور «{}» أو أعلى. اطلب ذلك من مالك الحساب.",
                    view::role_label(role)
                ),
            ),
            PageError::Op(OpError::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                "غير موجود",
                "لم نجد ما تبحث عنه: ربما حُذف أو أن الرابط غير صحيح.".into(),
            ),
            PageError::Op(OpError::InvalidState(s)) => (
                StatusCode::CONFLICT,
                "لا يمكن الآن",
                format!(
                    "حالة الإرسال الآن «{}»، ولا تسمح بهذا الإجراء.",
                    view::send_status_label(s)
                ),
            ),
            PageError::Op(OpError::Refused(r)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "تعذّر التنفيذ", r.arabic())
            }
            PageError::Form => (
                StatusCode::BAD_REQUEST,
                "تعذّرت قراءة النموذج",
                "تعذّرت قراءة ما أرسلته. عد إلى الصفحة السابقة وأعد المحاولة.".into(),
            ),
            PageError::Op(OpError::Store(e)) => {
                tracing::error!(error = %format!("{e:#}"), "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "عطل لدينا",
                    "حدث عطل أثناء تنفيذ طلبك. أعد المحاولة بعد قليل.".into(),
                )
            }
        };
        render_error(status, title, &message)
    }
}

/// A redirect after a POST, with a message to show (`?done=KEY`, a fixed text per key).
pub fn done(path: &str, key: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={key}")).into_response()
}

/// The actor a page was opened by (put there by [`require_session`]).
pub type Me = axum::Extension<Actor>;

/// Forms of the console: a page from `html`.
pub fn html(html: String) -> Response {
    page(StatusCode::OK, html)
}

/// A console path nobody serves.
pub(crate) fn not_found_page() -> axum::response::Response {
    view::render_error(
        axum::http::StatusCode::NOT_FOUND,
        "الصفحة غير موجودة",
        "لا توجد في لوحة التحكم صفحة بهذا العنوان.",
    )
}
