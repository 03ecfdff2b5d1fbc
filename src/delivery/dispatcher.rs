//! The dispatcher: claims due ledger rows with a lease, sends each through the mailer with at
//! most `delivery.concurrency` in flight, and hands outcomes to the writer.
//!
//! This file is the claim loop and the life of one row; beside it, `templates` caches what
//! the digests being sent look like, `outcome` says what a transport's answer makes of a
//! row, and `leases` keeps claims alive while rows wait.

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

mod leases;
mod outcome;
mod route;
mod templates;

pub(crate) use templates::Prepared;

use super::{
    breaker::Breaker,
    mailer::Mailer,
    message::Personal,
    pacing::{Pacer, claim_batch},
    provider_backoff::ProviderBackoffs,
    relays::Route,
    revocation::{REFRESH_EVERY, Revocations, Start},
    send_error::SendError,
    wait::{self, SHUTDOWN_GRACE},
    warmup::{self, Warmup},
    writer::{self, Done},
};
use crate::{
    config::Settings,
    domain::{SubscriberName, VerpTarget},
    metrics::Metrics,
    shutdown::Shutdown,
    store::{Claimed, Outcome, Store, now_ms},
};
use outcome::{Retries, outcome};
use templates::Templates;

/// Longest sleep while the queue is empty, in case another process queued work.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The longest a leaving reader's request waits for messages to them on the wire.
const REVOKE_WAIT: Duration = Duration::from_secs(10);

pub struct Dispatcher {
    store: Store,
    mailer: Mailer,
    metrics: Arc<Metrics>,
    /// Woken when a digest is queued in this process, so it starts without waiting a poll.
    pub wake: Arc<Notify>,
    /// The digests being sent: their templates and statuses.
    templates: Templates,
    breaker: Breaker,
    revocations: Revocations,
    /// The writer's channel while `run` runs, for rows resolved outside the send loop.
    outcomes: Mutex<Option<mpsc::Sender<Done>>>,
    /// A new domain's daily caps per mailbox provider, if configured.
    warmup: Option<Warmup>,
    /// Mailbox providers that defer most messages: their rows wait (`provider_backoff`).
    providers: ProviderBackoffs,
}

impl Dispatcher {
    pub fn new(store: Store, mailer: Mailer, metrics: Arc<Metrics>) -> Arc<Dispatcher> {
        let fallback = mailer.transport.relays().is_some_and(|r| r.has_fallback());
        Arc::new(Dispatcher {
            templates: Templates::new(store.clone(), mailer.clone()),
            warmup: Warmup::new(&mailer.settings, store.clone(), fallback),
            providers: ProviderBackoffs::new(store.clone(), metrics.clone(), &mailer.settings),
            store,
            mailer,
            metrics,
            wake: Arc::new(Notify::new()),
            breaker: Breaker::default(),
            revocations: Revocations::default(),
            outcomes: Mutex::default(),
        })
    }

    fn settings(&self) -> &Settings {
        &self.mailer.settings
    }

