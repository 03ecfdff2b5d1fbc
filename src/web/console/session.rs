//! The console's session: the cookie that carries it (named and scoped by whether the
//! console is served over https), the client it is bound to, and the layer that lets a
//! request through only with a live session, putting its account where handlers find it
//! ([`Me`]).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRequestParts, OriginalUri, Request, State},
    http::{Extensions, HeaderMap, HeaderValue, Method, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use super::respond::PageError;
use crate::{
    app::{Actor, App, OpError, SessionLookup},
    web::client::client_ip,
};

/// The session cookie over http (development): its path keeps it off every other route.
const COOKIE: &str = "nashra_session";
/// The session cookie under an https `public_url`. The `__Host-` prefix makes the browser
/// refuse it unless it is `Secure`, host-only and `Path=/`, so a sibling subdomain or a
/// plain-http page cannot plant or overwrite a session (the price: `Path=/` instead of
/// `/admin`, which the prefix requires).
const HOST_COOKIE: &str = "__Host-nashra_session";

/// The actor a page was opened by (put there by [`require_session`]).
pub type Me = axum::Extension<Actor>;

/// The session cookie's value, for logging out.
#[derive(Clone)]
pub struct SessionId(pub String);

/// Under an https `public_url`: the `__Host-` cookie, `Secure`, on `/`.
fn https(app: &App) -> bool {
    app.settings.server.public_url.starts_with("https://")
}

/// The name of the session cookie this deployment uses.
fn cookie_name(app: &App) -> &'static str {
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

/// The client a session is bound to and sign-in attempts are counted for.
fn client_of(app: &App, extensions: &Extensions, headers: &HeaderMap) -> String {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
    client_ip(&app.settings.server, peer, headers).to_string()
}

/// The request's client (see [`client_of`]), for the sign-in pages.
pub struct Client(pub String);

impl FromRequestParts<Arc<App>> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Client, std::convert::Infallible> {
        Ok(Client(client_of(app, &parts.extensions, &parts.headers)))
    }
}

/// Lets a request through with its account (an [`Actor`] in its extensions), or sends the
/// browser to sign in.
pub async fn require_session(
    State(app): State<Arc<App>>,
    mut req: Request,
    next: Next,
) -> Response {
    let client = client_of(&app, req.extensions(), req.headers());
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
                .get::<OriginalUri>()
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
