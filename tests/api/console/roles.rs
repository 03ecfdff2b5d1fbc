//! Who may do what: each role within its bounds in the console and the API, API tokens
//! (shown once, stored hashed, scoped, ended with their account) and the audit log that says
//! who did what.

use nashra::store::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

both_engines!(every_role_stays_within_its_bounds, |engine| async move {
    let t = spawn_app(engine).await;
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
    |engine| async move {
        let t = spawn_app(engine).await;
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

both_engines!(the_audit_log_says_who_did_what, |engine| async move {
    let t = spawn_app(engine).await;
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

both_engines!(
    a_viewers_token_cannot_page_out_the_readers_and_api_writes_are_audited,
    |engine| async move {
        let t = spawn_app(engine).await;
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

both_engines!(
    tokens_of_a_removed_account_stop_working,
    |engine| async move {
        let t = spawn_app(engine).await;
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
    }
);
