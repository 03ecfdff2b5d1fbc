//! `spawn_app()`: a whole Nashra on port 0 with a fresh SQLite file and a real SMTP server.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use nashra::{app::App, config::Settings};
use serde_json::Value;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::smtp::{Received, TestSmtp};

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const PUBLIC: &str = "https://news.example.org";

pub struct TestApp {
    pub base: String,
    pub app: Arc<App>,
    pub smtp: TestSmtp,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    shutdown: watch::Sender<bool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        nashra::init_tracing();
    }
}

/// The TOML every test app starts from; `extra` is layered after it.
pub fn test_toml(dir: &std::path::Path, smtp: SocketAddr) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "{PUBLIC}"
signups_per_hour = 1000
[database]
url = "sqlite://{db}"
[delivery]
transport = "smtp"
outbox_dir = "{outbox}"
concurrency = 4
retry_after = "100ms"
lease = "5s"
[smtp]
host = "127.0.0.1"
port = {port}
timeout = "1s"
[security]
secret = "test-secret-that-is-long-enough-0123456789"
admin_token = "{ADMIN}"
"#,
        db = dir.join("nashra.db").display(),
        outbox = dir.join("outbox").display(),
        port = smtp.port(),
    )
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

pub async fn spawn_app_with(extra: &str) -> TestApp {
    let smtp = TestSmtp::start().await;
    let dir = tempfile::tempdir().unwrap();
    spawn_on(smtp, dir, extra).await
}

/// Starts an app over an existing directory (its database) and SMTP server: a restart.
pub async fn spawn_on(smtp: TestSmtp, dir: tempfile::TempDir, extra: &str) -> TestApp {
    init_logs();
    let base = test_toml(dir.path(), smtp.addr);
    let settings = Settings::from_toml_layers(&[&base, extra]).expect("test config");
    let app = App::new(settings).await.expect("app starts");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(nashra::app::serve(app.clone(), listener, rx));
    TestApp {
        base,
        app,
        smtp,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        dir,
        shutdown: tx,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Graceful stop; returns the SMTP server and the directory for a restart.
    pub async fn stop(mut self) -> (TestSmtp, tempfile::TempDir) {
        let _ = self.shutdown.send(true);
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        (self.smtp, self.dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A link from a message (public URL) turned into one this test server answers.
    pub fn local(&self, public_link: &str) -> String {
        public_link.replacen(PUBLIC, &self.base, 1)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// An admin POST's JSON answer, whatever its status.
    pub async fn admin_json(&self, path: &str, body: Value) -> Value {
        self.admin_post(path, body).await.json().await.unwrap()
    }

    /// The status an authorised admin request gets.
    pub async fn admin_status(&self, method: reqwest::Method, path: &str) -> reqwest::StatusCode {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// `POST /api/sends/{id}/{action}` (pause, resume, cancel, retry) and its JSON answer.
    pub async fn control(&self, id: i64, action: &str) -> (reqwest::StatusCode, Value) {
        let r = self
            .admin_post(&format!("/api/sends/{id}/{action}"), serde_json::json!({}))
            .await;
        (r.status(), r.json().await.unwrap())
    }

    /// A public page's body.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Every one of `readers` received exactly one message.
    pub fn assert_each_received_once(&self, readers: &[String]) {
        let per = self.smtp.per_recipient();
        for r in readers {
            assert_eq!(per.get(r), Some(&1), "{r}");
        }
    }

    /// Adds an article through the API.
    pub async fn add_article(&self, url: &str, title: &str, summary: &str) {
        let r = self
            .admin_post(
                "/api/articles",
                serde_json::json!({"url": url, "title": title, "summary": summary}),
            )
            .await;
        assert!(r.status().is_success(), "add article: {}", r.status());
    }

    /// Subscribes and confirms `email` through the public pages, returning its confirmation.
    pub async fn subscribe_and_confirm(&self, email: &str) {
        let before = self.smtp.messages_to(email).len();
        let r = self
            .post_json("/subscribe", serde_json::json!({"email": email}))
            .await;
        assert_eq!(r.status(), 200);
        let msg = self.wait_for_mail_to(email, before + 1).await;
        self.confirm(&confirm_link(&msg)).await;
    }

    /// Opens a confirm link as a reader does: the page, then its button (a POST).
    pub async fn confirm(&self, link: &str) {
        let r = self.http.get(self.local(link)).send().await.unwrap();
        assert_eq!(r.status(), 200, "confirm page {link}");
        let page = r.text().await.unwrap();
        assert!(page.contains("method=\"post\""), "{page}");
        let r = self.http.post(self.local(link)).send().await.unwrap();
        assert_eq!(r.status(), 200, "confirm {link}");
    }

    pub async fn wait_for_mail_to(&self, email: &str, n: usize) -> Received {
        self.wait_for_mail_to_within(email, n, Duration::from_secs(10))
            .await
    }

    pub async fn wait_for_mail_to_within(
        &self,
        email: &str,
        n: usize,
        within: Duration,
    ) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msgs = self.smtp.messages_to(email);
            if msgs.len() >= n {
                return msgs[n - 1].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message {n} to {email}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls a send until it is no longer sending.
    pub async fn wait_send(&self, id: i64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.admin_get(&format!("/api/sends/{id}")).await;
            if v["status"] != "sending" && v["status"] != "queued" {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "send {id} never finished: {v}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Triggers a send and returns its id (panics on nothing new).
    pub async fn send_now(&self) -> i64 {
        let r = self.admin_post("/api/sends", serde_json::json!({})).await;
        assert_eq!(r.status(), 202);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }
}

pub fn parse(m: &Received) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(&m.data)
        .expect("a parsable message")
}

pub fn header(m: &Received, name: &str) -> String {
    let text = String::from_utf8_lossy(&m.data);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n ", " ");
    head.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The confirmation link in a confirmation email's text part.
pub fn confirm_link(m: &Received) -> String {
    let msg = parse(m);
    let text = msg.body_text(0).unwrap().to_string();
    text.lines()
        .find(|l| l.contains("/confirm/"))
        .expect("a confirm link")
        .trim()
        .to_owned()
}

/// The one-click URL from List-Unsubscribe.
pub fn unsubscribe_link(m: &Received) -> String {
    let h = header(m, "List-Unsubscribe");
    h.trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned()
}

/// Runs the acceptance checker from ../shared on a message, if it is there.
pub fn check_eml(m: &Received) -> Option<String> {
    let tool =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/check_eml.py");
    if !tool.exists() {
        eprintln!("check_eml.py not found beside the project; skipping that check");
        return None;
    }
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), &m.data).unwrap();
    let out = std::process::Command::new("python3")
        .arg(&tool)
        .arg(f.path())
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "check_eml failed:\n{report}");
    Some(report)
}

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
