//! The application: shared state and the operations the CLI, the web server and the
//! scheduler all call — one door for each (a send is paused the same way from the console,
//! the API and the command line). `startup` wires and runs the parts of a process.

mod accounts;
mod feedback;
mod ops;
mod preferences;

pub use accounts::{LoginOutcome, SessionLookup};
pub use feedback::MailOutcome;
pub use ops::{Actor, ImportReport, OpError, Refusal};

use std::sync::Arc;

use anyhow::Context;
use chrono::{TimeZone, Utc};
use secrecy::ExposeSecret;

use crate::{
    config::{Schedule, Settings},
    delivery::{Dispatcher, MailQueue, Mailer},
    domain::{SubscriberEmail, SubscriberName, Tokens},
    feeds::{self, IngestReport},
    metrics::Metrics,
    render::{LinkItem, Renderer, SlotMarkers},
    store::{
        Choice, DigestKind, DigestOutcome, DigestRequest, DigestStatus, NewArticle, Progress,
        RenderedDigest, RenderedEdition, Store, now_ms,
    },
};

/// A digest is rendered again at most this many times when articles keep arriving while it
/// is being rendered; then the send fails and the next trigger tries again.
const RENDER_ATTEMPTS: usize = 5;
/// The most new articles one digest reads when readers chose sections: a busy site's week.
const MAX_NEW_ARTICLES: u32 = 1000;

