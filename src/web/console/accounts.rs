//! Accounts and API tokens (owners), one's own account (second factor, password, sessions),
//! signing out, and the audit log.

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::{Path, Query, State},
    http::header,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{
    dashboard::Done,
    extract::{Form, Id},
    respond::{PageError, done},
    session::{Me, SessionId, set_cookie},
    view::{self, render},
};
use crate::{
    app::{App, OpError, Refusal},
    auth::totp,
    render::{MINUTE, count_ar},
    store::Role,
    web::ratelimit::Limits,
};

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/audit", get(audit))
        .route("/accounts", get(accounts).post(add_account))
        .route("/accounts/{id}/role", post(set_role))
        .route("/accounts/{id}/remove", post(remove_account))
        .route("/accounts/{id}/totp-reset", post(reset_totp))
        .route("/tokens", post(create_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/account", get(account))
        .route("/account/totp/{action}", post(set_totp))
        .route("/account/password", post(set_password))
        .route("/logout", post(logout))
        .route("/logout/all", post(logout_all))
}

const ROLES: [(&str, &str); 3] = [
    ("viewer", "مطّلع: يقرأ فقط"),
    ("editor", "محرّر: يعاين ويرسل ويدير القرّاء"),
    ("owner", "مالك: ويدير الحسابات والمفاتيح"),
];

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuditQuery {
    before: String,
    action: String,
}

async fn audit(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    const PER_PAGE: i64 = 100;
    let action = view::ACTIONS
        .iter()
        .find(|(k, _)| *k == q.action)
        .map(|(k, _)| *k);
    let entries = app
        .store
        .audit_log(q.before.parse().ok(), action, PER_PAGE)
        .await?;
    let mut c = view::context(&app, &me, "سجلّ العمليات", "audit", None);
    let older = (entries.len() as i64 == PER_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    c.insert("entries", &entries);
    c.insert("older", &older);
    c.insert("action", action.unwrap_or_default());
    c.insert("actions", view::ACTIONS);
    Ok(render("audit.html", &c))
}

#[derive(Serialize)]
struct AdminView {
    id: i64,
    email: String,
    role: Role,
    totp: bool,
    created_at: i64,
}

async fn accounts(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let tokens = app.api_tokens(&me).await?;
    let admins: Vec<AdminView> = app
        .store
        .admins()
        .await?
        .into_iter()
        .map(|a| AdminView {
            id: a.id,
            email: a.email,
            role: a.role,
            totp: a.totp_secret.is_some(),
            created_at: a.created_at,
        })
        .collect();
    let mut c = view::context(&app, &me, "الحسابات", "accounts", q.done.as_deref());
    c.insert("admins", &admins);
    c.insert("tokens", &tokens);
    c.insert("roles", &ROLES);
    Ok(render("accounts.html", &c))
}

fn role_of(s: &str) -> Result<Role, PageError> {
    s.parse().map_err(|_| PageError::Form)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccountForm {
    email: String,
    role: String,
    password: String,
}

async fn add_account(
    State(app): State<Arc<App>>,
    me: Me,
    Form(f): Form<AccountForm>,
) -> Result<Response, PageError> {
    app.add_admin(&me, &f.email, role_of(&f.role)?, &f.password)
        .await?;
    Ok(done("/admin/accounts", "account_added"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    role: String,
}

async fn set_role(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
    Form(f): Form<RoleForm>,
) -> Result<Response, PageError> {
    app.set_admin_role(&me, id, Some(role_of(&f.role)?)).await?;
    Ok(done("/admin/accounts", "account_changed"))
}

async fn remove_account(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
) -> Result<Response, PageError> {
    app.set_admin_role(&me, id, None).await?;
    Ok(done("/admin/accounts", "account_removed"))
}

/// An owner takes away another account's lost second factor.
async fn reset_totp(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
) -> Result<Response, PageError> {
    me.require(Role::Owner)?;
    let admin = app
        .store
        .admin(id)
        .await?
        .ok_or(OpError::NotFound("account"))?;
    app.reset_totp(&me, &admin.email).await?;
    Ok(done("/admin/accounts", "totp_reset"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    name: String,
    role: String,
}

async fn create_token(
    State(app): State<Arc<App>>,
    me: Me,
    Form(f): Form<TokenForm>,
) -> Result<Response, PageError> {
    let (_, token) = app
        .create_api_token(&me, &f.name, role_of(&f.role)?)
        .await?;
    // Shown once, on this page, which no cache keeps.
    let mut c = view::context(&app, &me, "مفتاح جديد", "accounts", None);
    c.insert("name", f.name.trim());
    c.insert("token", &token);
    Ok(render("token.html", &c))
}

async fn revoke_token(
    State(app): State<Arc<App>>,
    me: Me,
    Id(id): Id,
) -> Result<Response, PageError> {
    app.revoke_api_token(&me, id).await?;
    Ok(done("/admin/accounts", "token_revoked"))
}

async fn account_page(
    app: &App,
    me: &crate::app::Actor,
    done: Option<&str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let admin_id = me.admin_id.ok_or(OpError::NotFound("account"))?;
    let admin = app
        .store
        .admin(admin_id)
        .await?
        .ok_or(OpError::NotFound("account"))?;
    let mut c = view::context(app, me, "حسابي", "account", done);
    c.insert("has_totp", &admin.totp_secret.is_some());
    let secret = totp::new_secret();
    let otpauth = totp::uri(&app.settings.newsletter.name, &admin.email, &secret);
    c.insert("otpauth_qr", &totp::qr_data_url(&otpauth));
    c.insert("otpauth", &otpauth);
    c.insert("new_secret", &secret);
    c.insert("error", &error);
    let mut r = render("account.html", &c);
    if error.is_some() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

async fn account(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    account_page(&app, &me, q.done.as_deref(), None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TotpForm {
    secret: String,
    code: String,
    /// The current password, or the current code when there is a factor already.
    proof: String,
}

/// The same per-client allowance as signing in: these forms check a password too.
fn too_many(limits: &Limits, me: &crate::app::Actor) -> Option<String> {
    let l = limits.login.as_ref()?;
    let ip = me.client.parse().ok()?;
    let wait = l.check(ip).err()?;
    let minutes = wait.as_secs().div_ceil(60).max(1);
    Some(format!(
        "محاولات كثيرة من شبكتك. حاول مجدداً بعد {}.",
        count_ar(minutes, &MINUTE)
    ))
}

/// A refusal on «حسابي»: the page again with the reason, or, when the account has just
/// been locked (its sessions ended), the reason on its own and the cookie cleared.
async fn refused(app: &App, me: &crate::app::Actor, e: OpError) -> Result<Response, PageError> {
    match e {
        OpError::Refused(Refusal::Locked) => {
            let mut r = PageError::from(Refusal::Locked).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(app, None));
            Ok(r)
        }
        OpError::Refused(r) => account_page(app, me, None, Some(r.arabic())).await,
        e => Err(e.into()),
    }
}

async fn set_totp(
    State(app): State<Arc<App>>,
    Extension(limits): Extension<Limits>,
    me: Me,
    Path(action): Path<String>,
    Form(f): Form<TotpForm>,
) -> Result<Response, PageError> {
    let (secret, key) = match action.as_str() {
        "on" => (Some(f.secret.as_str()), "totp_on"),
        "off" => (None, "totp_off"),
        _ => return Err(OpError::NotFound("action").into()),
    };
    if let Some(msg) = too_many(&limits, &me) {
        let mut r = account_page(&app, &me, None, Some(msg)).await?;
        *r.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(r);
    }
    match app.set_totp(&me, secret, &f.code, &f.proof).await {
        Ok(()) => Ok(done("/admin/account", key)),
        Err(e) => refused(&app, &me, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current: String,
    new: String,
}

async fn set_password(
    State(app): State<Arc<App>>,
    Extension(limits): Extension<Limits>,
    me: Me,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    if let Some(msg) = too_many(&limits, &me) {
        let mut r = account_page(&app, &me, None, Some(msg)).await?;
        *r.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        return Ok(r);
    }
    match app
        .set_password(&me, &me.name, Some(&f.current), &f.new)
        .await
    {
        // Every session of the account ended, this one too: sign in again.
        Ok(()) => {
            let mut r = Redirect::to("/admin/login").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&app, None));
            Ok(r)
        }
        Err(e) => refused(&app, &me, e).await,
    }
}

async fn logout(
    State(app): State<Arc<App>>,
    me: Me,
    Extension(session): Extension<SessionId>,
) -> Result<Response, PageError> {
    app.logout(&me, &session.0).await?;
    let mut r = Redirect::to("/admin/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&app, None));
    Ok(r)
}

async fn logout_all(State(app): State<Arc<App>>, me: Me) -> Result<Response, PageError> {
    app.logout_everywhere(&me).await?;
    let mut r = Redirect::to("/admin/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&app, None));
    Ok(r)
}
