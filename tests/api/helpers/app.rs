//! `spawn_app(…)`: a whole Nashra on port 0 over a test's place (its database), with a real
//! SMTP server in the process, and the way to stop it for a restart.

use std::{net::SocketAddr, sync::Arc};

use nashra::{
    app::App,
    config::Settings,
    startup::{self, Roles},
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use super::{
    place::{Engine, TestPlace},
    smtp::TestSmtp,
};

/// The admin token every test app accepts.
pub const ADMIN: &str = "test-admin-token-0123456789";
/// The public URL of a test app (links in messages); `TestApp::local` maps it back.
pub const PUBLIC: &str = "https://news.example.org";

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

/// A test app on `engine` with the test configuration as it is.
pub async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, "").await
}

/// A test app on `engine`, with `extra` TOML layered over the test configuration.
pub async fn spawn_app_with(engine: Engine, extra: &str) -> TestApp {
    let smtp = TestSmtp::start().await;
    spawn_on(smtp, TestPlace::new(engine).await, extra).await
}

/// Starts an app over an existing place (its database) and SMTP server: a restart.
pub async fn spawn_on(smtp: TestSmtp, place: TestPlace, extra: &str) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_listening(smtp, place, extra, listener, false).await
}

/// An app whose `public_url` is its own address, as a browser sees it (cookies, links).
pub async fn spawn_at_home(engine: Engine, extra: &str) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_listening(
        TestSmtp::start().await,
        TestPlace::new(engine).await,
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
}
