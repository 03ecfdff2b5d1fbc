//! A console session as a browser holds it: accounts with a known password, signing in, the
//! session cookie, and forms posted as a page of ours posts them (same origin). Shared by the
//! console's tests and by every other story that passes through the console.

use nashra::{app::Actor, store::Role};
use reqwest::{StatusCode, header};

use super::app::{PUBLIC, TestApp};

/// Every test account's password.
pub const PASSWORD: &str = "a long enough password";
/// The session cookie's name: the test apps' `public_url` is https.
pub const COOKIE: &str = "__Host-nashra_session";

/// A signed-in browser: its session cookie, and the headers a page of ours sends.
pub struct Session<'a> {
    pub t: &'a TestApp,
    pub cookie: String,
}

/// An account with the test password, added as the CLI does.
pub async fn add_account(t: &TestApp, email: &str, role: Role) {
    t.app
        .add_admin(&Actor::cli(), email, role, PASSWORD)
        .await
        .expect("account added");
}

/// The session cookie a response sets, if any.
pub fn set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{COOKIE}=")))
        .map(|v| v.to_owned())
}

/// The session id in a `Set-Cookie` value.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .trim_start_matches(&format!("{COOKIE}="))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// POSTs a form as a page of ours does (same origin), with `cookie` if any.
pub async fn post_from_page(
    t: &TestApp,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut req = t
        .http
        .post(t.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Origin", PUBLIC)
        .body(body.to_owned());
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, format!("{COOKIE}={c}"));
    }
    req.send().await.unwrap()
}

/// A form body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// Signs in with the test password: the session its answer starts.
pub async fn sign_in<'a>(t: &'a TestApp, email: &str) -> Session<'a> {
    let r = post_from_page(
        t,
        "/admin/login",
        None,
        &form(&[("email", email), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {email}");
    let cookie = cookie_value(&set_cookie(&r).expect("a session cookie"));
    Session { t, cookie }
}

impl Session<'_> {
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .t
            .http
            .get(self.t.url(path))
            .header(header::COOKIE, format!("{COOKIE}={}", self.cookie))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        post_from_page(self.t, path, Some(&self.cookie), &form(pairs)).await
    }

    /// Where a POST sent the browser (it must be a redirect).
    pub async fn post_to(&self, path: &str, pairs: &[(&str, &str)]) -> String {
        let r = self.post(path, pairs).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "POST {path}");
        location(&r)
    }
}

/// Where a redirect points (empty when it is not one).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The audit log, oldest first, as (actor, action, target, detail).
pub async fn audit_actions(t: &TestApp) -> Vec<(String, String, String, String)> {
    t.app
        .store
        .audit_log(None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.actor, e.action, e.target, e.detail))
        .collect()
}

/// Whether `actor` did `action` somewhere in `log`.
pub fn has_action(log: &[(String, String, String, String)], actor: &str, action: &str) -> bool {
    log.iter().any(|(a, x, _, _)| a == actor && x == action)
}
