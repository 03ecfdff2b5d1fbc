//! The dispatcher: claims due ledger rows with a lease, sends each through the transport with
//! at most `delivery.concurrency` in flight, and hands outcomes to the writer.
//!
//! Long (about 600 lines) because the claim loop, the per-digest template cache and the mapping
//! of a transport's answer to a ledger outcome live together; keeping claims alive is
//! `leases`. Issue 16 moves the cache and the outcome mapping to files of their own.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

mod leases;

use super::{
    IDLE_POLL, Mailer, SHUTDOWN_GRACE, backoff,
    breaker::Breaker,
    message::{MessageSpec, MessageTemplate, Personal},
    pacing::{Pacer, claim_batch},
    redact_addresses, reply_to,
    revocation::{REFRESH_EVERY, Revocations, Start},
    sanitize_fbl,
    transport::SendError,
    writer::{self, Done},
};
use crate::{
    config::Settings,
    domain::{SubscriberName, Tokens, VerpTarget},
    metrics::Metrics,
    render::SlotMarkers,
    store::{Claimed, Digest, DigestKind, DigestStatus, Outcome, Store, now_ms},
};

/// How stale a digest's status may be when deciding to send one of its rows: the most a pause
/// or a cancel can lag in another process.
const STATUS_TTL: Duration = Duration::from_millis(200);
/// The longest a leaving reader's request waits for messages to them on the wire.
const REVOKE_WAIT: Duration = Duration::from_secs(10);

/// A digest made ready to send: headers and bodies encoded once.
pub(crate) struct Prepared {
    pub(crate) template: MessageTemplate,
    digest_id: i64,
}

pub struct Dispatcher {
    store: Store,
    mailer: Mailer,
    tokens: Tokens,
    metrics: Arc<Metrics>,
    /// Woken when a digest is queued in this process, so it starts without waiting a poll.
    pub wake: Arc<Notify>,
    /// By (digest, edition).
    prepared: Mutex<HashMap<(i64, i64), Arc<Prepared>>>,
    breaker: Breaker,
    /// Recently read digest statuses: (still sending, when read).
    status: Mutex<HashMap<i64, (bool, Instant)>>,
    revocations: Revocations,
    /// The writer's channel while `run` runs, for rows resolved outside the send loop.
    outcomes: Mutex<Option<mpsc::Sender<Done>>>,
}

