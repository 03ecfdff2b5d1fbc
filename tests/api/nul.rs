//! Issue 15, item 2: a NUL in anything from outside. PostgreSQL refuses the character, so
//! it must never reach the store: every route answers a clear 4xx (or takes the item without
//! it), never a 500, on both engines.

use nashra::store::{Role, SubscriberStatus};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn refused(what: &str, status: StatusCode) {
    assert!(
        status.is_client_error(),
        "{what}: a clear 4xx, not {status}"
    );
}

both_engines!(a_nul_in_any_field_is_refused_clearly, |engine| async move {
    let t = spawn_app(engine).await;
    t.subscribe_and_confirm("known@example.com").await;
    let before = t.readers("").await.total;

    // The sign-up form and its JSON twin, field by field.
    for body in [
        "email=a%00b%40example.com",
        "email=ok%40example.com&name=Sara%00",
        "email=ok%40example.com&source=embed%00",
        "email=ok%40example.com&section=sport%00",
        "email=ok%40example.com&article=https%3A%2F%2Fexample.org%2Fa%00%2F",
    ] {
        let r = t.post_form("/subscribe", body).await;
        refused(body, r.status());
    }
    for body in [
        json!({"email": "a\u{0}b@example.com"}),
        json!({"email": "ok@example.com", "name": "Sara\u{0}"}),
        json!({"email": "ok@example.com", "schedule": "daily\u{0}"}),
    ] {
        let r = t.post_json("/subscribe", body.clone()).await;
        refused(&body.to_string(), r.status());
    }
    // Paths and queries, public and admin.
    for path in [
        "/subscribe?section=%00",
        "/subscribe/embed?article=https://example.org/a%00/",
        "/confirm/abc%00def",
        "/unsubscribe/abc%00def",
        "/preferences/abc%00def",
        "/archive?page=%00",
        "/r/abc%00",
    ] {
        let r = t.http.get(t.url(path)).send().await.unwrap();
        refused(path, r.status());
        let page = r.text().await.unwrap();
        assert!(
            page.contains("dir=\"rtl\""),
            "{path}: an Arabic page: {page}"
        );
    }
    let r = t
        .http
        .post(t.url("/unsubscribe/abc%00def"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    refused("one-click with a NUL", r.status());
    for path in ["/api/subscribers?q=%00", "/api/subscribers?status=%00"] {
        let s = t.admin_status(reqwest::Method::GET, path).await;
        refused(path, s);
    }
    let s = t
        .admin_status(
            reqwest::Method::DELETE,
            "/api/subscribers/known%00@example.com",
        )
        .await;
    refused("erasing with a NUL", s);
    // The admin API's JSON bodies.
    for (path, body) in [
        (
            "/api/articles",
            json!({"url": "https://example.org/n/", "title": "خبر\u{0}"}),
        ),
        (
            "/api/articles",
            json!({"url": "https://example.org/n/", "title": "خبر", "tags": ["a\u{0}"]}),
        ),
        ("/api/sends", json!({"test_to": "a\u{0}@example.com"})),
        ("/api/sends", json!({"schedule": "daily\u{0}"})),
    ] {
        let r = t.admin_post(path, body.clone()).await;
        refused(&body.to_string(), r.status());
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["message"].is_string(), "a message that says why: {v}");
    }
    // The console: sign-in and search.
    add_account(&t, "desk@example.org", Role::Editor).await;
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        "email=desk%00%40example.org&password=x",
    )
    .await;
    refused("sign-in with a NUL", r.status());
    let desk = sign_in(&t, "desk@example.org").await;
    let (status, _) = desk.get("/admin/readers?q=%00").await;
    refused("console search with a NUL", status);

    // Nothing changed, and the server still answers.
    assert_eq!(t.readers("").await.total, before);
    assert_eq!(
        t.status_of("known@example.com").await,
        SubscriberStatus::Confirmed
    );
    let r = t.http.get(t.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
});

both_engines!(
    a_feed_item_with_a_nul_is_taken_without_it,
    |engine| async move {
        let t = spawn_app(engine).await;
        let article = nashra::store::NewArticle {
            url: "https://example.org/feed-nul/".into(),
            title: "خبر\u{0} عاجل".into(),
            summary: "نص\u{0}".into(),
            tags: vec!["وسم\u{0}".into()],
            source: "feed".into(),
            ..Default::default()
        };
        let a = nashra::feeds::normalize(article).unwrap();
        assert!(!a.title.contains('\0') && !a.summary.contains('\0'));
        t.app
            .push_article(&nashra::app::Actor::cli(), a)
            .await
            .unwrap();
    }
);