/// Why a sign-up was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// A non-ASCII local part, and the relay does not offer SMTPUTF8.
    #[error("this relay cannot deliver to a non-ASCII address")]
    NoSmtpUtf8,
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub renderer: Renderer,
    pub mailer: Mailer,
    pub tokens: Tokens,
    pub metrics: Arc<Metrics>,
    pub http: reqwest::Client,
    pub dispatcher: Arc<Dispatcher>,
    /// Confirmation emails, durable and retried.
    pub mail_queue: Arc<MailQueue>,
    /// The last `/health` answer and when: reused for a second, since the check writes.
    pub health: std::sync::Mutex<Option<(std::time::Instant, bool)>>,
    /// The store-backed `/metrics` gauges (queue depth, confirmed readers) and when they were
    /// read: reused for a second, so a flood of scrapes does not become a flood of queries.
    pub metrics_gauges: std::sync::Mutex<Option<(std::time::Instant, [i64; 2])>>,
    /// `server.metrics_token`, when set: `/metrics` wants it as a bearer token. Kept as an
    /// HMAC key like `admin_token`, so the check takes the same time whatever is presented.
    pub metrics_token: Option<crate::auth::AdminToken>,
    /// What the provider webhooks remember (replayed tokens, signing certificates).
    pub webhooks: crate::bounces::webhooks::WebhookState,
    /// The configuration's `admin_token`, if not retired.
    pub admin_token: Option<crate::auth::AdminToken>,
    /// Most-read links to use instead of fetching `newsletter.most_read_feed` (the demo).
    pub most_read_override: std::sync::Mutex<Option<Vec<LinkItem>>>,
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
        let mailer = Mailer::new(settings.clone())?;
        let dispatcher = Dispatcher::new(store.clone(), mailer.clone(), metrics.clone());
        let renderer = Renderer::new()?;
        let mail_queue = MailQueue::new(store.clone(), mailer.clone(), renderer.clone());
        Ok(Arc::new(App {
            tokens: Tokens::new(settings.security.secret.expose_secret()),
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
            health: Default::default(),
            metrics_gauges: Default::default(),
            webhooks: crate::bounces::webhooks::WebhookState::new()?,
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
        // Parsing and sanitising take CPU in proportion to the feed: off the async threads.
        let (owned, src) = (bytes.to_vec(), source.to_owned());
        let items = tokio::task::spawn_blocking(move || feeds::parse_feed(&owned, &src))
            .await
            .context("the feed parser panicked")??;
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

    /// An article as it came: sanitised and checked (off the async threads), or why not.
    pub async fn normalize_article(a: NewArticle) -> anyhow::Result<NewArticle> {
        tokio::task::spawn_blocking(move || feeds::normalize(a))
            .await
            .context("the sanitiser panicked")?
    }

    /// An article pushed through the API, already normalised like a feed's.
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
        let n = &self.settings.newsletter;
        if n.most_read_feed.is_empty() && n.click_counts {
            // This site's own readers: the week's most-clicked articles.
            let since = now_ms() - 7 * 24 * 3600 * 1000;
            return match self.store.most_clicked(since, 5).await {
                Ok(rows) => rows
                    .into_iter()
                    .map(|r| LinkItem {
                        title: r.title,
                        url: r.url,
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read click counts; «الأكثر قراءة» omitted");
                    vec![]
                }
            };
        }
        feeds::most_read(&self.http, &n.most_read_feed).await
    }

    /// Before a schedule's first digest, articles that arrived during the last period count.
    fn first_since(&self, schedule: &Schedule, at: chrono::DateTime<Utc>) -> i64 {
        schedule
            .cron
            .slot_before(at)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0)
    }

    /// Creates a digest of what is new for `schedule` and queues it for delivery.
    ///
    /// The digest is rendered first, with no lock held; the store then checks, under its
    /// write lock, that no article arrived meanwhile (else this renders again).
    pub async fn create_digest(
        &self,
        schedule: &Schedule,
        kind: DigestKind,
        slot: Option<i64>,
        test_to: Option<&SubscriberEmail>,
    ) -> anyhow::Result<DigestOutcome> {
        let test_to = test_to.map(std::slice::from_ref).unwrap_or_default();
        self.create_digest_by(schedule, kind, slot, test_to, None)
            .await
    }

    /// [`App::create_digest`], recording who asked for it.
    pub(crate) async fn create_digest_by(
        &self,
        schedule: &Schedule,
        kind: DigestKind,
        slot: Option<i64>,
        test_to: &[SubscriberEmail],
        created_by: Option<&str>,
    ) -> anyhow::Result<DigestOutcome> {
        // A test send's addresses, one list (addresses hold no comma).
        let test_list = (!test_to.is_empty()).then(|| {
            test_to
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(",")
        });
        let at = slot
            .and_then(|s| Utc.timestamp_millis_opt(s).single())
            .unwrap_or_else(Utc::now);
        let mut most_read = None;
        for _ in 0..RENDER_ATTEMPTS {
            // A test send goes to one address, as the digest itself.
            let choices = if test_list.is_some() {
                vec![]
            } else {
                self.store
                    .section_choices(&schedule.name, schedule.for_new_readers)
                    .await?
            };
            let req = DigestRequest {
                schedule: &schedule.name,
                for_new_readers: schedule.for_new_readers,
                kind,
                slot,
                first_since: self.first_since(schedule, at),
                // Each choice of sections takes its own `max_articles` of what is new, so all of
                // it is read (up to a bound: older overflow is dropped, as for one digest).
                max_articles: if choices.is_empty() {
                    schedule.max_articles
                } else {
                    schedule.max_articles.max(MAX_NEW_ARTICLES)
                },
                choices: &choices,
                test_to: test_list.as_deref(),
                created_by,
            };
            let articles = self
                .store
                .new_articles(req.schedule, req.first_since, req.max_articles)
                .await?;
            let ids: Vec<i64> = articles.iter().map(|a| a.id).collect();
            let (rendered, editions) = if articles.is_empty() {
                (None, vec![])
            } else {
                if most_read.is_none() {
                    most_read = Some(self.most_read().await);
                }
                let links = most_read.clone().unwrap_or_default();
                let clicks = self.settings.newsletter.click_counts;
                let (mut full, editions) = self
                    .render_editions(schedule, articles, links, choices.clone(), clicks)
                    .await?;
                if test_list.is_some() {
                    // Told apart from the real one at a glance in an inbox.
                    full.subject = format!("[تجريبي] {}", full.subject);
                }
                (Some(full), editions)
            };
            let out = self
                .store
                .create_digest(req, &ids, rendered.as_ref(), &editions)
                .await?;
            match out {
                DigestOutcome::Stale => continue,
                DigestOutcome::Created { id, recipients } => {
                    self.metrics
                        .digests_created
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(digest = id, recipients, schedule = %schedule.name, kind = kind.as_str(), "digest queued");
                    self.dispatcher.wake.notify_one();
                    return Ok(out);
                }
                _ => return Ok(out),
            }
        }
        anyhow::bail!("articles kept arriving while the digest was rendered; try again")
    }

    /// The digest of `articles` (its first `max_articles`) and one edition for each section
    /// choice in `choices` that has articles, all with the same slots, on a blocking thread
    /// (large articles take a while). Readers' choices of slugs no longer configured count
    /// as every section. `count_clicks` as `newsletter.click_counts`, except for a preview.
    async fn render_editions(
        &self,
        schedule: &Schedule,
        articles: Vec<crate::store::Article>,
        most_read: Vec<LinkItem>,
        choices: Vec<String>,
        count_clicks: bool,
    ) -> anyhow::Result<(RenderedDigest, Vec<RenderedEdition>)> {
        let (renderer, settings, schedule) = (
            self.renderer.clone(),
            self.settings.clone(),
            schedule.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let max = schedule.max_articles as usize;
            let slots = SlotMarkers::random();
            let now = Utc::now();
            let render = |list: &[crate::store::Article]| {
                let (s, m) = (&settings, &most_read);
                renderer.digest(s, &schedule, list, m, now, &slots, count_clicks)
            };
            let full = render(&articles[..articles.len().min(max)])?;
            let of_article: Vec<Vec<&str>> = articles
                .iter()
                .map(|a| a.section_slugs(&settings.sections))
                .collect();
            let mut editions = Vec::new();
            for choice in choices {
                let chosen: Vec<&str> = choice
                    .split(',')
                    .filter(|c| settings.sections.iter().any(|s| s.slug == *c))
                    .collect();
                let list: Vec<crate::store::Article> = articles
                    .iter()
                    .zip(&of_article)
                    .filter(|(_, slugs)| {
                        chosen.is_empty() || slugs.iter().any(|s| chosen.contains(s))
                    })
                    .map(|(a, _)| a.clone())
                    .take(max)
                    .collect();
                if !list.is_empty() {
                    editions.push(RenderedEdition {
                        sections: choice,
                        rendered: render(&list)?,
                    });
                }
            }
            Ok((full, editions))
        })
        .await
        .context("the renderer panicked")?
    }

    pub async fn fire_schedule(&self, name: &str, slot: i64) -> anyhow::Result<DigestOutcome> {
        let schedule = self.settings.schedule(Some(name))?;
        self.create_digest(schedule, DigestKind::Scheduled, Some(slot), None)
            .await
    }

    /// The articles `schedule`'s next digest would carry if it were made now, newest first.
    /// Who a send of `schedule` made now would reach: readers by the edition they would get
    /// (the full digest, or their sections' own), and how many would get nothing because
    /// nothing new is in their sections.
    pub async fn send_audience(&self, schedule: &Schedule) -> anyhow::Result<Audience> {
        let articles = self.preview_articles(schedule).await?;
        let sections = &self.settings.sections;
        let in_new: std::collections::HashSet<&str> = articles
            .iter()
            .flat_map(|a| a.section_slugs(sections))
            .collect();
        let mut audience = Audience::default();
        for (chosen, n) in self
            .store
            .audience_by_choice(&schedule.name, schedule.for_new_readers)
            .await?
        {
            let Some(list) = chosen else {
                audience.editions.push(("النشرة كاملة".into(), n));
                audience.total += n;
                continue;
            };
            if !list.split(',').any(|s| in_new.contains(s)) {
                audience.nothing_new += n;
                continue;
            }
            let names: Vec<&str> = list
                .split(',')
                .filter_map(|slug| sections.iter().find(|c| c.slug == slug))
                .map(|c| c.name.as_str())
                .collect();
            audience.editions.push((names.join("، "), n));
            audience.total += n;
        }
        Ok(audience)
    }

    pub async fn preview_articles(
        &self,
        schedule: &Schedule,
    ) -> anyhow::Result<Vec<crate::store::Article>> {
        self.store
            .new_articles(
                &schedule.name,
                self.first_since(schedule, Utc::now()),
                schedule.max_articles,
            )
            .await
    }

    /// The next digest as it would be rendered now, without sending or recording anything.
    pub async fn preview(&self, schedule: &Schedule) -> anyhow::Result<Option<RenderedDigest>> {
        let articles = self.preview_articles(schedule).await?;
        if articles.is_empty() {
            return Ok(None);
        }
        let most_read = self.most_read().await;
        // A preview is read by an editor: its links lead straight to the articles (nothing is
        // counted), and personal slots are filled generically.
        let (mut d, _) = self
            .render_editions(schedule, articles, most_read, vec![], false)
            .await?;
        let unsub = self.settings.public_url("/unsubscribe/preview");
        let prefs = self.settings.public_url("/preferences/preview");
        let web = self.settings.public_url("/archive");
        let slots = SlotMarkers::from_key(&d.slot_key);
        d.html = slots.fill_generic(&d.html, &unsub, &prefs, &web);
        d.text = slots.fill_generic(&d.text, &unsub, &prefs, &web);
        Ok(Some(d))
    }

    // ------------------------------------------------------------------ subscribers

    /// Records a sign-up; its confirmation goes through the durable mail queue, so the answer
    /// (and its timing) is the same whether the address was new, pending or confirmed.
    pub async fn subscribe(
        &self,
        email: &SubscriberEmail,
        name: &SubscriberName,
        source: &str,
        choice: &Choice,
    ) -> Result<(), SignupError> {
        // Refused only when the relay is known not to take it; while unknown (the relay not
        // heard from yet) the sign-up is taken and its confirmation waits in the queue.
        if email.needs_smtputf8() && self.mailer.smtputf8() == Some(false) {
            return Err(SignupError::NoSmtpUtf8);
        }
        if self
            .store
            .subscribe(email, name, source, choice, now_ms())
            .await?
        {
            self.metrics
                .subscriptions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.mail_queue.wake.notify_one();
        }
        Ok(())
    }

    /// Unsubscribes a reader (`how` goes to their consent history: the link, one-click, an
    /// editor): when this returns, nothing more goes to them, not even a message of a send
    /// under way. Returns whether anything changed.
    pub async fn unsubscribe(&self, subscriber: i64, how: &str) -> anyhow::Result<bool> {
        let changed = self.store.unsubscribe(subscriber, how, now_ms()).await?;
        self.dispatcher.revoke(subscriber).await?;
        if changed {
            tracing::info!(subscriber, "unsubscribed");
        }
        Ok(changed)
    }

    /// GDPR erasure, with the same promise as [`App::unsubscribe`]. Returns whether there
    /// was anyone to erase.
    pub(crate) async fn erase(&self, subscriber: i64) -> anyhow::Result<bool> {
        if !self.store.erase_subscriber(subscriber).await? {
            return Ok(false);
        }
        self.dispatcher.revoke(subscriber).await?;
        tracing::info!(subscriber, "erased");
        Ok(true)
    }

    // ------------------------------------------------------------------ sends

    /// Pauses, resumes, cancels or retries a send: the one door for the API, the console and
    /// the command line. Every process sees the change within a second (workers re-read a
    /// send's status at most every 200 ms).
    pub async fn control_send(
        &self,
        id: i64,
        control: SendControl,
    ) -> Result<(Progress, u64), OpError> {
        let before = self
            .store
            .progress(id)
            .await?
            .ok_or(OpError::NotFound("send"))?;
        let (changed, requeued) = match control {
            SendControl::Pause => (
                self.store
                    .set_digest_status(id, DigestStatus::Paused)
                    .await?,
                0,
            ),
            SendControl::Resume => (
                self.store
                    .set_digest_status(id, DigestStatus::Sending)
                    .await?,
                0,
            ),
            SendControl::Cancel => (
                self.store
                    .set_digest_status(id, DigestStatus::Cancelled)
                    .await?,
                0,
            ),
            SendControl::Retry => (true, self.store.retry_failed(id).await?),
        };
        if !changed {
            return Err(OpError::InvalidState(before.status));
        }
        tracing::info!(digest = id, control = ?control, requeued, "send controlled");
        self.dispatcher.wake.notify_one();
        let after = self
            .store
            .progress(id)
            .await?
            .ok_or(OpError::NotFound("send"))?;
        Ok((after, requeued))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendControl {
    Pause,
    Resume,
    Cancel,
    /// Put its failed deliveries back in the queue.
    Retry,
}

/// Who a send would reach (see [`App::send_audience`]).
#[derive(Debug, Default, serde::Serialize)]
pub struct Audience {
    pub total: i64,
    /// (what they get: «النشرة كاملة» or their sections, how many).
    pub editions: Vec<(String, i64)>,
    /// Readers whose sections have nothing new: no mail this time.
    pub nothing_new: i64,
}
