//! The application: shared state and the operations the CLI, the web server and the
//! scheduler all call, plus `serve`, which runs them together until shutdown.

use std::sync::Arc;

use anyhow::Context;
use chrono::{TimeZone, Utc};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    config::{Schedule, Settings},
    delivery::{Dispatcher, Mailer},
    domain::{SubscriberEmail, Tokens},
    feeds::{self, IngestReport},
    metrics::Metrics,
    render::{LinkItem, Renderer},
    schedule::CronSchedule,
    store::{DigestKind, DigestOutcome, DigestRequest, NewArticle, RenderedDigest, Store, now_ms},
};

/// Stands in for the digest's own archive URL until its id is known.
pub const WEB_SLOT: &str = "NASHRAxSLOTxWEBxURL";

pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub renderer: Renderer,
    pub mailer: Mailer,
    pub tokens: Tokens,
    pub metrics: Arc<Metrics>,
    pub http: reqwest::Client,
    pub dispatcher: Arc<Dispatcher>,
    /// Limits sign-ups per client address.
    pub signup_limit: Option<crate::web::RateLimiter>,
    /// Most-read links to use instead of fetching `newsletter.most_read_feed` (the demo).
    pub most_read_override: std::sync::Mutex<Option<Vec<LinkItem>>>,
}

impl App {
    pub async fn new(settings: Settings) -> anyhow::Result<Arc<App>> {
        let settings = Arc::new(settings);
        let store = Store::connect(&settings.database.url).await?;
        let metrics = Arc::new(Metrics::default());
        let mailer = Mailer::new(settings.clone())?;
        let dispatcher = Dispatcher::new(store.clone(), mailer.clone(), metrics.clone());
        Ok(Arc::new(App {
            tokens: Tokens::new(&settings.security.secret),
            renderer: Renderer::new()?,
            http: feeds::http_client(),
            signup_limit: crate::web::RateLimiter::per_hour(settings.server.signups_per_hour),
            settings,
            store,
            mailer,
            metrics,
            dispatcher,
            most_read_override: Default::default(),
        }))
    }

    // ------------------------------------------------------------------ articles

    pub async fn ingest_all(&self) -> IngestReport {
        let mut r = IngestReport {
            feeds: self.settings.feeds.len(),
            ..Default::default()
        };
        for f in &self.settings.feeds {
            match self.ingest_feed(&f.url).await {
                Ok((new, updated)) => {
                    r.new += new;
                    r.updated += updated;
                }
                Err(e) => {
                    r.failed += 1;
                    tracing::warn!(feed = %f.url, error = %format!("{e:#}"), "feed poll failed; will retry next time");
                }
            }
        }
        r
    }

    pub async fn ingest_feed(&self, url: &str) -> anyhow::Result<(usize, usize)> {
        let bytes = feeds::fetch(&self.http, url).await?;
        self.ingest_bytes(&bytes, url).await
    }

    pub async fn ingest_bytes(&self, bytes: &[u8], source: &str) -> anyhow::Result<(usize, usize)> {
        let items = feeds::parse_feed(bytes, source)?;
        let (mut new, mut updated) = (0, 0);
        // Oldest first, so arrival order follows publication order within one poll.
        for a in items.iter().rev() {
            if self.store.upsert_article(a).await?.1 {
                new += 1;
            } else {
                updated += 1;
            }
        }
        tracing::info!(feed = source, new, updated, "feed ingested");
        Ok((new, updated))
    }

    /// An article pushed through the API: normalised like a feed's.
    pub async fn add_article(&self, a: NewArticle) -> anyhow::Result<(i64, bool)> {
        self.store.upsert_article(&a).await
    }

    // ------------------------------------------------------------------ digests

    async fn most_read(&self) -> Vec<LinkItem> {
        if let Some(v) = self
            .most_read_override
            .lock()
            .expect("not poisoned")
            .clone()
        {
            return v;
        }
        feeds::most_read(&self.http, &self.settings.newsletter.most_read_feed).await
    }

    /// Before a schedule's first digest, articles that arrived during the last period count.
    fn first_since(&self, schedule: &Schedule, at: chrono::DateTime<Utc>) -> i64 {
        CronSchedule::parse(&schedule.cron, &schedule.timezone)
            .ok()
            .and_then(|c| c.slot_before(at))
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    }

