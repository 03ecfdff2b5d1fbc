//! The store and the confirmation queue under faults: a write that fails, a database file
//! that disappears, a relay that is down when a reader signs up, a restart in between.
//! The faults injected into the SQLite file (a trigger, a deleted file) run on SQLite only and
//! say so (`Engine::Sqlite`).

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::*;

/// The two tests below are about SQLite itself (sqlx's SQLite transactions, a database file
/// deleted under the process), so they run on SQLite only.
async fn db_conn(t: &TestApp) -> sqlx::SqliteConnection {
    let db = t.dir.path().join("nashra.db");
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_write_leaves_no_broken_connection_behind() {
    // Issue 6, item 3. A trigger makes SQLite roll back the whole transaction itself, so the
    // rollback sqlx sends afterwards fails: the connection thinks it is still in a transaction.
    let t = spawn_app(Engine::Sqlite).await;
    let mut c = db_conn(&t).await;
    sqlx::query(
        "CREATE TRIGGER fault BEFORE INSERT ON articles BEGIN SELECT RAISE(ROLLBACK, 'injected fault'); END",
    )
    .execute(&mut c)
    .await
    .unwrap();
    for i in 0..16 {
        let r = t
            .admin_post(
                "/api/articles",
                json!({"url": format!("https://example.org/f{i}/"), "title": "خبر"}),
            )
            .await;
        assert_eq!(r.status(), 500, "the injected fault fails the write");
    }
    sqlx::query("DROP TRIGGER fault")
        .execute(&mut c)
        .await
        .unwrap();
    // Every later write works, on whichever pooled connection it lands.
    for i in 0..40 {
        let r = t
            .admin_post(
                "/api/articles",
                json!({"url": format!("https://example.org/ok{i}/"), "title": "خبر"}),
            )
            .await;
        assert_eq!(r.status(), 201, "article {i}");
        let r = t
            .post_json("/subscribe", json!({"email": format!("s{i}@example.com")}))
            .await;
        assert_eq!(r.status(), 200, "sign-up {i}");
    }
    // And every sign-up answered 200 was stored.
    assert_eq!(t.readers("").await.total, 40);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscribers")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(stored, 40);
}

#[tokio::test]
async fn a_deleted_database_is_reported_and_no_signup_is_answered_ok() {
    // Issue 6, item 9.
    let t = spawn_app(Engine::Sqlite).await;
    let r = t.http.get(t.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(t.dir.path().join(format!("nashra.db{suffix}")));
    }
    // /health reuses its answer for a second (the check writes).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = t.http.get(t.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 503, "monitoring sees it");
    let r = t
        .post_json("/subscribe", json!({"email": "lost@example.com"}))
        .await;
    assert_eq!(
        r.status(),
        503,
        "not 'check your inbox' for a row that is lost"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("يرجى المحاولة"),
        "{v}"
    );
    let r = t.post_form("/subscribe", "email=lost2%40example.com").await;
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("role=\"alert\""));
}

both_engines!(
    a_confirmation_outlives_a_relay_outage_and_a_restart,
    |engine| async move {
        // Issue 6, item 6: the relay is down when the reader signs up, and the process restarts
        // before it comes back. The reader was told to check their inbox: the mail must come.
        let t = spawn_app(engine).await;
        t.smtp.go_down();
        let r = t
            .post_json("/subscribe", json!({"email": "patient@example.com"}))
            .await;
        assert_eq!(r.status(), 200);
        // Signing up again meanwhile queues nothing more: one is on its way.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = t
            .post_json("/subscribe", json!({"email": "Patient@example.com"}))
            .await;
        assert_eq!(r.status(), 200);
        let (smtp, dir) = t.stop().await;
        smtp.come_back().await;
        let t = spawn_on(smtp, dir, "").await;
        let m = t
            .wait_for_mail_to_within("patient@example.com", 1, Duration::from_secs(15))
            .await;
        t.confirm(&confirm_link(&m)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(t.smtp.messages_to("patient@example.com").len(), 1);
        assert_eq!(t.readers("status=confirmed").await.total, 1);
    }
);

both_engines!(
    addresses_stored_before_idn_support_are_rewritten_once,
    |engine| async move {
        // Review of issue 6: rows from before A-labels keep a Unicode domain; a restart rewrites
        // them, so an erasure by either spelling finds the reader.
        let t = spawn_app(engine).await;
        t.subscribe_and_confirm("user@xn--mgbh0fb.xn--kgbechtv")
            .await;
        t.dir
        .exec("UPDATE subscribers SET email = 'user@مثال.إختبار', email_norm = 'user@مثال.إختبار'")
        .await;
        t.dir.exec("DELETE FROM data_upgrades").await;
        let (smtp, dir) = t.stop().await;
        let t = spawn_on(smtp, dir, "").await;
        assert_eq!(
            t.admin_status(reqwest::Method::DELETE, "/api/subscribers/user@مثال.إختبار")
                .await,
            200
        );
        assert_eq!(t.readers("").await.total, 0);
    }
);

#[tokio::test]
async fn a_readers_page_that_fails_is_an_arabic_page_not_json() {
    // Issue 8: errors render as a page on page routes.
    let t = spawn_app(Engine::Sqlite).await;
    t.subscribe_and_confirm("reader@example.net").await;
    let id = t.dir.scalar("SELECT id FROM subscribers").await;
    let token = t.app.tokens.unsubscribe(id);
    let mut c = db_conn(&t).await;
    sqlx::query(
        "CREATE TRIGGER fault BEFORE UPDATE ON subscribers BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let r = t
        .http
        .post(t.url(&format!("/unsubscribe/{token}")))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "the mail provider may try again");
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("dir=\"rtl\"") && page.contains("عطل مؤقت"),
        "{page}"
    );
    sqlx::query("DROP TRIGGER fault")
        .execute(&mut c)
        .await
        .unwrap();
    let r = t
        .http
        .post(t.url(&format!("/unsubscribe/{token}")))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
