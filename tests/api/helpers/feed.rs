//! Feeds a test controls: a small HTTP server for `/feed.xml` (and a broken and a down one),
//! and an RSS document built from a few items.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;

/// Serves `/feed.xml` from the test, with content the test can change; `/broken.xml` is a
/// malformed feed and `/down.xml` answers 503.
pub async fn serve_feed(content: Arc<std::sync::Mutex<String>>) -> SocketAddr {
    use axum::{Router, routing::get};
    let app = Router::new()
        .route(
            "/feed.xml",
            get(move || {
                let c = content.clone();
                async move {
                    (
                        [("Content-Type", "application/rss+xml; charset=utf-8")],
                        c.lock().unwrap().clone(),
                    )
                }
            }),
        )
        .route(
            "/broken.xml",
            get(|| async { "<rss><channel><item><title>oops" }),
        )
        .route(
            "/down.xml",
            get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") }),
        );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

/// An RSS 2.0 document with the given (guid, title, description) items.
pub fn rss(items: &[(&str, &str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>الحل نت</title><link>https://example.org/</link><description>d</description>"#,
    );
    for (guid, title, desc) in items {
        s.push_str(&format!(
            "<item><title>{title}</title><link>https://example.org/{guid}/</link><guid>{guid}</guid><pubDate>Tue, 23 Jun 2020 09:15:00 +0300</pubDate><description><![CDATA[{desc}]]></description></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s
}
