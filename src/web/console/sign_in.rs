//! Signing in: address and password, then the code when the account has a second factor.
//! Every failure (no such account, wrong password, a locked account) is the same answer,
//! and a client that tries too often waits, whatever the accounts.

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;

use super::{
    respond::PageError,
    session::{Client, session_cookie, set_cookie},
    view::{self, render},
};
use crate::{
    app::{App, LoginOutcome, SessionLookup},
    render::{MINUTE, count_ar},
    web::{
        extract::{BodyError, StrictForm},
        ratelimit::Limits,
    },
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/code", get(code_page).post(code))
}

const REFUSED: &str =
    "البريد الإلكتروني أو كلمة المرور غير صحيحة، أو أن الحساب مقفل مؤقتاً بعد محاولات كثيرة.";

#[derive(Deserialize, Default)]
#[serde(default)]
struct Next {
    next: String,
}

/// Where to go after signing in: a console path of ours, nothing else.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/admin")
        && !next.starts_with("/admin/login")
        && !next.contains("//")
        && !next.contains('\\')
        && next.chars().all(|c| c.is_ascii_graphic());
    if ok { next } else { "/admin" }
}

fn login_form(
    app: &App,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
    next: &str,
) -> Response {
    let mut c = view::base_context(app, "الدخول إلى لوحة التحكم");
    c.insert("step", "password");
    c.insert("error", &error);
    c.insert("email", email);
    c.insert("next", safe_next(next));
    let mut r = render("login.html", &c);
    *r.status_mut() = status;
    r
}

async fn login_page(
    State(app): State<Arc<App>>,
    Query(q): Query<Next>,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    // Already signed in: straight on.
    if let Some(cookie) = session_cookie(&app, &headers)
        && let SessionLookup::Full(_) = app.session(&cookie, &client).await?
    {
        return Ok(Redirect::to(safe_next(&q.next)).into_response());
    }
    Ok(login_form(&app, StatusCode::OK, None, "", &q.next))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    next: String,
}

/// A client that has tried too often: the same page, with how long to wait.
fn too_many(app: &App, wait: std::time::Duration, email: &str, next: &str) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let msg = format!(
        "محاولات دخول كثيرة من شبكتك. حاول مجدداً بعد {}.",
        count_ar(minutes, &MINUTE)
    );
    let mut r = login_form(app, StatusCode::TOO_MANY_REQUESTS, Some(&msg), email, next);
    if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn login(
    State(app): State<Arc<App>>,
    Extension(limits): Extension<Limits>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<StrictForm<LoginForm>, BodyError>,
) -> Result<Response, PageError> {
    let previous = session_cookie(&app, &headers);
    let form = unreadable_is_bad_form(body)?;
    if let Some(l) = &limits.login
        && let Ok(ip) = client.parse()
        && let Err(wait) = l.check(ip)
    {
        return Ok(too_many(&app, wait, &form.email, &form.next));
    }
    let out = app
        .login(&form.email, &form.password, &client, previous.as_deref())
        .await?;
    Ok(match out {
        LoginOutcome::Session(s) => {
            let mut r = Redirect::to(safe_next(&form.next)).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&app, Some(&s.value)));
            r
        }
        LoginOutcome::NeedCode(s) => {
            let mut r = Redirect::to("/admin/login/code").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&app, Some(&s.value)));
            r
        }
        LoginOutcome::Refused => {
            let mut r = login_form(
                &app,
                StatusCode::UNAUTHORIZED,
                Some(REFUSED),
                &form.email,
                &form.next,
            );
            if previous.is_some() {
                r.headers_mut()
                    .insert(header::SET_COOKIE, set_cookie(&app, None));
            }
            r
        }
    })
}

/// The sign-in forms answer every body they cannot read, even one cut off or too large,
/// with the same page.
fn unreadable_is_bad_form<T>(body: Result<StrictForm<T>, BodyError>) -> Result<T, PageError> {
    body.map(|StrictForm(t)| t).map_err(|_| PageError::Form)
}

fn code_form(app: &App, status: StatusCode, error: Option<&str>) -> Response {
    let mut c = view::base_context(app, "رمز التحقق");
    c.insert("step", "code");
    c.insert("error", &error);
    let mut r = render("login.html", &c);
    *r.status_mut() = status;
    r
}

async fn code_page(State(app): State<Arc<App>>) -> Response {
    code_form(&app, StatusCode::OK, None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
}

async fn code(
    State(app): State<Arc<App>>,
    Extension(limits): Extension<Limits>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<StrictForm<CodeForm>, BodyError>,
) -> Result<Response, PageError> {
    let pending = session_cookie(&app, &headers).unwrap_or_default();
    let form = unreadable_is_bad_form(body)?;
    if let Some(l) = &limits.login
        && let Ok(ip) = client.parse()
        && let Err(wait) = l.check(ip)
    {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let msg = format!(
            "محاولات كثيرة من شبكتك. حاول مجدداً بعد {}.",
            count_ar(minutes, &MINUTE)
        );
        return Ok(code_form(&app, StatusCode::TOO_MANY_REQUESTS, Some(&msg)));
    }
    Ok(match app.login_code(&pending, &form.code, &client).await? {
        LoginOutcome::Session(s) => {
            let mut r = Redirect::to("/admin").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&app, Some(&s.value)));
            r
        }
        _ => {
            // A wrong code, or no session waiting for one (expired, or locked meanwhile):
            // back to the start after a wrong code would tell a guesser nothing new either.
            code_form(
                &app,
                StatusCode::UNAUTHORIZED,
                Some(
                    "الرمز غير صحيح أو انتهت صلاحية الخطوة الأولى. أعد المحاولة، أو سجّل الدخول من جديد.",
                ),
            )
        }
    })
}
