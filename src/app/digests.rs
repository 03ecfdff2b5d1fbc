//! Digests: made at a schedule's slot or on demand (the audience and each reader's edition
//! fixed in one transaction), previewed, counted before a send, and a send paused, resumed,
//! cancelled or retried.

use anyhow::Context;
use chrono::{TimeZone, Utc};

use super::{
    alert_plan::reader_zone,
    asked::Asked,
    desk::{arrange, shaping},
    planned,
};
use crate::{
    config::{Deliver, Schedule},
    domain::SubscriberEmail,
    feeds::{self},
    render::{LinkItem, SlotMarkers},
    store::{
        Alerted, Desk, DigestKind, DigestOutcome, DigestRequest, DigestStatus, PlanFill, Progress,
        RenderedDigest, RenderedEdition, Waves, now_ms,
    },
};

use super::{App, OpError};

/// A digest is rendered again at most this many times when articles keep arriving while it
/// is being rendered; then the send fails and the next trigger tries again.
const RENDER_ATTEMPTS: usize = 5;
/// The most new articles one digest reads when readers chose sections: a busy site's week.
const MAX_NEW_ARTICLES: u32 = 1000;

impl App {
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
    /// write lock, that no article arrived meanwhile (else this renders again). Unchecked:
    /// an editor's door is [`App::start_send`], the scheduler's [`App::fire_schedule`].
    pub(crate) async fn create_digest(
        &self,
        schedule: &Schedule,
        kind: DigestKind,
        slot: Option<i64>,
        test_to: Option<&SubscriberEmail>,
    ) -> anyhow::Result<DigestOutcome> {
        let test_to = test_to.map(std::slice::from_ref).unwrap_or_default();
        self.create_digest_by(schedule, kind, slot, test_to, Asked::default())
            .await
    }

    /// [`App::create_digest`], recording who asked for it, with a subject test (else the
    /// one the editor's desk holds, if any); or starting a send planned for later (`plan`:
    /// its own subject, its readers' local time, its row filled). What the desk holds
    /// shapes the digest.
    pub(crate) async fn create_digest_by(
        &self,
        schedule: &Schedule,
        kind: DigestKind,
        slot: Option<i64>,
        test_to: &[SubscriberEmail],
        asked: Asked<'_>,
    ) -> anyhow::Result<DigestOutcome> {
        let Asked {
            by: created_by,
            subject_test,
            plan,
        } = asked;
        let with_subject = planned::with_plan_subject(schedule, plan)?;
        let schedule: &Schedule = &with_subject;
        let plan_clock = planned::plan_clock(plan)?;
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
        // A local-hour digest: each reader's slot in their own zone, at or after this one
        // (the earliest zone's); passed already, it is due at once.
        let newsroom = self.settings.newsroom_tz();
        let wave_at = |zone: &str| {
            if let Some(clock) = plan_clock {
                return planned::instant_in(clock, reader_zone(Some(zone), newsroom));
            }
            schedule
                .cron
                .in_zone(reader_zone(Some(zone), newsroom))
                .slot_at_or_after(at)
                .unwrap_or(at)
                .timestamp_millis()
        };
        for _ in 0..RENDER_ATTEMPTS {
            let stored = self.store.next_digest(&schedule.name).await?;
            let mut desk = stored.as_ref().map(|s| s.desk.clone()).unwrap_or_default();
            if plan.is_some_and(|p| p.planned_subject.is_some()) {
                // A send planned with its own subject keeps it over the desk's.
                desk.subject = None;
            }
            // A test send tries the subject the desk holds, not a subject test.
            // Each reader at their own hour and the rest waiting for a winner cannot both
            // hold: a send in waves runs no subject test (the desk refuses one for a
            // local-hour schedule; a send for later at each reader's time keeps it unused).
            let in_waves = (kind == DigestKind::Scheduled && schedule.deliver == Deliver::Local)
                || plan_clock.is_some();
            let subject_test = match (kind, subject_test) {
                (DigestKind::Test, _) => None,
                _ if in_waves => None,
                (_, Some(t)) => Some(t),
                (_, None) => desk.subject_test.as_ref(),
            };
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
                alerted: &[],
                without: &[],
                desk: stored.as_ref().map(|s| s.version),
                subject_test,
                waves: (kind == DigestKind::Scheduled && schedule.deliver == Deliver::Local)
                    .then_some(Waves {
                        newsroom: newsroom.name(),
                        at: &wave_at,
                    })
                    .or(plan_clock.map(|_| Waves {
                        newsroom: newsroom.name(),
                        at: &wave_at,
                    })),
                plan: plan.map(PlanFill::of),
            };
            let articles = self
                .store
                .new_articles(req.schedule, req.first_since, req.max_articles)
                .await?;
            let ids: Vec<i64> = articles.iter().map(|a| a.id).collect();
            // Readers who had some of these articles as alerts get an edition without them.
            let alerted = if test_list.is_some() || ids.is_empty() {
                vec![]
            } else {
                self.store.alerted(&schedule.name, &ids).await?
            };
            let (alert_choices, without) = without_alerted(&alerted);
            let req = DigestRequest {
                alerted: &alerted,
                without: &without,
                ..req
            };
            let (rendered, editions) = if articles.is_empty() {
                (None, vec![])
            } else {
                if most_read.is_none() {
                    most_read = Some(self.most_read().await);
                }
                let links = most_read.clone().unwrap_or_default();
                let clicks = self.settings.newsletter.click_counts;
                let all_choices = choices
                    .iter()
                    .map(|c| EditionChoice {
                        key: c.clone(),
                        sections: Some(c.clone()),
                        without: vec![],
                    })
                    .chain(alert_choices)
                    .collect();
                let articles = arrange(articles, &desk);
                let (mut full, editions) = self
                    .render_editions(schedule, articles, links, all_choices, clicks, &desk)
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
        choices: Vec<EditionChoice>,
        count_clicks: bool,
        desk: &Desk,
    ) -> anyhow::Result<(RenderedDigest, Vec<RenderedEdition>)> {
        let (renderer, settings, schedule, shaping) = (
            self.renderer.clone(),
            self.settings.clone(),
            schedule.clone(),
            shaping(desk),
        );
        tokio::task::spawn_blocking(move || {
            let max = schedule.max_articles as usize;
            let slots = SlotMarkers::random();
            let now = Utc::now();
            let render = |list: &[crate::store::Article]| {
                let (s, m) = (&settings, &most_read);
                renderer.digest(s, &schedule, list, m, now, &slots, count_clicks, &shaping)
            };
            let full = render(&articles[..articles.len().min(max)])?;
            let of_article: Vec<Vec<&str>> = articles
                .iter()
                .map(|a| a.section_slugs(&settings.sections))
                .collect();
            let mut editions = Vec::new();
            for choice in choices {
                let chosen: Vec<&str> = choice
                    .sections
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|c| settings.sections.iter().any(|s| s.slug == *c))
                    .collect();
                let list: Vec<crate::store::Article> = articles
                    .iter()
                    .zip(&of_article)
                    .filter(|(a, slugs)| {
                        (chosen.is_empty() || slugs.iter().any(|s| chosen.contains(s)))
                            && !choice.without.contains(&a.id)
                    })
                    .map(|(a, _)| a.clone())
                    .take(max)
                    .collect();
                if !list.is_empty() {
                    editions.push(RenderedEdition {
                        sections: choice.key,
                        rendered: render(&list)?,
                    });
                }
            }
            Ok((full, editions))
        })
        .await
        .context("the renderer panicked")?
    }