impl Dispatcher {
    pub fn new(store: Store, mailer: Mailer, metrics: Arc<Metrics>) -> Arc<Dispatcher> {
        let tokens = Tokens::new(mailer.settings.security.secret.expose_secret());
        Arc::new(Dispatcher {
            store,
            mailer,
            tokens,
            metrics,
            wake: Arc::new(Notify::new()),
            prepared: Mutex::default(),
            breaker: Breaker::default(),
            status: Mutex::default(),
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
    async fn refresh_revocations(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(REFRESH_EVERY) => {}
                _ = shutdown.wait_for(|v| *v) => return,
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
    ) -> anyhow::Result<Arc<Prepared>> {
        let key = (digest_id, edition);
        if let Some(p) = self.prepared.lock().expect("not poisoned").get(&key) {
            return Ok(p.clone());
        }
        let mut d: Digest = self
            .store
            .digest(digest_id)
            .await?
            .context("digest vanished")?;
        if edition != 0 {
            let e = self
                .store
                .digest_edition(digest_id, edition)
                .await?
                .context("digest edition vanished")?;
            (d.subject, d.html, d.text) = (e.subject, e.html, e.text);
        }
        let s = self.settings();
        let feedback = format!(
            "{}:{}:{}:nashra",
            d.id,
            sanitize_fbl(&d.schedule),
            sanitize_fbl(&s.newsletter.list_id)
        );
        let slots = SlotMarkers::from_key(&d.slot_key);
        // A test send is not in the public archive; its link carries a key that opens it.
        let web_url = if d.kind == DigestKind::Test {
            s.public_url(&format!(
                "/archive/{}?key={}",
                d.id,
                self.tokens.archive(d.id)
            ))
        } else {
            s.public_url(&format!("/archive/{}", d.id))
        };
        let template = MessageTemplate::new(MessageSpec {
            from: &self.mailer.from,
            reply_to: reply_to(s),
            subject: &d.subject,
            html: &d.html,
            text: &d.text,
            list: Some((&s.newsletter.name, &s.newsletter.list_id)),
            feedback_id: Some(feedback),
            slots: Some((&slots, &web_url)),
        });
        let p = Arc::new(Prepared {
            template,
            digest_id,
        });
        self.prepared
            .lock()
            .expect("not poisoned")
            .insert(key, p.clone());
        Ok(p)
    }

    /// Remembers a digest's status as just read; one no longer sending is forgotten here
    /// (its template too: this process may never send it again).
    fn forget_status(&self, digest: i64, sending: bool) {
        let mut status = self.status.lock().expect("not poisoned");
        status.insert(digest, (sending, Instant::now()));
        // Old entries go: a process runs for months.
        if status.len() > 1_000 {
            status.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(60));
        }
        drop(status);
        if !sending {
            self.prepared
                .lock()
                .expect("not poisoned")
                .retain(|(d, _), _| *d != digest);
        }
    }

    /// Whether `digest` is still sending, as of at most [`STATUS_TTL`] ago (another process
    /// or the admin API may have paused or cancelled it).
    async fn active(&self, digest: i64) -> bool {
        if let Some((active, at)) = self.status.lock().expect("not poisoned").get(&digest)
            && at.elapsed() < STATUS_TTL
        {
            return *active;
        }
        let active = match self.store.digest_status(digest).await {
            Ok(s) => s == Some(DigestStatus::Sending),
            Err(_) => true,
        };
        self.forget_status(digest, active);
        active
    }

    /// Drains the queue until `shutdown` turns true; then stops claiming, lets in-flight
    /// messages finish (cutting off, after [`SHUTDOWN_GRACE`], any a relay keeps waiting),
    /// hands unsent claimed rows back and flushes the ledger.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
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
        };
        let writer = tokio::spawn(writer::run(ledger, self.clone(), rx));
        let refresher = tokio::spawn(self.clone().refresh_revocations(shutdown.clone()));
        let mut pacer = Pacer::new(self.settings().delivery.max_per_second);
        let mut relay_backoff = Duration::ZERO;
        let window = self.settings().delivery.send_window;
        let (relay_tx, mut relay_rx) = mpsc::unbounded_channel::<()>();

        'outer: loop {
            if *shutdown.borrow() {
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
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            if let Some(wait) = window.and_then(|w| w.wait(Utc::now())) {
                tracing::info!(
                    opens_in_s = wait.as_secs(),
                    "outside the sending window; waiting"
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
                    _ = shutdown.changed() => {}
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
                let wait = match self.store.next_due().await {
                    Ok(Some(due)) => Duration::from_millis(
                        (due - now_ms()).clamp(5, IDLE_POLL.as_millis() as i64) as u64,
                    ),
                    _ => IDLE_POLL,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            self.revocations.hold(&claimed);
            let mut rows: VecDeque<Claimed> = claimed.into();
            while let Some(mut row) = rows.pop_front() {
                let wait = pacer.next(&self.store).await.unwrap_or_default();
                let permit = tokio::select! {
                    // Shutdown first: once asked to stop, nothing new starts.
                    biased;
                    _ = shutdown.wait_for(|v| *v) => None,
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
    async fn deliver(self: &Arc<Self>, row: Claimed) -> Option<Done> {
        // Paused, cancelled or stopped since the row was claimed: hand it back unsent.
        if self.breaker.is_stopping(row.digest_id) || !self.active(row.digest_id).await {
            self.revocations.unhold(row.id);
            return Some(Done::from(row.release()));
        }
        let digest = row.digest_id;
        let (outcome, relay_down) = self.deliver_one(row).await?;
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
        let prepared = match self.prepared(row.digest_id, row.edition).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), digest = row.digest_id, "cannot prepare digest");
                self.revocations.unhold(row.id);
                return Some((row.release(), false));
            }
        };
        // A test send's rows (0, -1, …) name no reader: their links are a test's own.
        let reader = row.subscriber_id.max(0);
        let token = self.tokens.unsubscribe(reader);
        let settings = &self.mailer.settings;
        let unsub = settings.public_url(&format!("/unsubscribe/{token}"));
        // A test send's link opens a page that says it belongs to a test.
        let prefs =
            Some(settings.public_url(&format!("/preferences/{}", self.tokens.preferences(reader))));
        // Filled whatever `click_counts` says now: a digest rendered while it was on keeps
        // working links if it is switched off mid-send (the body without the slot ignores it).
        let click = self.tokens.click_key(row.id);
        let mailto = self.mailer.unsubscribe_mailto(&token);
        let message_id = prepared.template.new_message_id();
        // Names stored before names were checked get the same check here.
        let name = SubscriberName::sanitize(&row.name);
        let bytes = prepared.template.build(
            &Personal {
                to: email,
                unsubscribe_url: Some(&unsub),
                unsubscribe_mailto: mailto.as_deref(),
                name: &name,
                preferences_url: prefs.as_deref(),
                click: &click,
                date: Utc::now(),
            },
            &message_id,
        );
        let bytes = match self.mailer.sign(bytes).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), delivery = row.id, "cannot sign");
                self.revocations.unhold(row.id);
                return Some((row.release(), false));
            }
        };
        let envelope_from = self
            .mailer
            .envelope_from(&self.tokens, VerpTarget::Delivery(row.id));
        let file = format!("digest-{}-{}", prepared.digest_id, row.id);
        // Preparing took time: a claim that could run out on the wire is handed back.
        if row.lease_until - now_ms() < self.send_budget().as_millis() as i64 {
            self.revocations.unhold(row.id);
            return Some((row.release(), false));
        }
        // The reader left after this row was claimed: nothing more goes to them. Checked
        // (and the message counted as on the wire) right before it goes.
        let _in_flight = match self.revocations.start(&row) {
            Start::Go(guard) => guard,
            Start::Revoked => return Some((Outcome::Skipped { id: row.id }, false)),
            Start::Resolved => return None,
        };
        let started = Instant::now();
        let res = self
            .mailer
            .transport
            .send(&envelope_from, email, bytes, &file)
            .await;
        self.metrics.observe_smtp(started.elapsed());
        let d = &self.mailer.settings.delivery;
        Some(match res {
            Ok(()) => {
                self.metrics
                    .sent
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (
                    Outcome::Sent {
                        id: row.id,
                        message_id,
                        at: now_ms(),
                    },
                    false,
                )
            }
            Err(SendError::Connection(m)) => {
                self.metrics.count_failure("connection");
                tracing::warn!(delivery = row.id, error = %redact_addresses(&m), "relay connection failed");
                // The relay, not the reader, failed before the message went out: the attempt
                // does not count.
                (row.release(), true)
            }
            Err(SendError::Transient(m)) if (row.attempts as u32) < d.max_attempts => {
                self.metrics.count_failure("transient");
                self.metrics
                    .retried
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let next =
                    now_ms() + backoff(d.retry_after, row.attempts as u32).as_millis() as i64;
                (
                    Outcome::Retry {
                        id: row.id,
                        lease: row.lease_until,
                        error: m,
                        next_attempt_at: next,
                    },
                    false,
                )
            }
            Err(e) => {
                let permanent = matches!(e, SendError::Permanent(_));
                self.metrics.count_failure(if permanent {
                    "permanent"
                } else {
                    "attempts_exhausted"
                });
                tracing::info!(delivery = row.id, reason = e.reason(), "delivery failed");
                (
                    Outcome::Failed {
                        id: row.id,
                        lease: row.lease_until,
                        error: e.message().to_owned(),
                        permanent,
                    },
                    false,
                )
            }
        })
    }
}

impl writer::SendEnded for Dispatcher {
    /// Stopped or finished: not sending any more, and not stopping either.
    fn send_ended(&self, digest: i64) {
        self.forget_status(digest, false);
        self.breaker.stopped(digest);
    }
}
