//! The application's shared state: the store, the renderer, the mailer and what every part
//! of a process shares, built once at start (`startup` decides which parts then run). The
//! operations are `impl App` blocks in the sibling files, one concern each.

use secrecy::ExposeSecret;
use std::sync::Arc;

use anyhow::Context;

use crate::{
    config::Settings,
    delivery::{Dispatcher, MailQueue, Mailer},
    domain::Tokens,
    feeds::{self},
    metrics::Metrics,
    render::{LinkItem, Renderer},
    store::Store,
};

pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub renderer: Renderer,
    pub mailer: Mailer,
    /// The one token signer, shared with the mailer.
    pub tokens: Arc<Tokens>,
    pub metrics: Arc<Metrics>,
    pub http: reqwest::Client,
    pub dispatcher: Arc<Dispatcher>,
    /// Confirmation emails, durable and retried.
    pub mail_queue: Arc<MailQueue>,
    /// The last `/health` answer and when: reused for a second, since the check writes.
    pub health: std::sync::Mutex<Option<(std::time::Instant, bool)>>,
    /// The store-backed `/metrics` gauges (queue depth, confirmed readers) and when they were
    /// read: reused for a second, so a flood of scrapes does not become a flood of queries.
    pub metrics_gauges: std::sync::Mutex<Option<(std::time::Instant, [i64; 6])>>,
    /// `server.metrics_token`, when set: `/metrics` wants it as a bearer token. Kept as an
    /// HMAC key like `admin_token`, so the check takes the same time whatever is presented.
    pub metrics_token: Option<crate::auth::AdminToken>,
    /// The configuration's `admin_token`, if not retired.
    pub admin_token: Option<crate::auth::AdminToken>,
    /// Most-read links to use instead of fetching `newsletter.most_read_feed` (the demo).
    pub most_read_override: std::sync::Mutex<Option<Vec<LinkItem>>>,
    /// Whom an alert sent now would reach, as last planned: the «عاجل» page refreshes
    /// while an alert waits, and planning reads every reader who takes alerts.
    pub alert_reach: std::sync::Mutex<Option<(std::time::Instant, crate::app::AlertPlan)>>,
}

impl App {
    pub async fn new(settings: Settings) -> anyhow::Result<Arc<App>> {
        let settings = Arc::new(settings);
        let store = Store::connect(&settings.database.url).await?;
        store
            .upgrade_data(crate::domain::canonical_url)
            .await
            .context("failed to upgrade stored data")?;
        let names: Vec<&str> = settings.schedules.iter().map(|s| s.name.as_str()).collect();
        let slugs: Vec<&str> = settings.sections.iter().map(|s| s.slug.as_str()).collect();
        let lost = store
            .forget_lost_choices(&names, &slugs)
            .await
            .context("failed to check readers' choices against the configuration")?;
        if lost > 0 {
            tracing::warn!(
                readers = lost,
                "readers had chosen only schedules or sections no longer configured; they get everything again"
            );
        }
        let metrics = Arc::new(Metrics::default());
        let tokens = Arc::new(Tokens::new(settings.security.secret.expose_secret()));
        let mailer = Mailer::new(settings.clone(), tokens.clone())?;
        let dispatcher = Dispatcher::new(store.clone(), mailer.clone(), metrics.clone());
        let renderer = Renderer::new()?;
        let mail_queue = MailQueue::new(store.clone(), mailer.clone(), renderer.clone());
        Ok(Arc::new(App {
            tokens,
            metrics_token: (!settings.server.metrics_token.expose_secret().is_empty()).then(|| {
                crate::auth::AdminToken::new(settings.server.metrics_token.expose_secret())
            }),
            admin_token: (!settings.security.admin_token.expose_secret().is_empty()).then(|| {
                crate::auth::AdminToken::new(settings.security.admin_token.expose_secret())
            }),
            renderer,
            mail_queue,
            http: feeds::http_client(),
            settings,
            store,
            mailer,
            metrics,
            dispatcher,
            most_read_override: Default::default(),
            alert_reach: Default::default(),
            health: Default::default(),
            metrics_gauges: Default::default(),
        }))
    }
}
