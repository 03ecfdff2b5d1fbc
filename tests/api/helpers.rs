//! `spawn_app()`: a whole Nashra on port 0 with a fresh database and a real SMTP server.
//!
//! The engine comes from the test: `both_engines!` runs a test body once on SQLite (a fresh
//! file) and once on PostgreSQL (a fresh database on the server `NASHRA_TEST_POSTGRES_URL`
//! names, dropped afterwards).

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use nashra::{
    app::App,
    config::Settings,
    startup::{self, Roles},
};
use serde_json::Value;
use sqlx::Connection;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::smtp::{Received, TestSmtp};

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const PUBLIC: &str = "https://news.example.org";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    /// The engine the current test runs on (set by `both_engines!`; SQLite otherwise).
    pub static ENGINE: Engine;
}

pub fn engine() -> Engine {
    ENGINE.try_with(|e| *e).unwrap_or(Engine::Sqlite)
}

/// Where one test keeps its data: a directory (outbox, SQLite file, config files) and, on
/// PostgreSQL, a database of its own, dropped with this.
pub struct TestPlace {
    dir: tempfile::TempDir,
    pub db_url: String,
    pg: Option<(String, String)>,
}

impl TestPlace {
    pub async fn new() -> TestPlace {
        let dir = tempfile::tempdir().unwrap();
        match engine() {
            Engine::Sqlite => TestPlace {
                db_url: format!("sqlite://{}", dir.path().join("nashra.db").display()),
                dir,
                pg: None,
            },
            Engine::Postgres => {
                let admin = std::env::var("NASHRA_TEST_POSTGRES_URL")
                    .expect("NASHRA_TEST_POSTGRES_URL names a PostgreSQL server for these tests");
                let name = format!("nashra_t_{}", uuid::Uuid::new_v4().simple());
                let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                TestPlace {
                    db_url: url.to_string(),
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs raw SQL on this test's database (for what no API can do, such as injecting a
    /// fault).
    pub async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.pg {
            None => {
                let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            Some(_) => {
                let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// One integer from raw SQL.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.pg {
            None => {
                let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Some(_) => {
                let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }
}

impl Drop for TestPlace {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs outside async: a thread of its own with a small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            })
        })
        .join();
    }
}

pub struct TestApp {
    pub base: String,
    pub app: Arc<App>,
    pub smtp: TestSmtp,
    pub http: reqwest::Client,
    pub dir: TestPlace,
    shutdown: watch::Sender<bool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        nashra::init_tracing();
    }
}

/// The TOML every test app starts from; `extra` is layered after it.
pub fn test_toml(place: &TestPlace, smtp: SocketAddr) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:0"
public_url = "{PUBLIC}"
signups_per_hour = 1000
[database]
url = "{db}"
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
        db = place.db_url,
        outbox = place.path().join("outbox").display(),
        port = smtp.port(),
    )
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

pub async fn spawn_app_with(extra: &str) -> TestApp {
    let smtp = TestSmtp::start().await;
    spawn_on(smtp, TestPlace::new().await, extra).await
}

/// Starts an app over an existing place (its database) and SMTP server: a restart.
pub async fn spawn_on(smtp: TestSmtp, place: TestPlace, extra: &str) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_listening(smtp, place, extra, listener, false).await
}

/// An app whose `public_url` is its own address, as a browser sees it (cookies, links).
pub async fn spawn_at_home(extra: &str) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_listening(
        TestSmtp::start().await,
        TestPlace::new().await,
        extra,
        listener,
        true,
    )
    .await
}

async fn spawn_listening(
    smtp: TestSmtp,
    place: TestPlace,
    extra: &str,
    listener: TcpListener,
    at_home: bool,
) -> TestApp {
    init_logs();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let home = if at_home {
        format!("[server]\npublic_url = \"{base}\"")
    } else {
        String::new()
    };
    let toml = test_toml(&place, smtp.addr);
    let settings = Settings::from_toml_layers(&[&toml, extra, &home]).expect("test config");
    let app = App::new(settings).await.expect("app starts");
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(startup::run(app.clone(), Roles::ALL, Some(listener), rx));
    TestApp {
        base,
        app,
        smtp,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        dir: place,
        shutdown: tx,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Graceful stop; returns the SMTP server and the place for a restart.
    pub async fn stop(mut self) -> (TestSmtp, TestPlace) {
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

    /// The counters a send's progress is read from agree with its ledger, row by row.
    pub async fn assert_counters_match_the_ledger(&self, id: i64) {
        let p = self.app.store.progress(id).await.unwrap().unwrap();
        for (state, counted) in [
            ("sent", p.sent),
            ("failed", p.failed),
            ("skipped", p.skipped),
            ("cancelled", p.cancelled),
        ] {
            let rows = self
                .dir
                .scalar(&format!(
                    "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state = '{state}'"
                ))
                .await;
            assert_eq!(counted, rows, "send {id}: counter {state}");
        }
        let open = self
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state IN ('pending', 'sending')"
            ))
            .await;
        assert_eq!(p.pending, open, "send {id}: pending");
        let claimed = self
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state = 'sending'"
            ))
            .await;
        assert_eq!(p.in_flight, claimed, "send {id}: in flight");
    }

    /// Polls a send until it is no longer sending.
    pub async fn wait_send(&self, id: i64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.admin_get(&format!("/api/sends/{id}")).await;
            if v["status"] != "sending" && v["status"] != "queued" {
                // A finished send's rows are final: its counters must agree with them.
                if v["status"] == "done" {
                    self.assert_counters_match_the_ledger(id).await;
                }
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

    /// Confirms each reader, sends one digest to all and waits for it: the send's id and
    /// each reader's digest, in order.
    pub async fn send_digest_to(&self, readers: &[&str]) -> (i64, Vec<Received>) {
        for r in readers {
            self.subscribe_and_confirm(r).await;
        }
        self.add_article("https://example.org/1/", "خبر", "نص")
            .await;
        let id = self.send_now().await;
        self.wait_send(id).await;
        let mut msgs = Vec::new();
        for r in readers {
            msgs.push(self.wait_for_mail_to(r, 2).await);
        }
        (id, msgs)
    }

    pub async fn reader_id(&self, email: &str) -> i64 {
        let e = nashra::domain::SubscriberEmail::parse(email).unwrap();
        let id = self.app.store.subscriber_id_by_email(&e).await.unwrap();
        id.unwrap_or_else(|| panic!("no reader {email}"))
    }

    pub async fn status_of(&self, email: &str) -> nashra::store::SubscriberStatus {
        let id = self.reader_id(email).await;
        self.app.store.subscriber(id).await.unwrap().unwrap().status
    }
}

/// A message's Message-ID without its angle brackets.
pub fn message_id(m: &Received) -> String {
    header(m, "Message-ID")
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
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

/// The acceptance checker for messages, kept in the repository (`tools/check_eml.py`) so a
/// fresh clone checks what it claims: a test that cannot run it fails, it never skips.
pub fn checker() -> std::path::PathBuf {
    let tool = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/check_eml.py");
    assert!(tool.exists(), "{} is missing", tool.display());
    tool
}

/// Runs the acceptance checker on a message; panics unless every check passes.
pub fn check_eml(m: &Received) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), &m.data).unwrap();
    let out = std::process::Command::new("python3")
        .arg(checker())
        .arg(f.path())
        .output()
        .expect("python3 runs (scripts/test installs it)");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "check_eml failed:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
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
