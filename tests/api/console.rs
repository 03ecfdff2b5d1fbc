//! The console over HTTP, as a browser (or an attacker's page) talks to it: signing in, the
//! session, cross-site requests, roles, API tokens, the audit log, the sign-up form's
//! defences and the security headers. The browser tests (`console_browser`) drive the same
//! pages in Chromium.

use std::time::Duration;

use nashra::{
    app::Actor,
    store::{DigestOutcome, Role},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::helpers::*;

pub const PASSWORD: &str = "a long enough password";
/// The session cookie's name: the test apps' `public_url` is https.
pub const COOKIE: &str = "__Host-nashra_session";

/// A signed-in browser: its session cookie, and the headers a page of ours sends.
pub struct Session<'a> {
    pub t: &'a TestApp,
    pub cookie: String,
}

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

fn cookie_value(set_cookie: &str) -> String {
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

pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

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

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn audit_actions(t: &TestApp) -> Vec<(String, String, String, String)> {
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

fn has_action(log: &[(String, String, String, String)], actor: &str, action: &str) -> bool {
    log.iter().any(|(a, x, _, _)| a == actor && x == action)
}

both_engines!(
    signing_in_answers_the_same_for_every_failure_and_locks_an_account,
    async {
        let t = spawn_app_with("[security]\nlogin_attempts = 3\nlockout = \"1h\"").await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        let answer = |email: &'static str, password: &'static str| {
            let t = &t;
            async move {
                let r = post_from_page(
                    t,
                    "/admin/login",
                    None,
                    &form(&[("email", email), ("password", password)]),
                )
                .await;
                let status = r.status();
                let cookie = set_cookie(&r);
                let body = r.text().await.unwrap().replace(email, "EMAIL");
                (status, cookie, body)
            }
        };
        let unknown = answer("nobody@example.org", PASSWORD).await;
        let wrong = answer("desk@example.org", "not the password at all").await;
        assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            unknown, wrong,
            "an unknown account answers as a wrong password"
        );
        assert!(unknown.2.contains("غير صحيحة"), "{}", unknown.2);
        // Third failure in a row: locked. Then even the right password gets the same answer.
        answer("desk@example.org", "wrong again, twice").await;
        answer("desk@example.org", "and a third time").await;
        let locked = answer("desk@example.org", PASSWORD).await;
        assert_eq!(
            locked, wrong,
            "a locked account answers as a wrong password"
        );
        let log = audit_actions(&t).await;
        assert!(has_action(&log, "unknown", "login_failed"), "{log:?}");
        assert!(
            has_action(&log, "desk@example.org", "account_locked"),
            "{log:?}"
        );
        assert!(
            has_action(&log, "desk@example.org", "login_locked"),
            "{log:?}"
        );
        assert!(
            !log.iter().any(|(_, _, _, d)| d.contains("nobody@")),
            "an unknown address is not kept in clear: {log:?}"
        );
        // A new password (from the command line) lifts the lock.
        t.app
            .set_password(
                &Actor::cli(),
                "desk@example.org",
                None,
                "a brand new password",
            )
            .await
            .unwrap();
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[
                ("email", "DESK@example.org"),
                ("password", "a brand new password"),
            ]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/admin");
    }
);

both_engines!(a_client_that_signs_in_too_often_waits, async {
    let t = spawn_app_with("[security]\nlogins_per_hour = 3").await;
    add_account(&t, "desk@example.org", Role::Editor).await;
    for _ in 0..3 {
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[("email", "desk@example.org"), ("password", "wrong")]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth try waits, right password or not, whatever the account.
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    assert!(set_cookie(&r).is_none());
    assert!(r.text().await.unwrap().contains("محاولات دخول كثيرة"));
});

both_engines!(
    the_session_id_changes_at_login_and_logout_ends_it_everywhere,
    async {
        let t = spawn_app().await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        // Session fixation: a cookie the attacker chose before the login is not the session.
        let planted = "attacker-chosen-value-0123456789abcdef";
        let r = post_from_page(
            &t,
            "/admin/login",
            Some(planted),
            &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
        )
        .await;
        let set = set_cookie(&r).expect("a new session cookie");
        // `Path=/`: the `__Host-` prefix (https) asks for it.
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/;", "Secure"] {
            assert!(set.contains(flag), "{flag} in {set}");
        }
        let first = Session {
            t: &t,
            cookie: cookie_value(&set),
        };
        assert_ne!(first.cookie, planted);
        let planted_session = Session {
            t: &t,
            cookie: planted.into(),
        };
        assert_eq!(planted_session.get("/admin").await.0, StatusCode::SEE_OTHER);
        assert_eq!(first.get("/admin").await.0, StatusCode::OK);
        // Signing in again from the same browser ends the session it had.
        let r = post_from_page(
            &t,
            "/admin/login",
            Some(&first.cookie),
            &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
        )
        .await;
        let second = Session {
            t: &t,
            cookie: cookie_value(&set_cookie(&r).unwrap()),
        };
        assert_ne!(second.cookie, first.cookie);
        assert_eq!(first.get("/admin").await.0, StatusCode::SEE_OTHER);
        // Another device; then "log out everywhere" from this one ends both.
        let other = sign_in(&t, "desk@example.org").await;
        assert_eq!(other.get("/admin").await.0, StatusCode::OK);
        assert_eq!(
            second.post_to("/admin/logout/all", &[]).await,
            "/admin/login"
        );
        assert_eq!(other.get("/admin").await.0, StatusCode::SEE_OTHER);
        assert_eq!(second.get("/admin").await.0, StatusCode::SEE_OTHER);
        // A plain logout ends that session only.
        let a = sign_in(&t, "desk@example.org").await;
        let b = sign_in(&t, "desk@example.org").await;
        a.post_to("/admin/logout", &[]).await;
        assert_eq!(a.get("/admin").await.0, StatusCode::SEE_OTHER);
        assert_eq!(b.get("/admin").await.0, StatusCode::OK);
        let log = audit_actions(&t).await;
        assert!(has_action(&log, "desk@example.org", "logout_all"));
        assert!(has_action(&log, "desk@example.org", "logout"));
    }
);

both_engines!(sessions_end_when_idle_and_after_their_limit, async {
    let t = spawn_app_with("[security]\nsession_idle = \"1s\"\nsession_max = \"3s\"").await;
    add_account(&t, "desk@example.org", Role::Viewer).await;
    let idle = sign_in(&t, "desk@example.org").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        idle.get("/admin").await.0,
        StatusCode::SEE_OTHER,
        "idle too long"
    );
    // Used often, a session still ends at its absolute limit.
    let busy = sign_in(&t, "desk@example.org").await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        assert_eq!(busy.get("/admin").await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let (status, _) = busy.get("/admin").await;
        if started.elapsed() > Duration::from_millis(3300) {
            assert_eq!(status, StatusCode::SEE_OTHER, "past the absolute limit");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
});

both_engines!(cross_site_requests_change_nothing, async {
    let t = spawn_app().await;
    add_account(&t, "desk@example.org", Role::Editor).await;
    let s = sign_in(&t, "desk@example.org").await;
    let attempts: [&[(&str, &str)]; 4] = [
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Origin", "https://evil.example")],
        &[],
    ];
    for headers in attempts {
        let mut req = t
            .http
            .post(t.url("/admin/schedules/daily/pause"))
            .header(header::COOKIE, format!("{COOKIE}={}", s.cookie));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(r.text().await.unwrap().contains("طلب مرفوض"));
    }
    // Signing in is a state change too (login CSRF).
    let r = t
        .http
        .post(t.url("/admin/login"))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", "desk@example.org"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let paused = |t: &TestApp| {
        let store = t.app.store.clone();
        async move {
            store
                .schedule_states()
                .await
                .unwrap()
                .iter()
                .any(|s| s.name == "daily" && s.paused != 0)
        }
    };
    assert!(!paused(&t).await, "nothing changed");
    // The same request from our own page goes through.
    let mut req = t
        .http
        .post(t.url("/admin/schedules/daily/pause"))
        .header(header::COOKIE, format!("{COOKIE}={}", s.cookie));
    req = req.header("Sec-Fetch-Site", "same-origin");
    assert_eq!(req.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    assert!(paused(&t).await);
});

both_engines!(every_role_stays_within_its_bounds, async {
    let t = spawn_app().await;
    t.add_article("https://example.org/a/1", "خبر للمعاينة", "ملخص")
        .await;
    t.subscribe_and_confirm("reader@example.net").await;
    let reader = t
        .dir
        .scalar("SELECT MAX(id) FROM subscribers")
        .await
        .to_string();
    for (email, role) in [
        ("viewer@example.org", Role::Viewer),
        ("editor@example.org", Role::Editor),
        ("owner@example.org", Role::Owner),
    ] {
        add_account(&t, email, role).await;
    }
    let viewer = sign_in(&t, "viewer@example.org").await;
    let editor = sign_in(&t, "editor@example.org").await;
    let owner = sign_in(&t, "owner@example.org").await;
    let digests = || t.dir.scalar("SELECT COUNT(*) FROM digests");

    for page in [
        "/admin",
        "/admin/readers",
        "/admin/sends",
        "/admin/articles",
        "/admin/schedules",
        "/admin/audit",
        "/admin/account",
    ] {
        assert_eq!(
            viewer.get(page).await.0,
            StatusCode::OK,
            "viewer reads {page}"
        );
    }
    let (_, readers) = viewer.get(&format!("/admin/readers/{reader}")).await;
    assert!(
        !readers.contains("/unsubscribe\""),
        "no buttons a viewer cannot use"
    );
    for page in ["/admin/preview", "/admin/accounts", "/admin/readers/import"] {
        let (status, body) = viewer.get(page).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "viewer: {page}");
        assert!(body.contains("ليست لديك الصلاحية"));
    }
    let refused: [(&str, &[(&str, &str)]); 7] = [
        ("/admin/readers/export.csv", &[]),
        ("/admin/sends", &[("schedule", "daily"), ("confirm", "yes")]),
        (
            "/admin/preview/test",
            &[("schedule", "daily"), ("to", "desk@example.org")],
        ),
        ("/admin/schedules/daily/pause", &[]),
        (
            &format!("/admin/readers/{reader}/erase"),
            &[("confirm", "yes")],
        ),
        (&format!("/admin/readers/{reader}/unsubscribe"), &[]),
        ("/admin/tokens", &[("name", "x"), ("role", "owner")]),
    ];
    for (path, body) in &refused {
        assert_eq!(
            viewer.post(path, body).await.status(),
            StatusCode::FORBIDDEN,
            "viewer: {path}"
        );
    }
    assert_eq!(digests().await, 0);
    assert_eq!(
        t.dir
            .scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'")
            .await,
        1
    );

    // An editor previews and sends, but manages neither accounts nor tokens.
    let (status, preview) = editor.get("/admin/preview").await;
    assert_eq!(status, StatusCode::OK);
    assert!(preview.contains("خبر للمعاينة") && preview.contains("srcdoc="));
    assert_eq!(editor.get("/admin/accounts").await.0, StatusCode::FORBIDDEN);
    for (path, body) in [
        ("/admin/tokens", &[("name", "x"), ("role", "owner")][..]),
        (
            "/admin/accounts",
            &[
                ("email", "new@example.org"),
                ("role", "owner"),
                ("password", PASSWORD),
            ][..],
        ),
        ("/admin/accounts/3/role", &[("role", "viewer")][..]),
    ] {
        assert_eq!(
            editor.post(path, body).await.status(),
            StatusCode::FORBIDDEN,
            "editor: {path}"
        );
    }
    assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM admins").await, 3);
    // Sending to everyone must be confirmed on the form.
    assert_eq!(
        editor
            .post("/admin/sends", &[("schedule", "daily")])
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let to = editor
        .post_to("/admin/sends", &[("schedule", "daily"), ("confirm", "yes")])
        .await;
    assert!(to.starts_with("/admin/sends/"), "{to}");
    assert_eq!(digests().await, 1);
    let id: i64 = to.trim_start_matches("/admin/sends/").parse().unwrap();
    t.wait_send(id).await;
    t.wait_for_mail_to("reader@example.net", 2).await;

    // An owner manages accounts.
    assert_eq!(owner.get("/admin/accounts").await.0, StatusCode::OK);
    owner
        .post_to(
            "/admin/accounts",
            &[
                ("email", "new@example.org"),
                ("role", "viewer"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM admins").await, 4);
    // The last owner cannot be demoted.
    let owner_id = t
        .dir
        .scalar("SELECT id FROM admins WHERE email = 'owner@example.org'")
        .await;
    let r = owner
        .post(
            &format!("/admin/accounts/{owner_id}/role"),
            &[("role", "editor")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("آخر مالك"));
    // A changed role ends the account's sessions: the viewer signs in again.
    let viewer_id = t
        .dir
        .scalar("SELECT id FROM admins WHERE email = 'viewer@example.org'")
        .await;
    owner
        .post_to(
            &format!("/admin/accounts/{viewer_id}/role"),
            &[("role", "editor")],
        )
        .await;
    assert_eq!(viewer.get("/admin").await.0, StatusCode::SEE_OTHER);
});

both_engines!(
    api_tokens_are_shown_once_stored_hashed_and_scoped_to_a_role,
    async {
        let t = spawn_app().await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        t.subscribe_and_confirm("reader@example.net").await;
        add_account(&t, "owner@example.org", Role::Owner).await;
        let owner = sign_in(&t, "owner@example.org").await;
        let make = |name: &'static str, role: &'static str| {
            let owner = &owner;
            async move {
                let r = owner
                    .post("/admin/tokens", &[("name", name), ("role", role)])
                    .await;
                assert_eq!(r.status(), StatusCode::OK);
                let page = r.text().await.unwrap();
                let start = page.find("nsh_").expect("the token is shown");
                page[start..].split('<').next().unwrap().to_owned()
            }
        };
        let editor_token = make("نظام التحرير", "editor").await;
        let viewer_token = make("لوحة القياس", "viewer").await;
        // Stored as a hash only; the list shows a hint, never the token.
        let (_, accounts) = owner.get("/admin/accounts").await;
        assert!(!accounts.contains(&editor_token));
        assert!(accounts.contains(&editor_token[..10]));
        for token in [&editor_token, &viewer_token] {
            let rows = t
                .dir
                .scalar(&format!(
                    "SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{}'",
                    nashra::auth::sha256_hex(token)
                ))
                .await;
            assert_eq!(rows, 1);
            let clear = t
            .dir
            .scalar(&format!("SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{token}' OR hint = '{token}'"))
            .await;
            assert_eq!(clear, 0);
        }
        let api = |token: &str, method: reqwest::Method, path: &str| {
            t.http
                .request(method, t.url(path))
                .bearer_auth(token)
                .header("Content-Type", "application/json")
                .body("{}")
                .send()
        };
        let r = api(&editor_token, reqwest::Method::POST, "/api/sends")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let r = api(
            &viewer_token,
            reqwest::Method::GET,
            &format!("/api/sends/{id}"),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        for (method, path) in [
            (reqwest::Method::POST, "/api/sends".to_owned()),
            (reqwest::Method::POST, format!("/api/sends/{id}/pause")),
            (
                reqwest::Method::DELETE,
                "/api/subscribers/reader@example.net".to_owned(),
            ),
        ] {
            let r = api(&viewer_token, method, &path).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "viewer token: {path}");
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "forbidden");
        }
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM subscribers").await, 1);
        // The configuration's admin_token still works, as an owner.
        assert_eq!(
            t.admin_status(reqwest::Method::GET, &format!("/api/sends/{id}"))
                .await,
            StatusCode::OK
        );
        // Revoked: refused from then on.
        let token_id = t
            .dir
            .scalar("SELECT id FROM api_tokens WHERE role = 'viewer'")
            .await;
        owner
            .post_to(&format!("/admin/tokens/{token_id}/revoke"), &[])
            .await;
        let r = api(
            &viewer_token,
            reqwest::Method::GET,
            &format!("/api/sends/{id}"),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let log = audit_actions(&t).await;
        assert!(has_action(&log, "owner@example.org", "token_create"));
        assert!(has_action(&log, "owner@example.org", "token_revoke"));
        assert!(
            has_action(&log, "token:نظام التحرير", "send_start"),
            "{log:?}"
        );
        t.wait_send(id).await;
    }
);

both_engines!(the_audit_log_says_who_did_what, async {
    let t = spawn_app().await;
    t.add_article("https://example.org/a/1", "خبر", "ملخص")
        .await;
    t.subscribe_and_confirm("reader@example.net").await;
    t.subscribe_and_confirm("leaver@example.net").await;
    add_account(&t, "editor@example.org", Role::Editor).await;
    let s = sign_in(&t, "editor@example.org").await;
    let to = s
        .post_to("/admin/sends", &[("schedule", "daily"), ("confirm", "yes")])
        .await;
    let id = to.trim_start_matches("/admin/sends/").to_owned();
    let _ = s.post(&format!("/admin/sends/{id}/pause"), &[]).await;
    let _ = s.post(&format!("/admin/sends/{id}/resume"), &[]).await;
    t.wait_send(id.parse().unwrap()).await;
    let leaver = t
        .dir
        .scalar("SELECT id FROM subscribers WHERE email = 'leaver@example.net'")
        .await;
    s.post_to(
        &format!("/admin/readers/{leaver}/erase"),
        &[("confirm", "yes")],
    )
    .await;
    s.post_to("/admin/schedules/daily/pause", &[]).await;
    let log = audit_actions(&t).await;
    for action in ["login", "send_start", "reader_erase", "schedule_pause"] {
        assert!(
            has_action(&log, "editor@example.org", action),
            "{action}: {log:?}"
        );
    }
    let erase = log.iter().find(|e| e.1 == "reader_erase").unwrap();
    assert_eq!(erase.2, format!("reader:{leaver}"));
    assert!(
        log.iter()
            .all(|e| !e.2.contains("leaver@") && !e.3.contains("leaver@")),
        "an erased reader's address is not kept in the log"
    );
    let (_, page) = s.get("/admin/audit").await;
    assert!(
        page.contains("محو بيانات قارئ") && page.contains("بدء إرسال"),
        "{page}"
    );
    let (_, filtered) = s.get("/admin/audit?action=reader_erase").await;
    assert!(filtered.contains("محو بيانات قارئ") && !filtered.contains("<td>بدء إرسال</td>"));
});

both_engines!(every_response_carries_the_security_headers, async {
    let t = spawn_app().await;
    add_account(&t, "editor@example.org", Role::Editor).await;
    let s = sign_in(&t, "editor@example.org").await;
    let mut paths: Vec<String> = [
        "/subscribe",
        "/confirm/not-a-token",
        "/unsubscribe/not-a-token",
        "/archive",
        "/health",
        "/metrics",
        "/api/sends/1",
        "/admin",
        "/admin/login",
        "/nothing-here",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    let (_, page) = s.get("/admin").await;
    let css = page
        .split("href=\"/admin/static/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    paths.push(format!("/admin/static/{css}"));
    for path in &paths {
        let r = t.http.get(t.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("'unsafe-eval'"),
            "{path}: {csp}"
        );
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        assert!(
            !script_src.contains("unsafe-inline"),
            "{path}: no inline script"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert_eq!(h.get("referrer-policy").unwrap(), "same-origin", "{path}");
        assert!(
            h.contains_key("strict-transport-security"),
            "{path}: public_url is https"
        );
    }
    // The embeddable form is the one thing another site may frame.
    let r = t.http.get(t.url("/subscribe/embed")).send().await.unwrap();
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert_eq!(
        r.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    // The console's pages are not cached.
    let r = t
        .http
        .get(t.url("/admin"))
        .header(header::COOKIE, format!("{COOKIE}={}", s.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
});

both_engines!(
    the_sign_up_form_takes_people_and_answers_programs_the_same,
    async {
        let t = spawn_app_with("[server]\nmin_fill_time = \"400ms\"").await;
        let page = t.get_text("/subscribe").await;
        let stamp = page
            .split("name=\"t\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            page.contains("name=\"website\""),
            "the honeypot is in the form"
        );
        let embed = t.get_text("/subscribe/embed").await;
        assert!(embed.contains("name=\"website\"") && embed.contains("name=\"t\""));
        let person = form(&[("email", "person@example.net"), ("t", &stamp)]);
        let answers = [
            // A program fills every field, the hidden one too.
            form(&[
                ("email", "bot1@example.net"),
                ("website", "https://spam.example"),
                ("t", &stamp),
            ]),
            // Too fast for a person.
            form(&[("email", "bot2@example.net"), ("t", &stamp)]),
            // A stamp we did not sign.
            form(&[
                ("email", "bot3@example.net"),
                ("t", "1.AAAAAAAAAAAAAAAAAAAAAA"),
            ]),
        ];
        let mut bodies = vec![];
        for body in &answers {
            let r = t.post_form("/subscribe", body).await;
            assert_eq!(r.status(), StatusCode::OK);
            bodies.push(r.text().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = t.post_form("/subscribe", &person).await;
        assert_eq!(r.status(), StatusCode::OK);
        let real = r.text().await.unwrap();
        for b in &bodies {
            assert_eq!(b, &real, "a program gets the answer a person gets");
        }
        t.wait_for_mail_to("person@example.net", 1).await;
        assert_eq!(
            t.dir.scalar("SELECT COUNT(*) FROM subscribers").await,
            1,
            "only the person"
        );
        assert_eq!(t.smtp.count(), 1, "no confirmation for the programs");
    }
);

both_engines!(console_requests_are_bounded_and_read_strictly, async {
    let t = spawn_app().await;
    add_account(&t, "editor@example.org", Role::Editor).await;
    let s = sign_in(&t, "editor@example.org").await;
    let big = "x".repeat(100 * 1024);
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", &big), ("password", "p")]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = s
        .post(
            "/admin/preview/test",
            &[("schedule", "daily"), ("to", &big)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Invalid UTF-8 in a form is refused, not guessed at.
    let r = post_from_page(
        &t,
        "/admin/sends",
        Some(&s.cookie),
        "schedule=%FF&confirm=yes",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM digests").await, 0);
    let r = post_from_page(&t, "/subscribe", None, "email=a%FF@example.net").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
});

/// A multipart body with one file field and the `confirmed` box.
fn multipart(csv: &str, confirmed: bool) -> (String, Vec<u8>) {
    let boundary = "----nashra-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"readers.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n"
    );
    if confirmed {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"confirmed\"\r\n\r\nyes\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

both_engines!(
    an_import_reports_each_bad_row_and_keeps_the_good_ones,
    async {
        let t = spawn_app().await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let csv = "email,name\nsara@example.net,سارة\nnot-an-address,x\nomar@example.net,عمر\nali@example.net,Ali 2\n";
        let (kind, body) = multipart(csv, true);
        let r = t
            .http
            .post(t.url("/admin/readers/import"))
            .header(header::COOKIE, format!("{COOKIE}={}", s.cookie))
            .header("Origin", PUBLIC)
            .header("Content-Type", kind)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        // Issue 15, item 8: Ali is added without the name «Ali 2», and the page says so
        // with what the file said; only the row without an address is turned away.
        // Issue 15, item 18: counted in Arabic («3 قرّاء», «سطر واحد»), not a bare number.
        assert!(
            page.contains("أُضيف <strong>3 قرّاء</strong>، ورُفض سطر واحد."),
            "{page}"
        );
        assert!(
            page.contains("<td>3</td><td><bdi>not-an-address</bdi></td><td>لم يُستورد"),
            "line 3: {page}"
        );
        assert!(
            page.contains("<td>5</td><td><bdi>Ali 2</bdi></td><td>أُضيف القارئ من دون اسم"),
            "line 5: {page}"
        );
        assert!(page.contains("أُضيف قارئ واحد من دون اسم"), "{page}");
        assert!(page.contains("لم تُستورد الأسطر المرفوضة"), "{page}");
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed' AND name = ''")
                .await,
            1
        );
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'")
                .await,
            3
        );
        let sara = t
            .dir
            .scalar("SELECT id FROM subscribers WHERE email = 'sara@example.net'")
            .await;
        let (_, reader) = s.get(&format!("/admin/readers/{sara}")).await;
        assert!(
            reader.contains("أُضيف باستيراد") && reader.contains("readers.csv"),
            "{reader}"
        );
        let log = audit_actions(&t).await;
        let import = log.iter().find(|e| e.1 == "import").expect("audited");
        assert_eq!(import.3, "أُضيف: 3، موجود من قبل: 0، رُفض: 1، مؤكَّدون");
        // A viewer cannot import.
        add_account(&t, "viewer@example.org", Role::Viewer).await;
        let v = sign_in(&t, "viewer@example.org").await;
        let (kind, body) = multipart("email\nx@example.net\n", true);
        let r = t
            .http
            .post(t.url("/admin/readers/import"))
            .header(header::COOKIE, format!("{COOKIE}={}", v.cookie))
            .header("Origin", PUBLIC)
            .header("Content-Type", kind)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM subscribers").await, 3);
        // Where they came from is a filter.
        t.subscribe_and_confirm("walkin@example.net").await;
        let (_, imported) = s.get("/admin/readers?source=import").await;
        assert!(imported.contains("sara@example.net") && !imported.contains("walkin@example.net"));
        let (_, walked_in) = s.get("/admin/readers?source=page&status=confirmed").await;
        assert!(
            walked_in.contains("walkin@example.net") && !walked_in.contains("sara@example.net")
        );
        let (_, by_name) = s.get("/admin/readers?q=%D8%B9%D9%85%D8%B1").await;
        assert!(
            by_name.contains("omar@example.net") && !by_name.contains("sara@example.net"),
            "{by_name}"
        );
        // The export has everyone, from the console as from the command line.
        let r = s.post("/admin/readers/export.csv", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let csv = r.text().await.unwrap();
        assert!(
            csv.starts_with("email,name,status") && csv.contains("omar@example.net,عمر,confirmed"),
            "{csv}"
        );
    }
);

both_engines!(
    a_readers_page_shows_their_consent_history_and_erasure_leaves_nothing,
    async {
        let t = spawn_app().await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        t.subscribe_and_confirm("reader@example.net").await;
        let id = t.dir.scalar("SELECT id FROM subscribers").await;
        let msg = {
            let sent = t.send_now().await;
            t.wait_send(sent).await;
            t.wait_for_mail_to("reader@example.net", 2).await
        };
        let r = t
            .http
            .post(t.local(&unsubscribe_link(&msg)))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let (_, page) = s.get(&format!("/admin/readers/{id}")).await;
        let signed = page.find("<strong>اشترك</strong>").expect("sign-up");
        let confirmed = page
            .find("<strong>أكّد اشتراكه</strong>")
            .expect("confirmation");
        let left = page
            .find("<strong>ألغى اشتراكه</strong>")
            .expect("departure");
        assert!(signed < confirmed && confirmed < left, "in order");
        assert!(
            page.contains("زر إلغاء الاشتراك في برنامج البريد"),
            "how they left, in words"
        );
        // Erasure asks first.
        let (status, confirm) = s.get(&format!("/admin/readers/{id}/erase")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(confirm.contains("لا يمكن التراجع"));
        s.post_to(&format!("/admin/readers/{id}/erase"), &[]).await;
        assert_eq!(
            t.dir.scalar("SELECT COUNT(*) FROM subscribers").await,
            1,
            "not without the box"
        );
        s.post_to(&format!("/admin/readers/{id}/erase"), &[("confirm", "yes")])
            .await;
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM subscribers").await, 0);
        assert_eq!(
            t.dir
                .scalar(&format!(
                    "SELECT COUNT(*) FROM consent_events WHERE subscriber_id = {id}"
                ))
                .await,
            0
        );
        assert_eq!(
            s.get(&format!("/admin/readers/{id}")).await.0,
            StatusCode::NOT_FOUND
        );
    }
);

both_engines!(
    an_excluded_article_stays_out_and_a_paused_schedule_lets_its_slot_pass,
    async {
        let t = spawn_app().await;
        t.subscribe_and_confirm("reader@example.net").await;
        t.add_article("https://example.org/a/keep", "خبر يبقى", "ملخص")
            .await;
        t.add_article("https://example.org/a/drop", "خبر يُستبعد", "ملخص")
            .await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let drop = t
            .dir
            .scalar("SELECT id FROM articles WHERE url LIKE '%drop'")
            .await;
        s.post_to(
            &format!("/admin/articles/{drop}/exclude"),
            &[("schedule", "daily")],
        )
        .await;
        let (_, articles) = s.get("/admin/articles").await;
        let excluded_at = articles.find("مستبعدة").expect("an excluded list");
        assert!(articles[excluded_at..].contains("خبر يُستبعد"));
        assert!(!articles[..excluded_at].contains("خبر يُستبعد"));
        let (_, preview) = s.get("/admin/preview").await;
        assert!(preview.contains("خبر يبقى") && !preview.contains("خبر يُستبعد"));

        // Paused: the slot passes, nothing is sent, the articles wait.
        s.post_to("/admin/schedules/daily/pause", &[]).await;
        let (_, schedules) = s.get("/admin/schedules").await;
        assert!(schedules.contains("استأنف الجدول"));
        let slot = chrono::Utc::now().timestamp_millis();
        assert_eq!(
            t.app.fire_schedule("daily", slot).await.unwrap(),
            DigestOutcome::Paused
        );
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM digests").await, 0);
        s.post_to("/admin/schedules/daily/resume", &[]).await;
        let out = t.app.fire_schedule("daily", slot + 60_000).await.unwrap();
        let DigestOutcome::Created { id, .. } = out else {
            panic!("{out:?}")
        };
        t.wait_send(id).await;
        let msg = t.wait_for_mail_to("reader@example.net", 2).await;
        let text = String::from_utf8_lossy(&msg.data).to_string();
        let parsed = parse(&msg);
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("خبر يبقى"), "{text}");
        assert!(!html.contains("خبر يُستبعد"));
    }
);

both_engines!(
    a_send_page_shows_progress_failures_and_retries_them,
    async {
        let t = spawn_app_with("[delivery]\nmax_attempts = 1").await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        for r in ["a@example.net", "b@example.net", "refused@example.net"] {
            t.subscribe_and_confirm(r).await;
        }
        t.smtp.fault(
            "refused@example.net",
            crate::smtp::Fault::Code(550),
            usize::MAX,
        );
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let to = s
            .post_to("/admin/sends", &[("schedule", "daily"), ("confirm", "yes")])
            .await;
        let id: i64 = to.trim_start_matches("/admin/sends/").parse().unwrap();
        t.wait_send(id).await;
        let (status, json) = s.get(&format!("/admin/sends/{id}/progress")).await;
        assert_eq!(status, StatusCode::OK);
        let p: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(p["status"], "done");
        assert_eq!(p["status_label"], "اكتمل");
        assert_eq!(p["sent_text"], "2");
        assert_eq!(p["failed_text"], "1");
        let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert!(
            page.contains("refused@example.net") && page.contains("550"),
            "{page}"
        );
        let (_, dashboard) = s.get("/admin").await;
        assert!(dashboard.contains(&format!("/admin/sends/{id}")));
        t.smtp
            .fault("refused@example.net", crate::smtp::Fault::Code(550), 0);
        let back = s.post_to(&format!("/admin/sends/{id}/retry"), &[]).await;
        assert_eq!(back, format!("/admin/sends/{id}?done=retried"));
        t.wait_for_mail_to("refused@example.net", 2).await;
        let v = t.wait_send(id).await;
        assert_eq!(v["failed"], 0);
        // Nothing left to retry: said so, nothing changes.
        let back = s.post_to(&format!("/admin/sends/{id}/retry"), &[]).await;
        assert!(back.ends_with("done=nothing_to_retry"), "{back}");
    }
);

both_engines!(two_factor_sign_in, async {
    let t = spawn_app().await;
    add_account(&t, "owner@example.org", Role::Owner).await;
    let s = sign_in(&t, "owner@example.org").await;
    let (_, page) = s.get("/admin/account").await;
    let secret = page
        .split("name=\"secret\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let now = || chrono::Utc::now().timestamp();
    let code = nashra::auth::totp::code_at(&secret, now()).unwrap();
    let r = s
        .post(
            "/admin/account/totp/on",
            &[("secret", &secret), ("code", "000000"), ("proof", PASSWORD)],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong code does not turn it on"
    );
    s.post_to(
        "/admin/account/totp/on",
        &[("secret", &secret), ("code", &code), ("proof", PASSWORD)],
    )
    .await;
    s.post_to("/admin/logout", &[]).await;
    // The password alone opens only the code step.
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "owner@example.org"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(location(&r), "/admin/login/code");
    let pending = cookie_value(&set_cookie(&r).unwrap());
    let half = Session {
        t: &t,
        cookie: pending.clone(),
    };
    let (status, _) = half.get("/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let r = post_from_page(
        &t,
        "/admin/login/code",
        Some(&pending),
        &form(&[("code", "123456")]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The next step's code (clocks drift, so it is taken): the one that turned the factor
    // on is used up.
    let code = nashra::auth::totp::code_at(&secret, now() + 30).unwrap();
    let r = post_from_page(
        &t,
        "/admin/login/code",
        Some(&pending),
        &form(&[("code", &code)]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let full = cookie_value(&set_cookie(&r).unwrap());
    assert_ne!(full, pending, "a new session id once the code is right");
    assert_eq!(half.get("/admin").await.0, StatusCode::SEE_OTHER);
    let done = Session {
        t: &t,
        cookie: full,
    };
    assert_eq!(done.get("/admin").await.0, StatusCode::OK);
    let log = audit_actions(&t).await;
    assert!(has_action(&log, "owner@example.org", "totp_on"));
    assert!(
        log.iter()
            .any(|e| e.1 == "login" && e.3 == "بالتحقق بخطوتين")
    );
});

both_engines!(
    a_viewers_token_cannot_page_out_the_readers_and_api_writes_are_audited,
    async {
        let t = spawn_app().await;
        t.subscribe_and_confirm("reader@example.net").await;
        add_account(&t, "owner@example.org", Role::Owner).await;
        let owner = sign_in(&t, "owner@example.org").await;
        let make = |name: &'static str, role: &'static str| {
            let owner = &owner;
            async move {
                let page = owner
                    .post("/admin/tokens", &[("name", name), ("role", role)])
                    .await
                    .text()
                    .await
                    .unwrap();
                let start = page.find("nsh_").expect("the token is shown");
                page[start..].split('<').next().unwrap().to_owned()
            }
        };
        let viewer = make("dashboard", "viewer").await;
        let editor = make("cms", "editor").await;
        let get =
            |token: &str, path: &str| t.http.get(t.url(path)).bearer_auth(token.to_owned()).send();
        // Every reader, page by page, is the export's job: an editor's, and audited.
        for path in [
            "/api/subscribers",
            "/api/subscribers?page=2",
            "/api/subscribers?status=confirmed&q=reader%40example",
        ] {
            let r = get(&viewer, path).await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "viewer token: {path}");
            let body = r.text().await.unwrap();
            assert!(!body.contains("reader@example.net"), "{body}");
        }
        let r = get(&editor, "/api/subscribers?q=reader%40example")
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        assert_eq!(page["subscribers"][0]["email"], "reader@example.net");
        let log = audit_actions(&t).await;
        let listed: Vec<_> = log.iter().filter(|e| e.1 == "readers_list").collect();
        assert_eq!(listed.len(), 1, "{log:?}");
        assert_eq!(listed[0].0, "token:cms");
        assert!(
            listed[0].3.contains("مع بحث") && !listed[0].3.contains("@example"),
            "the search text is not kept: {listed:?}"
        );

        // Pushing an article and polling the feeds leave an entry too.
        let r = t
            .http
            .post(t.url("/api/articles"))
            .bearer_auth(&editor)
            .json(&serde_json::json!({"url": "https://example.org/a/9", "title": "خبر"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let r = t
            .http
            .post(t.url("/api/ingest"))
            .bearer_auth(&editor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let log = audit_actions(&t).await;
        let pushed = log
            .iter()
            .find(|e| e.1 == "article_push")
            .expect("the push is audited");
        assert_eq!(
            (pushed.0.as_str(), pushed.2.clone()),
            ("token:cms", format!("article:{id}"))
        );
        assert!(has_action(&log, "token:cms", "ingest"), "{log:?}");
        let (_, audit) = owner.get("/admin/audit").await;
        assert!(
            audit.contains("إضافة مقال عبر الواجهة البرمجية")
                && audit.contains("قراءة قائمة القرّاء عبر الواجهة البرمجية"),
            "{audit}"
        );
    }
);

both_engines!(tokens_of_a_removed_account_stop_working, async {
    let t = spawn_app().await;
    add_account(&t, "owner@example.org", Role::Owner).await;
    add_account(&t, "leaver@example.org", Role::Owner).await;
    add_account(&t, "ghost@example.org", Role::Owner).await;
    let token_of = |who: &'static str| {
        let t = &t;
        async move {
            let s = sign_in(t, who).await;
            let page = s
                .post("/admin/tokens", &[("name", who), ("role", "editor")])
                .await
                .text()
                .await
                .unwrap();
            let start = page.find("nsh_").expect("the token is shown");
            page[start..].split('<').next().unwrap().to_owned()
        }
    };
    let kept = token_of("owner@example.org").await;
    let leaver = token_of("leaver@example.org").await;
    let ghost = token_of("ghost@example.org").await;
    let status = |token: String| {
        let t = &t;
        async move {
            t.http
                .get(t.url("/api/sends/1"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for token in [&kept, &leaver, &ghost] {
        assert_eq!(status(token.clone()).await, StatusCode::NOT_FOUND, "works");
    }
    // Removed in the console: the account's tokens are revoked with it.
    let owner = sign_in(&t, "owner@example.org").await;
    let id = t
        .dir
        .scalar("SELECT id FROM admins WHERE email = 'leaver@example.org'")
        .await;
    owner
        .post_to(&format!("/admin/accounts/{id}/remove"), &[])
        .await;
    assert_eq!(status(leaver).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.dir
            .scalar("SELECT COUNT(*) FROM api_tokens WHERE created_by = 'leaver@example.org' AND revoked_at IS NOT NULL")
            .await,
        1,
        "the console lists it as revoked"
    );
    // Removed before removals revoked tokens (straight from the table): refused as well.
    t.dir
        .exec("DELETE FROM admins WHERE email = 'ghost@example.org'")
        .await;
    assert_eq!(status(ghost).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(kept).await,
        StatusCode::NOT_FOUND,
        "others keep theirs"
    );
});

both_engines!(the_csv_export_is_a_post_from_our_own_pages, async {
    let t = spawn_app().await;
    t.subscribe_and_confirm("reader@example.net").await;
    add_account(&t, "editor@example.org", Role::Editor).await;
    let s = sign_in(&t, "editor@example.org").await;
    let exports = || t.app.store.audit_log(None, Some("export"), 100);
    // A link or an image on another site is a GET: it downloads nothing.
    let (status, body) = s.get("/admin/readers/export.csv").await;
    assert_ne!(status, StatusCode::OK);
    assert!(!body.contains("reader@example.net"), "{body}");
    // A cross-site form is refused like every console POST.
    for (k, v) in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "https://evil.example"),
    ] {
        let r = t
            .http
            .post(t.url("/admin/readers/export.csv"))
            .header(header::COOKIE, format!("{COOKIE}={}", s.cookie))
            .header(k, v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{k}: {v}");
        assert!(!r.text().await.unwrap().contains("reader@example.net"));
    }
    assert!(exports().await.unwrap().is_empty());
    // The readers page's button is a form that posts from our page.
    let (_, page) = s.get("/admin/readers").await;
    assert!(
        page.contains(r#"<form method="post" action="/admin/readers/export.csv">"#),
        "{page}"
    );
    let r = s.post("/admin/readers/export.csv", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(r.text().await.unwrap().contains("reader@example.net"));
    assert_eq!(exports().await.unwrap().len(), 1);
});

both_engines!(the_session_cookie_is_host_prefixed_under_https, async {
    let t = spawn_app().await;
    add_account(&t, "editor@example.org", Role::Editor).await;
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "editor@example.org"), ("password", PASSWORD)]),
    )
    .await;
    let cookie = set_cookie(&r).expect("a session cookie");
    assert!(cookie.starts_with("__Host-nashra_session="), "{cookie}");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for a in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(attrs.contains(&a), "{a}: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let value = cookie_value(&cookie);
    let s = Session {
        t: &t,
        cookie: value.clone(),
    };
    assert_eq!(s.get("/admin").await.0, StatusCode::OK);
    // The unprefixed name opens nothing here (a sibling subdomain could set that one).
    let r = t
        .http
        .get(t.url("/admin"))
        .header(header::COOKIE, format!("nashra_session={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Over plain http (a developer's machine) the browser would refuse the prefix.
    let home = spawn_at_home("").await;
    add_account(&home, "editor@example.org", Role::Editor).await;
    let r = home
        .http
        .post(home.url("/admin/login"))
        .header("Sec-Fetch-Site", "same-origin")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", "editor@example.org"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    let plain = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("nashra_session="))
        .expect("the plain cookie")
        .to_owned();
    assert!(
        plain.contains("Path=/admin") && !plain.contains("Secure"),
        "{plain}"
    );
});

/// The secret the account page offers.
fn offered_secret(page: &str) -> String {
    page.split("name=\"secret\" value=\"")
        .nth(1)
        .expect("a secret on offer")
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

both_engines!(
    changing_or_turning_off_the_second_factor_asks_for_the_password_or_code,
    async {
        let t = spawn_app().await;
        add_account(&t, "owner@example.org", Role::Owner).await;
        let s = sign_in(&t, "owner@example.org").await;
        let stored = || {
            t.dir
                .scalar("SELECT COUNT(*) FROM admins WHERE totp_secret IS NOT NULL")
        };
        let (_, page) = s.get("/admin/account").await;
        assert!(page.contains("name=\"proof\""), "{page}");
        let first = offered_secret(&page);
        let code = nashra::auth::totp::code_at(&first, unix_now()).unwrap();
        // The session alone, or with a wrong password: nothing changes.
        for proof in ["", "not the password at all"] {
            let r = s
                .post(
                    "/admin/account/totp/on",
                    &[("secret", &first), ("code", &code), ("proof", proof)],
                )
                .await;
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{proof:?}");
            assert!(r.text().await.unwrap().contains("لم نتحقق منك"));
        }
        assert_eq!(stored().await, 0);
        s.post_to(
            "/admin/account/totp/on",
            &[("secret", &first), ("code", &code), ("proof", PASSWORD)],
        )
        .await;
        assert_eq!(stored().await, 1);
        // Replacing it (a cookie thief's own authenticator) needs the proof too.
        let other = nashra::auth::totp::new_secret();
        let other_code = nashra::auth::totp::code_at(&other, unix_now()).unwrap();
        let r = s
            .post(
                "/admin/account/totp/on",
                &[("secret", &other), ("code", &other_code), ("proof", "")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let kept = t
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM admins WHERE totp_secret = '{first}'"
            ))
            .await;
        assert_eq!(kept, 1, "the owner's factor stays");
        // Off: not without the proof; with the password it goes.
        let r = s.post("/admin/account/totp/off", &[("proof", "")]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(stored().await, 1);
        s.post_to("/admin/account/totp/off", &[("proof", PASSWORD)])
            .await;
        assert_eq!(stored().await, 0);
        let log = audit_actions(&t).await;
        assert!(
            has_action(&log, "owner@example.org", "reauth_failed"),
            "{log:?}"
        );
        assert!(has_action(&log, "owner@example.org", "totp_off"), "{log:?}");
    }
);

both_engines!(
    a_code_once_used_is_refused_for_the_rest_of_its_window,
    async {
        let t = spawn_app_with("[security]\nlogin_attempts = 10").await;
        add_account(&t, "owner@example.org", Role::Owner).await;
        let s = sign_in(&t, "owner@example.org").await;
        let (_, page) = s.get("/admin/account").await;
        let secret = offered_secret(&page);
        let now = unix_now();
        let used = nashra::auth::totp::code_at(&secret, now).unwrap();
        s.post_to(
            "/admin/account/totp/on",
            &[("secret", &secret), ("code", &used), ("proof", PASSWORD)],
        )
        .await;
        let code_step = |code: String| {
            let t = &t;
            async move {
                let r = post_from_page(
                    t,
                    "/admin/login",
                    None,
                    &form(&[("email", "owner@example.org"), ("password", PASSWORD)]),
                )
                .await;
                assert_eq!(location(&r), "/admin/login/code");
                let pending = cookie_value(&set_cookie(&r).unwrap());
                post_from_page(
                    t,
                    "/admin/login/code",
                    Some(&pending),
                    &form(&[("code", &code)]),
                )
                .await
                .status()
            }
        };
        // The code that turned the factor on, seen over a shoulder: refused.
        assert_eq!(code_step(used.clone()).await, StatusCode::UNAUTHORIZED);
        let next = nashra::auth::totp::code_at(&secret, now + 30).unwrap();
        assert_eq!(code_step(next.clone()).await, StatusCode::SEE_OTHER);
        // The same code again, within its window: refused.
        assert_eq!(code_step(next).await, StatusCode::UNAUTHORIZED);
    }
);

both_engines!(
    the_password_forms_check_locks_like_signing_in_and_is_audited,
    async {
        let t = spawn_app_with("[security]\nlogin_attempts = 3\nlockout = \"1h\"").await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        let s = sign_in(&t, "desk@example.org").await;
        for _ in 0..2 {
            let r = s
                .post(
                    "/admin/account/password",
                    &[
                        ("current", "a guess at the password"),
                        ("new", "a new long password"),
                    ],
                )
                .await;
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("كلمة المرور الحالية غير صحيحة")
            );
        }
        // The third wrong answer locks the account and ends its sessions, this one too.
        let r = s
            .post(
                "/admin/account/password",
                &[("current", "a third guess"), ("new", "a new long password")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("قُفل الحساب"));
        assert_eq!(s.get("/admin").await.0, StatusCode::SEE_OTHER);
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "locked");
        let log = audit_actions(&t).await;
        let failed = log
            .iter()
            .filter(|e| e.0 == "desk@example.org" && e.1 == "reauth_failed")
            .count();
        assert_eq!(failed, 2, "{log:?}");
        assert!(has_action(&log, "desk@example.org", "account_locked"));
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM admins WHERE password_hash LIKE '$argon2id$%' AND locked_until > 0")
                .await,
            1
        );
    }
);

both_engines!(an_owner_resets_a_lost_second_factor, async {
    let t = spawn_app().await;
    add_account(&t, "owner@example.org", Role::Owner).await;
    add_account(&t, "desk@example.org", Role::Editor).await;
    let secret = nashra::auth::totp::new_secret();
    t.dir
        .exec(&format!(
            "UPDATE admins SET totp_secret = '{secret}' WHERE email IN ('desk@example.org', 'owner@example.org')"
        ))
        .await;
    let desk = t
        .dir
        .scalar("SELECT id FROM admins WHERE email = 'desk@example.org'")
        .await;
    let owner_id = t
        .dir
        .scalar("SELECT id FROM admins WHERE email = 'owner@example.org'")
        .await;
    // The owner signs in with the factor.
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "owner@example.org"), ("password", PASSWORD)]),
    )
    .await;
    let pending = cookie_value(&set_cookie(&r).unwrap());
    let code = nashra::auth::totp::code_at(&secret, unix_now()).unwrap();
    let r = post_from_page(
        &t,
        "/admin/login/code",
        Some(&pending),
        &form(&[("code", &code)]),
    )
    .await;
    let owner = Session {
        t: &t,
        cookie: cookie_value(&set_cookie(&r).unwrap()),
    };
    let (_, page) = owner.get("/admin/accounts").await;
    assert!(
        page.contains(&format!("/admin/accounts/{desk}/totp-reset"))
            && !page.contains(&format!("/admin/accounts/{owner_id}/totp-reset")),
        "a button for others, not for oneself: {page}"
    );
    // Not one's own (that is «حسابي», with proof).
    let r = owner
        .post(&format!("/admin/accounts/{owner_id}/totp-reset"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let to = owner
        .post_to(&format!("/admin/accounts/{desk}/totp-reset"), &[])
        .await;
    assert_eq!(to, "/admin/accounts?done=totp_reset");
    assert_eq!(
        t.dir
            .scalar("SELECT COUNT(*) FROM admins WHERE totp_secret IS NULL")
            .await,
        1
    );
    // The desk signs in with the password alone now.
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(location(&r), "/admin");
    let log = audit_actions(&t).await;
    let reset = log.iter().find(|e| e.1 == "totp_reset").expect("audited");
    assert_eq!(
        (reset.0.as_str(), reset.2.clone()),
        ("owner@example.org", format!("account:{desk}"))
    );
    let (_, audit) = owner.get("/admin/audit").await;
    assert!(audit.contains("إعادة ضبط التحقق بخطوتين لحساب"), "{audit}");
    // An editor cannot.
    let d = Session {
        t: &t,
        cookie: cookie_value(&set_cookie(&r).unwrap()),
    };
    let r = d
        .post(&format!("/admin/accounts/{owner_id}/totp-reset"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
});

both_engines!(schedules_read_as_readers_see_them_in_the_console, async {
    // Issue 15, item 15: «يومية», not `daily`; crontab in words.
    let t = spawn_app_with(
        "[newsletter]\ndigits = \"arabic\"\n\
         [[schedules]]\nname = \"daily\"\nlabel = \"يومية\"\ncron = \"0 7 * * *\"\n\
         timezone = \"Asia/Baghdad\"\nsubject = \"نشرة اليوم\"\n\
         [[schedules]]\nname = \"weekly\"\nlabel = \"أسبوعية\"\ncron = \"30 18 * * 5\"\n\
         timezone = \"Asia/Baghdad\"\nsubject = \"نشرة الأسبوع\"\n",
    )
    .await;
    t.add_article("https://example.org/a/1", "خبر", "ملخص")
        .await;
    t.subscribe_and_confirm("reader@example.net").await;
    add_account(&t, "editor@example.org", Role::Editor).await;
    let s = sign_in(&t, "editor@example.org").await;
    let (_, page) = s.get("/admin/schedules").await;
    assert!(page.contains("<h2>يومية "), "{page}");
    assert!(page.contains("كل يوم ٧:٠٠ صباحاً بتوقيت بغداد"), "{page}");
    assert!(page.contains("كل جمعة ٦:٣٠ مساءً بتوقيت بغداد"), "{page}");
    let to = s
        .post_to(
            "/admin/sends",
            &[("schedule", "weekly"), ("confirm", "yes")],
        )
        .await;
    t.wait_send(to.trim_start_matches("/admin/sends/").parse().unwrap())
        .await;
    for (path, both) in [
        ("/admin/sends", false),
        (to.as_str(), false),
        ("/admin", true),
        ("/admin/articles", true),
    ] {
        let (status, page) = s.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            page.contains("أسبوعية") && (!both || page.contains("يومية")),
            "{path} names the schedules as readers see them:\n{page}"
        );
        assert!(!page.contains(">weekly<"), "{path}: {page}");
    }
});

both_engines!(a_test_send_to_several_addresses_is_one_marked_send, async {
    // Issue 15, item 17.
    let t = spawn_app().await;
    t.add_article("https://example.org/a/1", "خبر", "ملخص")
        .await;
    add_account(&t, "editor@example.org", Role::Editor).await;
    let s = sign_in(&t, "editor@example.org").await;
    let r = s
        .post(
            "/admin/preview/test",
            &[
                ("schedule", "daily"),
                ("to", "desk@example.org\nchief@example.org"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let desk = t.wait_for_mail_to("desk@example.org", 1).await;
    let chief = t.wait_for_mail_to("chief@example.org", 1).await;
    for m in [&desk, &chief] {
        let subject = parse(m).subject().unwrap().to_owned();
        assert!(subject.starts_with("[تجريبي] "), "{subject}");
    }
    assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM digests").await, 1);
    let (_, sends) = s.get("/admin/sends").await;
    assert_eq!(
        sends.matches("<a href=\"/admin/sends/").count(),
        1,
        "one row: {sends}"
    );
    let id = t.dir.scalar("SELECT id FROM digests").await;
    let v = t.wait_send(id).await;
    assert_eq!(
        (v["total"].as_i64(), v["sent"].as_i64()),
        (Some(2), Some(2)),
        "{v}"
    );
    let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
    assert!(
        page.contains(
            "<span dir=\"ltr\">desk@example.org</span>، <span dir=\"ltr\">chief@example.org</span>"
        ),
        "{page}"
    );
    // The test's preferences link opens a page of its own, not the unsubscribe one.
    let text = parse(&desk).body_text(0).unwrap().to_string();
    let prefs = text
        .lines()
        .find(|l| l.contains("/preferences/"))
        .expect("a preferences link")
        .trim()
        .to_owned();
    let r = t.http.get(t.local(&prefs)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("رسالة تجريبية"), "{page}");
    assert!(!page.contains("/unsubscribe/"), "{page}");
});

both_engines!(the_console_speaks_to_the_editor_in_arabic, async {
    // Issue 15, item 19.
    let t = spawn_app_with(
        "[newsletter]\ndigits = \"arabic\"\n\
         [[sections]]\nslug = \"politics\"\nname = \"سياسة\"\ncategories = [\"سياسة\"]\n\
         [[sections]]\nslug = \"sport\"\nname = \"رياضة\"\ncategories = [\"رياضة\"]\n",
    )
    .await;
    for (i, r) in [
        "all@example.net",
        "pol@example.net",
        "spo@example.net",
        "left@example.net",
    ]
    .iter()
    .enumerate()
    {
        let extra = match i {
            1 => "&section=politics",
            2 => "&section=sport",
            _ => "",
        };
        let body = format!("email={}{extra}", r.replace('@', "%40"));
        assert_eq!(t.post_form("/subscribe", &body).await.status(), 200);
        let m = t.wait_for_mail_to(r, 1).await;
        t.confirm(&confirm_link(&m)).await;
    }
    let r = t
        .admin_post(
            "/api/articles",
            serde_json::json!({"url": "https://example.org/p/1", "title": "خبر سياسي", "section": "politics"}),
        )
        .await;
    assert!(r.status().is_success());
    add_account(&t, "editor@example.org", Role::Editor).await;
    let s = sign_in(&t, "editor@example.org").await;
    // «أرسل الآن» says who the send will really reach: the sport reader has nothing new.
    let (_, preview) = s.get("/admin/preview").await;
    assert!(preview.contains("تصل إلى <strong>٣</strong>"), "{preview}");
    assert!(preview.contains("<li>النشرة كاملة: ٢</li>"), "{preview}");
    assert!(preview.contains("<li>سياسة: ١</li>"), "{preview}");
    assert!(
        preview.contains("لا جديد في أقسامهم، فلا تصلهم هذه المرة: ١"),
        "{preview}"
    );
    let to = s
        .post_to("/admin/sends", &[("schedule", "daily"), ("confirm", "yes")])
        .await;
    let id: i64 = to.trim_start_matches("/admin/sends/").parse().unwrap();
    let v = t.wait_send(id).await;
    assert_eq!(v["total"], 3, "the count the page gave: {v}");
    // A reader leaves with the mail client's button.
    let m = t.wait_for_mail_to("left@example.net", 2).await;
    let r = t
        .http
        .post(t.local(&unsubscribe_link(&m)))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reader = t.reader_id("left@example.net").await;
    let (_, page) = s.get(&format!("/admin/readers/{reader}")).await;
    assert!(
        page.contains("زر إلغاء الاشتراك في برنامج البريد") && !page.contains(">one-click<"),
        "{page}"
    );
    // The audit log names what it is about and what happened in Arabic.
    let (_, audit) = s.get("/admin/audit").await;
    assert!(audit.contains("الإرسال رقم ١"), "{audit}");
    assert!(audit.contains("يومية — عدد القرّاء: ٣"), "{audit}");
    assert!(
        !audit.contains(">send:") && !audit.contains("recipients"),
        "{audit}"
    );
});

/// Readers from `rows` (address, name), confirmed, as an import adds them.
async fn add_readers(t: &TestApp, rows: &[(&str, &str)]) {
    let rows: Vec<_> = rows
        .iter()
        .map(|(e, n)| {
            (
                nashra::domain::SubscriberEmail::parse(e).unwrap(),
                nashra::domain::SubscriberName::parse(n).unwrap(),
            )
        })
        .collect();
    t.app.store.import(&rows, true, "import").await.unwrap();
}

/// The addresses the console's readers page lists for `q`, and the page.
async fn console_search(s: &Session<'_>, q: &str) -> (Vec<String>, String) {
    let (status, page) = s
        .get(&format!("/admin/readers?{}", form(&[("q", q)])))
        .await;
    assert_eq!(status, StatusCode::OK, "q={q}");
    // Each row links to the reader: `<a href="/admin/readers/7"><span dir="ltr">ADDRESS</span>`.
    let mut found: Vec<String> = page
        .split("<td><a href=\"/admin/readers/")
        .skip(1)
        .filter_map(|row| row.split("<span dir=\"ltr\">").nth(1))
        .filter_map(|p| p.split('<').next())
        .map(str::to_owned)
        .collect();
    found.sort();
    (found, page)
}

/// The addresses `GET /api/subscribers?q=` lists, and its total.
async fn api_search(t: &TestApp, q: &str) -> (Vec<String>, i64) {
    let v = t
        .admin_get(&format!("/api/subscribers?{}", form(&[("q", q)])))
        .await;
    let mut found: Vec<String> = v["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    (found, v["total"].as_i64().unwrap())
}

both_engines!(
    a_reader_is_found_by_part_of_their_address_a_domain_or_a_latin_or_arabic_name,
    async {
        // Issue 15, item 18: the search was an address prefix in byte order (and a name
        // only when the text was not one Latin word), so `gmail`, `@alhal.net` or `Smith`
        // found nobody.
        let t = spawn_app().await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        add_readers(
            &t,
            &[
                ("Sara.Smith@Gmail.com", "Sara Smith"),
                ("omar@alhal.net", "عمر"),
                ("layla@alhal.net", "سارة أحمد"),
                ("john.smith@example.org", ""),
                ("kate@example.org", "Kate SMITH"),
                ("noor@yahoo.com", "نور"),
            ],
        )
        .await;
        // Each search's count line, in Arabic: the noun's form follows the number.
        let count_line = |page: &str| {
            page.split("<p role=\"status\">")
                .nth(1)
                .and_then(|p| p.split("</p>").next())
                .unwrap_or_default()
                .to_owned()
        };
        let cases: &[(&str, &[&str])] = &[
            ("gmail", &["Sara.Smith@gmail.com"]),
            ("@alhal.net", &["layla@alhal.net", "omar@alhal.net"]),
            (
                "smith@",
                &["john.smith@example.org", "Sara.Smith@gmail.com"],
            ),
            (
                "Smith",
                &[
                    "john.smith@example.org",
                    "kate@example.org",
                    "Sara.Smith@gmail.com",
                ],
            ),
            ("kate smith", &["kate@example.org"]),
            ("سارة", &["layla@alhal.net"]),
            ("عمر", &["omar@alhal.net"]),
            (
                "EXAMPLE.ORG",
                &["john.smith@example.org", "kate@example.org"],
            ),
            ("noor@yahoo.com", &["noor@yahoo.com"]),
            ("zzz", &[]),
            // Under three characters: the start of an address, as before.
            ("om", &["omar@alhal.net"]),
            ("al", &[]),
        ];
        for (q, want) in cases {
            let mut want: Vec<String> = want.iter().map(|e| (*e).to_owned()).collect();
            want.sort();
            let (found, page) = console_search(&s, q).await;
            assert_eq!(found, want, "console, q={q}: {page}");
            let counted = match want.len() {
                0 => "لا نتائج",
                1 => "نتيجة واحدة",
                2 => "نتيجتان",
                3 => "3 نتائج",
                n => panic!("no count for {n}"),
            };
            assert_eq!(count_line(&page), counted, "q={q}");
            let (found, total) = api_search(&t, q).await;
            assert_eq!(found, want, "API, q={q}");
            assert_eq!(total, want.len() as i64, "API total, q={q}");
        }

        // The whole list, in the newsroom's digits when they are Arabic-Indic.
        let (_, page) = console_search(&s, "").await;
        assert_eq!(count_line(&page), "6 نتائج");

        // The index follows the readers: a name taken back at a fresh sign-up, an erasure.
        let kate = t.reader_id("kate@example.org").await;
        t.app.store.unsubscribe(kate, "page", 1).await.unwrap();
        t.app
            .store
            .subscribe(
                &nashra::domain::SubscriberEmail::parse("kate@example.org").unwrap(),
                &nashra::domain::SubscriberName::parse("كاتي").unwrap(),
                "page",
                &Default::default(),
                nashra::store::now_ms(),
            )
            .await
            .unwrap();
        assert_eq!(api_search(&t, "Kate SMITH").await.1, 0);
        assert_eq!(api_search(&t, "كاتي").await.0, ["kate@example.org"]);
        let omar = t.reader_id("omar@alhal.net").await;
        assert!(t.app.store.erase_subscriber(omar).await.unwrap());
        assert_eq!(api_search(&t, "alhal").await.0, ["layla@alhal.net"]);
        assert_eq!(api_search(&t, "عمر").await.1, 0);
        let mut many: Vec<(String, String)> = (0..11)
            .map(|i| (format!("many{i}@example.org"), String::new()))
            .collect();
        many.push(("many11@example.org".into(), "Many".into()));
        let many: Vec<(&str, &str)> = many.iter().map(|(e, n)| (e.as_str(), n.as_str())).collect();
        add_readers(&t, &many).await;
        assert_eq!(count_line(&console_search(&s, "many").await.1), "12 نتيجة");
        if engine() == Engine::Sqlite {
            // Nothing of the erased reader stays in SQLite's search index either.
            assert_eq!(
                t.dir
                    .scalar(
                        "SELECT COUNT(*) FROM subscriber_search WHERE subscriber_search MATCH '\"omar@\"'"
                    )
                    .await,
                0
            );
        }
    }
);

both_engines!(
    the_readers_count_is_written_in_the_newsrooms_digits,
    async {
        let t = spawn_app_with("[newsletter]\ndigits = \"arabic\"\n").await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let rows: Vec<(String, String)> = (0..10)
            .map(|i| (format!("r{i}@alhal.net"), String::new()))
            .collect();
        let rows: Vec<(&str, &str)> = rows.iter().map(|(e, n)| (e.as_str(), n.as_str())).collect();
        add_readers(&t, &rows).await;
        let (found, page) = console_search(&s, "alhal").await;
        assert_eq!(found.len(), 10);
        assert!(page.contains("<p role=\"status\">١٠ نتائج</p>"), "{page}");
        let (_, page) = console_search(&s, "nobody").await;
        assert!(page.contains("<p role=\"status\">لا نتائج</p>"), "{page}");
    }
);
