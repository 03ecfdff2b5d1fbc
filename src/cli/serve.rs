//! `nashra serve`, `worker` and `demo`: the long-running processes, and the zero-setup
//! showcase that fills the outbox with a digest of sample articles before serving.

use anyhow::Context;

use super::send::deliver_until_done;
use crate::{
    app::App,
    config::Settings,
    domain::{SubscriberEmail, SubscriberName},
    feeds,
    render::LinkItem,
    startup::{self, Roles},
    store::{DigestKind, DigestOutcome},
};

/// Web, scheduler, feeds and delivery, or the `roles` asked for, until a signal.
pub(super) async fn serve(settings: Settings, roles: Roles) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    let listener = bind(&app).await?;
    startup::run(app, roles, Some(listener), startup::shutdown_signal()).await
}

/// Delivery only, no HTTP port, until a signal.
pub(super) async fn worker(settings: Settings) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    tracing::info!(engine = app.store.engine(), "worker: delivery only");
    startup::run(app, Roles::WORKER, None, startup::shutdown_signal()).await
}

async fn bind(app: &App) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(app.settings.server.bind)
        .await
        .with_context(|| format!("server.bind: cannot listen on {}", app.settings.server.bind))
}

/// Sample articles and most-read links shipped with the binary.
const SAMPLE_FEED: &str = include_str!("../../samples/feed.xml");
const SAMPLE_MOST_READ: &str = include_str!("../../samples/most-read.xml");
const DEMO_SUBSCRIBER: &str = "qari@example.com";

pub(super) async fn demo(settings: Settings, no_serve: bool) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    let (new, _) = app
        .ingest_bytes(SAMPLE_FEED.as_bytes(), "samples/feed.xml")
        .await?;
    println!("sample articles: {new} new");
    let most_read: Vec<LinkItem> =
        feeds::parse_feed(SAMPLE_MOST_READ.as_bytes(), "samples/most-read.xml")?
            .into_iter()
            .map(|a| LinkItem {
                title: a.title,
                url: a.url,
            })
            .collect();
    *app.most_read_override.lock().expect("not poisoned") = Some(most_read);
    let demo_reader = SubscriberEmail::parse(DEMO_SUBSCRIBER).expect("valid demo address");
    app.store
        .import(
            &[(
                demo_reader,
                SubscriberName::parse("قارئ تجريبي").expect("a valid name"),
            )],
            true,
            "demo",
        )
        .await?;
    // The demo always shows a digest: it sends the sample articles as a fresh "demo" issue.
    let mut sched = app.settings.schedule(None)?.clone();
    sched.name = "demo".into();
    app.store.reset_schedule("demo").await?;
    match app
        .create_digest(&sched, DigestKind::Manual, None, None)
        .await?
    {
        DigestOutcome::Created { id, recipients } => {
            let p = deliver_until_done(&app, id).await?;
            println!("digest {id}: {} of {recipients} delivered", p.sent);
            if app.mailer.transport.is_outbox() {
                let dir = &app.settings.delivery.outbox_dir;
                let newest = std::fs::read_dir(dir)?
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("digest-{id}-"))
                    })
                    .map(|e| e.path())
                    .next();
                if let Some(path) = newest {
                    println!("digest written to {}", path.display());
                }
            }
            println!(
                "web version: {}",
                app.settings.public_url(&format!("/archive/{id}"))
            );
        }
        other => println!("no digest: {other:?}"),
    }
    if no_serve {
        return Ok(());
    }
    println!("sign-up page: {}", app.settings.public_url("/subscribe"));
    let console = app.settings.public_url("/admin");
    if app.store.admins().await?.is_empty() {
        println!(
            "console: {console} (first add an account: nashra admin add you@example.org --role owner)"
        );
    } else {
        println!("console: {console}");
    }
    let listener = bind(&app).await?;
    startup::run(app, Roles::ALL, Some(listener), startup::shutdown_signal()).await
}