    /// Makes `name`'s digest for the slot `slot` (ms): the scheduler's door, public for it and
    /// for tests of slots (catch-up, one digest per slot). No role is checked because no
    /// person calls it; an editor sends through [`App::start_send`].
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
        // The preview shows what the editor set, at once.
        let desk = self
            .store
            .next_digest(&schedule.name)
            .await?
            .map(|s| s.desk)
            .unwrap_or_default();
        let articles = arrange(articles, &desk);
        let most_read = self.most_read().await;
        // A preview is read by an editor: its links lead straight to the articles (nothing is
        // counted), and personal slots are filled generically.
        let (mut d, _) = self
            .render_editions(schedule, articles, most_read, vec![], false, &desk)
            .await?;
        let unsub = self.settings.public_url("/unsubscribe/preview");
        let prefs = self.settings.public_url("/preferences/preview");
        let web = self.settings.public_url("/archive");
        let slots = SlotMarkers::from_key(&d.slot_key);
        d.html = slots.fill_generic(&d.html, &unsub, &prefs, &web);
        d.text = slots.fill_generic(&d.text, &unsub, &prefs, &web);
        Ok(Some(d))
    }

    // ------------------------------------------------------------------ sends

    /// Pauses, resumes, cancels or retries a send. Every process sees the change within a
    /// second (workers re-read a send's status at most every 200 ms). Unchecked: the door
    /// for the API, the console and the command line is [`App::control`].
    pub(crate) async fn control_send(
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

/// An edition to render: for the readers of some sections (`None`: every section), without
/// the articles they had as alerts; `key` names it in `digest_editions.sections`.
struct EditionChoice {
    key: String,
    sections: Option<String>,
    without: Vec<i64>,
}

/// The editions readers who had some of a digest's articles as alerts need, and which
/// readers get each (by key). `alerted` is sorted by reader.
fn without_alerted(alerted: &[Alerted]) -> (Vec<EditionChoice>, Vec<(String, Vec<i64>)>) {
    // key → (sections, articles left out, readers)
    type Group = (Option<String>, Vec<i64>, Vec<i64>);
    let mut by_key: std::collections::BTreeMap<String, Group> = Default::default();
    for chunk in alerted.chunk_by(|a, b| a.0 == b.0) {
        let (reader, sections) = (chunk[0].0, chunk[0].2.clone());
        let without: Vec<i64> = chunk.iter().map(|a| a.1).collect();
        let key = format!(
            "{}|-{}",
            sections.as_deref().unwrap_or_default(),
            without
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        by_key
            .entry(key)
            .or_insert_with(|| (sections, without, vec![]))
            .2
            .push(reader);
    }
    by_key
        .into_iter()
        .map(|(key, (sections, without, readers))| {
            (
                EditionChoice {
                    key: key.clone(),
                    sections,
                    without,
                },
                (key, readers),
            )
        })
        .unzip()
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