    /// Creates a digest of what is new for `schedule` and queues it for delivery.
    pub async fn create_digest(
        &self,
        schedule: &Schedule,
        kind: DigestKind,
        slot: Option<i64>,
        test_to: Option<&SubscriberEmail>,
    ) -> anyhow::Result<DigestOutcome> {
        let at = slot
            .and_then(|s| Utc.timestamp_millis_opt(s).single())
            .unwrap_or_else(Utc::now);
        let most_read = self.most_read().await;
        let req = DigestRequest {
            schedule: &schedule.name,
            kind,
            slot,
            first_since: self.first_since(schedule, at),
            max_articles: schedule.max_articles,
            test_to: test_to.map(|e| e.as_str()),
            web_slot: WEB_SLOT,
            web_prefix: &self.settings.public_url("/archive/"),
        };
        let settings = &self.settings;
        let renderer = &self.renderer;
        let out = self
            .store
            .create_digest(req, |articles| {
                renderer.digest(
                    settings,
                    schedule,
                    articles,
                    &most_read,
                    Utc::now(),
                    WEB_SLOT,
                )
            })
            .await?;
        if let DigestOutcome::Created { id, recipients } = out {
            self.metrics
                .digests_created
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(digest = id, recipients, schedule = %schedule.name, kind = kind.as_str(), "digest queued");
            self.dispatcher.wake.notify_one();
        }
        Ok(out)
    }

    pub async fn fire_schedule(&self, name: &str, slot: i64) -> anyhow::Result<DigestOutcome> {
        let schedule = self.settings.schedule(Some(name))?;
        self.create_digest(schedule, DigestKind::Scheduled, Some(slot), None)
            .await
    }

    /// The next digest as it would be rendered now, without sending or recording anything.
    pub async fn preview(&self, schedule: &Schedule) -> anyhow::Result<Option<RenderedDigest>> {
        let articles = self
            .store
            .pending_articles(
                &schedule.name,
                self.first_since(schedule, Utc::now()),
                schedule.max_articles,
            )
            .await?;
        if articles.is_empty() {
            return Ok(None);
        }
        let most_read = self.most_read().await;
        let web = self.settings.public_url("/archive");
        let mut d = self.renderer.digest(
            &self.settings,
            schedule,
            &articles,
            &most_read,
            Utc::now(),
            &web,
        )?;
        // A preview is read by an editor: personal slots are filled generically.
        let unsub = self.settings.public_url("/unsubscribe/preview");
        d.html = crate::render::fill_generic(&d.html, &unsub);
        d.text = crate::render::fill_generic(&d.text, &unsub);
        Ok(Some(d))
    }

    // ------------------------------------------------------------------ subscribers

    /// Records a sign-up and sends the confirmation email in the background, so the answer
    /// (and its timing) is the same whether the address was new, pending or confirmed.
    pub async fn subscribe(
        &self,
        email: &SubscriberEmail,
        name: &str,
        source: &str,
    ) -> anyhow::Result<()> {
        let name: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
        let Some((id, issued)) = self
            .store
            .subscribe(email, name.trim(), source, now_ms())
            .await?
        else {
            return Ok(());
        };
        self.metrics
            .subscriptions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = self
            .settings
            .public_url(&format!("/confirm/{}", self.tokens.confirm(id, issued)));
        let (subject, html, text) = self.renderer.confirmation(&self.settings, &url)?;
        let mailer = self.mailer.clone();
        let to = email.as_str().to_owned();
        tokio::spawn(async move {
            if let Err(e) = mailer.send_one(&to, &subject, &html, &text).await {
                tracing::error!(subscriber = id, reason = e.reason(), error = %crate::delivery::redact_addresses(e.message()), "confirmation email failed");
            }
        });
        Ok(())
    }
}

/// Runs the web server, the scheduler, the feed pollers and the delivery dispatcher until
/// `shutdown` turns true; then lets each finish cleanly.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let web = {
        let mut sd = shutdown.clone();
        let router = crate::web::router(app.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = sd.wait_for(|v| *v).await;
            })
            .await
            .context("web server failed")
        })
    };
    let sched = tokio::spawn(crate::schedule::run(app.clone(), shutdown.clone()));
    let deliver = tokio::spawn(app.dispatcher.clone().run(shutdown.clone()));
    for f in app.settings.feeds.clone() {
        let app = app.clone();
        let mut sd = shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(f.poll_every);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        if let Err(e) = app.ingest_feed(&f.url).await {
                            tracing::warn!(feed = %f.url, error = %format!("{e:#}"), "feed poll failed; will retry next time");
                        }
                    }
                    _ = sd.changed() => return,
                }
            }
        });
    }
    let (w, s, d) = tokio::join!(web, sched, deliver);
    w??;
    s??;
    d??;
    Ok(())
}

/// A watch channel that turns true on SIGINT or SIGTERM.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down: finishing in-flight messages");
        let _ = tx.send(true);
    });
    rx
}
