//! Articles in: what makes two arrivals the same article, what an article may carry, and the
//! order a digest shows them in.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::helpers::*;

/// Polls one feed now: (new, updated). Feeds are not configured in these tests, so no
/// background poll races the counts.
async fn ingest(t: &TestApp, addr: std::net::SocketAddr) -> (usize, usize) {
    t.app
        .ingest_feed(&format!("http://{addr}/feed.xml"))
        .await
        .unwrap()
}

async fn preview_html(t: &TestApp) -> String {
    let sched = t.app.settings.schedule(None).unwrap();
    t.app.preview(sched).await.unwrap().unwrap().html
}

both_engines!(one_article_whatever_way_it_arrives, |engine| async move {
    // Issue 6, item 8: guid within a feed, canonical URL across sources.
    let feed = Arc::new(Mutex::new(rss(&[("a1", "خبر من الخلاصة", "نص")])));
    let addr = serve_feed(feed.clone()).await;
    let t = spawn_app(engine).await;
    // Pushed by the API without a guid, with tracking parameters and another spelling…
    let r = t
        .admin_post(
            "/api/articles",
            json!({"url": "https://Example.org/a1?utm_source=twitter#top", "title": "خبر من الواجهة"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    // …then seen in the feed with a guid: the same article.
    assert_eq!(ingest(&t, addr).await, (0, 1));
    assert_eq!(t.app.store.article_count().await.unwrap(), 1);
    // An edit in the feed: same guid, new URL. The URL follows.
    feed.lock().unwrap().clone_from(
        &rss(&[("a1", "خبر من الخلاصة (محدّث)", "نص")])
            .replace("https://example.org/a1/", "https://example.org/a1-renamed/"),
    );
    assert_eq!(ingest(&t, addr).await, (0, 1));
    let html = preview_html(&t).await;
    assert!(html.contains("https://example.org/a1-renamed/"), "{html}");
    assert!(
        !html.contains("https://example.org/a1/\""),
        "the old URL is gone"
    );
    assert_eq!(t.app.store.article_count().await.unwrap(), 1);
});

both_engines!(a_guid_is_an_id_within_its_feed_only, |engine| async move {
    // Issue 6, item 8: two items of one feed sharing a guid are two articles (not A's title
    // with B's link), and the same guid in two feeds is two articles.
    let shared = rss(&[
        ("dup", "المقال الأول", "نص أ"),
        ("dup", "المقال الثاني", "نص ب"),
    ])
    .replacen("https://example.org/dup/", "https://example.org/first/", 1)
    .replacen("https://example.org/dup/", "https://example.org/second/", 1);
    let one = serve_feed(Arc::new(Mutex::new(shared))).await;
    let other = serve_feed(Arc::new(Mutex::new(
        rss(&[("dup", "من موقع آخر", "نص")])
            .replace("https://example.org/dup/", "https://other.example/dup/"),
    )))
    .await;
    let t = spawn_app(engine).await;
    assert_eq!(ingest(&t, one).await, (2, 0));
    assert_eq!(ingest(&t, other).await, (1, 0));
    let html = preview_html(&t).await;
    for (title, link) in [
        ("المقال الأول", "https://example.org/first/"),
        ("المقال الثاني", "https://example.org/second/"),
        ("من موقع آخر", "https://other.example/dup/"),
    ] {
        let at = html
            .find(&format!(">{title}</a></h2>"))
            .unwrap_or_else(|| panic!("{title} missing"));
        // The title is the link text of its own URL.
        let before = &html[..at];
        let href = before.rfind("href=\"").unwrap();
        assert!(
            before[href..].starts_with(&format!("href=\"{link}\"")),
            "{title} → {}",
            &before[href..]
        );
    }
    // Polling again finds nothing new.
    assert_eq!(ingest(&t, one).await, (0, 2));
    assert_eq!(ingest(&t, other).await, (0, 1));
});

both_engines!(
    an_article_too_deep_or_too_large_is_refused_clearly,
    |engine| async move {
        // Issue 6, item 4: 80,000 unclosed <div>s took 48 s to accept and 48 s to render.
        let t = spawn_app(engine).await;
        let deep = "<div>".repeat(50_000);
        let r = t
            .admin_post(
                "/api/articles",
                json!({"url": "https://example.org/deep/", "title": "عميق", "content_html": deep}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_article");
        assert!(v["message"].as_str().unwrap().contains("deep"), "{v}");
        let big = format!("<p>{}</p>", "كلمة ".repeat(60_000));
        let r = t
            .admin_post(
                "/api/articles",
                json!({"url": "https://example.org/big/", "title": "كبير", "content_html": big}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains("bytes"), "{v}");
        assert_eq!(t.app.store.article_count().await.unwrap(), 0);
        // In a feed, such an item is skipped and the others arrive.
        let feed = rss(&[
            ("ok", "خبر عادي", "نص"),
            ("deep", "عميق", &"<div>".repeat(5_000)),
        ]);
        let addr = serve_feed(Arc::new(Mutex::new(feed))).await;
        assert_eq!(ingest(&t, addr).await, (1, 0));
    }
);

both_engines!(a_digest_shows_the_newest_first, |engine| async move {
    // Issue 6, item 19: by publication time, whatever order they arrived in.
    let t = spawn_app(engine).await;
    for (slug, title, date) in [
        ("b", "الأقدم", "2026-11-28T08:00:00Z"),
        ("c", "الأحدث", "2026-11-30T08:00:00Z"),
        ("a", "الأوسط", "2026-11-29T08:00:00Z"),
    ] {
        let r = t
            .admin_post(
                "/api/articles",
                json!({"url": format!("https://example.org/{slug}/"), "title": title, "published_at": date}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let html = preview_html(&t).await;
    let pos = |s: &str| html.find(s).unwrap();
    assert!(pos("الأحدث") < pos("الأوسط") && pos("الأوسط") < pos("الأقدم"));
});

/// Log lines written while `f` runs on this thread.
async fn logs_of<F: std::future::Future>(f: F) -> (F::Output, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(sub);
    let out = f.await;
    drop(guard);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

both_engines!(
    a_feed_redirected_to_another_host_or_port_is_logged,
    |engine| async move {
        // Issue 6, item 14.
        let target = serve_feed(Arc::new(Mutex::new(rss(&[("r1", "خبر", "نص")])))).await;
        let app = axum::Router::new().route(
            "/feed.xml",
            axum::routing::get(move || async move {
                axum::response::Redirect::temporary(&format!("http://{target}/feed.xml"))
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let redirecting = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        let t = spawn_app(engine).await;
        let (report, logs) =
            logs_of(t.app.ingest_feed(&format!("http://{redirecting}/feed.xml"))).await;
        assert_eq!(report.unwrap(), (1, 0), "followed");
        assert!(
            logs.contains("feed redirected to another host or port")
                && logs.contains(&target.to_string()),
            "{logs}"
        );
    }
);

both_engines!(
    two_items_with_their_own_guids_and_one_link_stay_two,
    |engine| async move {
        // Review of issue 6: a URL identifies an article across sources, not two items that a
        // feed tells apart by guid.
        let feed = rss(&[
            ("live-1", "تغطية مباشرة ١", "نص"),
            ("live-2", "تغطية مباشرة ٢", "نص"),
        ])
        .replace("https://example.org/live-1/", "https://example.org/live/")
        .replace("https://example.org/live-2/", "https://example.org/live/");
        let addr = serve_feed(Arc::new(Mutex::new(feed))).await;
        let t = spawn_app(engine).await;
        assert_eq!(ingest(&t, addr).await, (2, 0));
        assert_eq!(ingest(&t, addr).await, (0, 2));
        // An API push of that URL without a guid is the same article as one of them.
        let r = t
            .admin_post(
                "/api/articles",
                json!({"url": "https://example.org/live/", "title": "تغطية"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(t.app.store.article_count().await.unwrap(), 2);
    }
);