    /// A reader left (unsubscribed, erased) and the store took their queued rows out: no
    /// message to them starts in this process from now on, rows held here are skipped, and
    /// this returns once no worker anywhere holds a live claim on a row of theirs — so a
    /// message already on the wire has ended (waiting at most [`REVOKE_WAIT`]: a worker
    /// that died holding one leaves it to its lease, and the next claim finds them gone).
    pub async fn revoke(&self, subscriber: i64) -> anyhow::Result<()> {
        let gone = HashSet::from([subscriber]);
        let resolved = self.revocations.revoke(&gone);
        self.skip_resolved(resolved).await;
        let deadline = tokio::time::Instant::now() + REVOKE_WAIT;
        self.revocations.wait_local(subscriber, deadline).await;
        loop {
            if self
                .store
                .deliveries_in_flight_to(subscriber, now_ms())
                .await?
                == 0
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    subscriber,
                    "a claim on a leaving reader's row outlived the wait; its lease will end it"
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Held rows whose reader left are recorded as skipped.
    async fn skip_resolved(&self, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        let tx = self.outcomes.lock().expect("not poisoned").clone();
        if let Some(tx) = tx {
            for id in ids {
                let _ = tx.send(Done::from(Outcome::Skipped { id })).await;
            }
        }
    }

    /// Every [`REFRESH_EVERY`], asks the store which readers of the rows held here are still
    /// confirmed; the rows of those who left (in another process) are skipped.
    async fn refresh_revocations(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(REFRESH_EVERY) => {}
                _ = shutdown.recv() => return,
            }
            let readers = self.revocations.held_readers();
            if readers.is_empty() {
                continue;
            }
            match self.store.still_confirmed(&readers).await {
                Ok(confirmed) => {
                    let confirmed: HashSet<i64> = confirmed.into_iter().collect();
                    let gone: HashSet<i64> = readers
                        .into_iter()
                        .filter(|r| !confirmed.contains(r))
                        .collect();
                    if !gone.is_empty() {
                        let resolved = self.revocations.revoke(&gone);
                        self.skip_resolved(resolved).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot check held readers")
                }
            }
        }
    }

    /// The message template of one edition of a digest (0: the digest itself; others: the
    /// renderings for readers who chose sections), built once per process and cached while
    /// it sends.
    pub(crate) async fn prepared(
        &self,
        digest_id: i64,
        edition: i64,
        variant: Option<i64>,
    ) -> anyhow::Result<Arc<Prepared>> {
        self.templates.prepared(digest_id, edition, variant).await
    }

    /// Drains the queue until `shutdown` turns true; then stops claiming, lets in-flight
    /// messages finish (cutting off, after [`SHUTDOWN_GRACE`], any a relay keeps waiting),
    /// hands unsent claimed rows back and flushes the ledger. (`shutdown` may be the raw
    /// `watch` receiver a caller holds the sender of.)
    pub async fn run(self: Arc<Self>, shutdown: impl Into<Shutdown>) -> anyhow::Result<()> {
        let mut shutdown: Shutdown = shutdown.into();
        let conc = self.settings().delivery.concurrency;
        let sem = Arc::new(Semaphore::new(conc));
        let (hard_stop_tx, hard_stop) = watch::channel(false);
        // A one-place channel: a sender holds its permit until the writer takes its outcome,
        // so messages on the wire, outcomes waiting and the batch being written add up to at
        // most 2 × concurrency — what a crash can send twice — however slow the store is.
        let (tx, rx) = mpsc::channel::<Done>(1);
        *self.outcomes.lock().expect("not poisoned") = Some(tx.clone());
        let ledger = writer::Ledger {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            batch: conc.saturating_sub(1).max(1),
            bounce_after: self.settings().delivery.bounce_after,
            guard: self.settings().delivery.guard.clone(),
        };
        let writer = tokio::spawn(writer::run(ledger, self.clone(), rx));
        let refresher = tokio::spawn(self.clone().refresh_revocations(shutdown.clone()));
        let mut pacer = Pacer::new(self.settings().delivery.max_per_second);
        let mut relay_backoff = Duration::ZERO;
        let window = self.settings().delivery.send_window;
        let (relay_tx, mut relay_rx) = mpsc::unbounded_channel::<()>();

        'outer: loop {
            if shutdown.is_shutdown() {
                break;
            }
            // A dead relay: hold off, then probe again (nothing is lost, rows were released).
            if relay_rx.try_recv().is_ok() {
                while relay_rx.try_recv().is_ok() {}
                relay_backoff =
                    (relay_backoff * 2).clamp(Duration::from_millis(500), Duration::from_secs(60));
                tracing::warn!(
                    backoff_ms = relay_backoff.as_millis() as u64,
                    "relay unreachable; pausing delivery"
                );
                self.metrics
                    .relay_down
                    .store(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(relay_backoff) => {}
                    _ = shutdown.recv() => {}
                }
                continue;
            }
            // Outside the window only alerts go, when they may (`alerts.ignore_window`).
            let closed = window.and_then(|w| w.wait(Utc::now()));
            let only_alerts = closed.is_some() && self.settings().alerts.ignore_window;
            if let Some(wait) = closed.filter(|_| !only_alerts) {
                tracing::info!(
                    opens_in_s = wait.as_secs(),
                    "outside the sending window; waiting"
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
                    _ = shutdown.recv() => {}
                }
                continue;
            }
            if self
                .metrics
                .relay_down
                .load(std::sync::atomic::Ordering::Relaxed)
                == 0
            {
                relay_backoff = Duration::ZERO;
            }
            let claimed = match self
                .store
                .claim(
                    claim_batch(self.settings()),
                    self.settings().delivery.lease,
                    now_ms(),
                    only_alerts,
                )
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "claim failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                let due = self.store.next_due(only_alerts).await;
                wait::idle(due, IDLE_POLL, &self.wake, &mut shutdown).await;
                continue;
            }
            self.revocations.hold(&claimed);
            let mut rows: VecDeque<Claimed> = claimed.into();
            while let Some(mut row) = rows.pop_front() {
                let wait = pacer.next(&self.store).await.unwrap_or_default();
                let permit = tokio::select! {
                    // Shutdown first: once asked to stop, nothing new starts.
                    biased;
                    _ = shutdown.recv() => None,
                    p = async {
                        // No timer at all when unpaced: a zero sleep still costs a timer tick.
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        sem.clone().acquire_owned().await
                    } => Some(p.expect("semaphore never closes")),
                };
                let Some(permit) = permit else {
                    // Hand back what we claimed but did not start.
                    self.release_all(&tx, std::iter::once(row).chain(rows.drain(..)))
                        .await;
                    break 'outer;
                };
                // The row waited for a free place and its pace: it starts only while its
                // claim is still this worker's, with time for a whole message left on it.
                if !self.keep_claims(&mut row, &mut rows, &tx).await {
                    continue;
                }
                let this = self.clone();
                let out = tx.clone();
                let relay_tx = relay_tx.clone();
                let mut hard_stop = hard_stop.clone();
                tokio::spawn(async move {
                    let (id, lease) = (row.id, row.lease_until);
                    let done = tokio::select! {
                        d = this.deliver(row) => d,
                        // Cut off at shutdown: the relay may have the message already, so
                        // the retry spends an attempt.
                        _ = hard_stop.wait_for(|v| *v) => Some(Done::from(Outcome::Retry {
                            id,
                            lease,
                            error: "interrupted by shutdown".into(),
                            next_attempt_at: now_ms(),
                        })),
                    };
                    if let Some(done) = done {
                        if done.relay_down {
                            let _ = relay_tx.send(());
                        } else {
                            this.metrics
                                .relay_down
                                .store(0, std::sync::atomic::Ordering::Relaxed);
                        }
                        // The writer never stops taking these (it buffers while the store
                        // fails), so this cannot block shutdown.
                        let _ = out.send(done).await;
                    }
                    drop(permit);
                });
                if !relay_rx.is_empty() {
                    // Stop feeding a dead relay: give back the rest of the batch.
                    self.release_all(&tx, rows.drain(..)).await;
                }
            }
        }
        // Wait for in-flight sends to end (for a while), then close the channel so the writer
        // flushes.
        let grace = SHUTDOWN_GRACE.min(self.settings().smtp.timeout * 2);
        if tokio::time::timeout(grace, sem.acquire_many(conc as u32))
            .await
            .is_err()
        {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "messages still on the wire at shutdown; cutting them off"
            );
            let _ = hard_stop_tx.send(true);
            let _ = sem.acquire_many(conc as u32).await;
        }
        let _ = refresher.await;
        // Today's warm-up share this process took and did not use goes back to the store.
        if let Some(w) = &self.warmup {
            w.return_unused().await;
        }
        self.outcomes.lock().expect("not poisoned").take();
        drop(tx);
        writer.await.context("ledger writer panicked")??;
        Ok(())
    }

    /// Hands claimed rows back unsent.
    async fn release_all(&self, tx: &mpsc::Sender<Done>, rows: impl Iterator<Item = Claimed>) {
        for r in rows {
            self.revocations.unhold(r.id);
            let _ = tx.send(Done::from(r.release())).await;
        }
    }

    /// Sends one claimed row; never fails, it reports the outcome, whether the relay could
    /// not be reached at all, and whether this outcome stops its send. `None` when the row
    /// was already resolved (its reader left while it waited).
    #[tracing::instrument(name = "deliver", skip_all, fields(digest = row.digest_id, delivery = row.id))]
    async fn deliver(self: &Arc<Self>, row: Claimed) -> Option<Done> {
        // Paused, cancelled or stopped since the row was claimed: hand it back unsent.
        if self.breaker.is_stopping(row.digest_id) || !self.templates.active(row.digest_id).await {
            self.revocations.unhold(row.id);
            return Some(Done::from(row.release()));
        }
        let digest = row.digest_id;
        // Its mailbox provider defers most messages: the row waits, its attempt not spent.
        let provider = self.providers.provider(row.email.as_deref());
        if let Some(until) = self.providers.held_until(provider).await {
            self.revocations.unhold(row.id);
            let why = format!("backoff:{}", provider.map_or("", |p| p.as_str()));
            return Some(Done::from(row.hold_until(until, why)));
        }
        let (outcome, unreached) = self.deliver_one(row).await?;
        if !unreached {
            self.providers.observe(provider, &outcome).await;
        }
        // Delivery pauses only when no relay can take anything: one that could not be
        // reached while another is healthy has been marked, and the row simply comes back.
        let relay_down = unreached
            && !self
                .mailer
                .transport
                .relays()
                .is_some_and(|r| r.any_available());
        let stop_after = self.settings().delivery.stop_after_failures;
        let stop = match &outcome {
            Outcome::Sent { .. } => self.breaker.track(digest, None, stop_after),
            Outcome::Retry { error, .. } | Outcome::Failed { error, .. } => {
                self.breaker.track(digest, Some(error), stop_after)
            }
            _ => None,
        };
        Some(Done {
            outcome,
            relay_down,
            stop: stop.map(|reason| (digest, reason)),
        })
    }

    async fn deliver_one(&self, row: Claimed) -> Option<(Outcome, bool)> {
        let Some(email) = row.email.as_deref().filter(|_| row.confirmed != 0) else {
            self.revocations.unhold(row.id);
            return Some((Outcome::Skipped { id: row.id }, false));
        };
        let prepared = match self.prepared(row.digest_id, row.edition, row.variant).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot prepare digest");
                self.revocations.unhold(row.id);
                return Some((row.release(), false));
            }
        };
        let way = match self.route(&row, email, &prepared).await {
            Ok(w) => w,
            Err(held) => {
                self.revocations.unhold(row.id);
                return Some((held, false));
            }
        };
        let done = self.send_routed(&row, email, &prepared, way).await;
        // A unit of a warm-up's allowance taken for a message that did not go is given back.
        if let (Some(w), Some(p)) = (&self.warmup, way.counted)
            && !matches!(done, Some((Outcome::Sent { .. }, _)))
        {
            w.give_back(p);
        }
        done
    }

    /// Builds, signs and posts one row's message the way `route` said.
    async fn send_routed(
        &self,
        row: &Claimed,
        email: &str,
        prepared: &Prepared,
        way: route::Way,
    ) -> Option<(Outcome, bool)> {
        let (route, provider) = (way.route, way.provider);
        // A test send's rows (0, -1, …) name no reader: their links are a test's own.
        let reader = row.subscriber_id.max(0);
        let tokens = &self.mailer.tokens;
        let token = tokens.unsubscribe(reader);
        let settings = &self.mailer.settings;
        let unsub = settings.public_url(&format!("/unsubscribe/{token}"));
        // A test send's link opens a page that says it belongs to a test.
        let prefs =
            Some(settings.public_url(&format!("/preferences/{}", tokens.preferences(reader))));
        // Filled whatever `click_counts` says now: a digest rendered while it was on keeps
        // working links if it is switched off mid-send (the body without the slot ignores it).
        let click = tokens.click_key(row.id);
        let mailto = self.mailer.unsubscribe_mailto(&token);
        // Names stored before names were checked get the same check here.
        let name = SubscriberName::sanitize(&row.name);
        let personal = Personal {
            to: email,
            unsubscribe_url: Some(&unsub),
            unsubscribe_mailto: mailto.as_deref(),
            name: &name,
            preferences_url: prefs.as_deref(),
            click: &click,
            date: Utc::now(),
        };
        let sealed = match self
            .mailer
            .seal(&prepared.template, &personal, VerpTarget::Delivery(row.id))
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot sign");
                self.revocations.unhold(row.id);
                return Some((row.release(), false));
            }
        };
        let message_id = sealed.message_id.clone();
        let file = format!("digest-{}-{}", prepared.digest_id, row.id);
        // Preparing took time: a claim that could run out on the wire is handed back.
        if row.lease_until - now_ms() < self.send_budget().as_millis() as i64 {
            self.revocations.unhold(row.id);
            return Some((row.release(), false));
        }
        // The reader left after this row was claimed: nothing more goes to them. Checked
        // (and the message counted as on the wire) right before it goes.
        let _in_flight = match self.revocations.start(row) {
            Start::Go(guard) => guard,
            Start::Revoked => return Some((Outcome::Skipped { id: row.id }, false)),
            Start::Resolved => return None,
        };
        let started = Instant::now();
        let (sent, relay) = self.mailer.post(sealed, &file, route).await;
        self.metrics.observe_smtp(started.elapsed());
        // A warm-up's overflow that the fallback could not take waits a while: the primaries
        // are fine, so this is no reason to pause the whole send.
        if route == Route::Fallback && matches!(sent, Err(SendError::Connection(_))) {
            let until = now_ms() + warmup::RETRY_FALLBACK_MS;
            let why = warmup::reason(provider);
            let held = Outcome::Held {
                id: row.id,
                lease: row.lease_until,
                until: Some(until),
                why,
            };
            return Some((held, false));
        }
        let d = &settings.delivery;
        let retries = Retries {
            max_attempts: d.max_attempts,
            retry_after: d.retry_after,
        };
        Some(outcome(
            row,
            sent,
            message_id,
            relay,
            retries,
            &self.metrics,
        ))
    }
}

impl writer::SendEnded for Dispatcher {
    /// Stopped or finished: not sending any more, and not stopping either.
    fn send_ended(&self, digest: i64) {
        self.templates.forget_status(digest, false);
        self.breaker.stopped(digest);
    }
}
