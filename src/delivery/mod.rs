//! The delivery engine: a durable queue (the ledger in the store) drained by one dispatcher
//! per process.
//!
//! The dispatcher claims due ledger rows with a lease, sends each through the transport with
//! at most `delivery.concurrency` in flight, and writes outcomes back in batches. What a crash
//! can duplicate is bounded: a row is marked sent at most one flush after its SMTP transaction
//! ended, and the flush buffer holds at most `concurrency` outcomes, so at most
//! 2 × concurrency messages (in flight + unflushed) can go out twice. Nothing is ever
//! skipped: a row leaves the queue only by being marked sent, failed, skipped or cancelled,
//! and a row whose worker died returns when its lease runs out.
//!
//! A reader who unsubscribes or is erased mid-send gets nothing after the request returned:
//! the store skips their rows (claimed ones too), and the request then waits on
//! [`Dispatcher::revoke`], which stops this process from starting a message to them and
//! waits for one already on the wire.

mod mailq;
pub mod message;
mod smtp;
pub mod transport;
pub mod window;

pub use mailq::MailQueue;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::Utc;
use rand::Rng;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use crate::{
    config::Settings,
    domain::{Mailbox, SubscriberName, Tokens},
    metrics::Metrics,
    render::SlotMarkers,
    store::{Claimed, Digest, Outcome, Store, now_ms},
};
use message::{MessageSpec, MessageTemplate, Personal};
use transport::{SendError, Transport};

/// How long outcomes may wait before they are written (the other half of the crash window).
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How stale a digest's status may be when deciding to send one of its rows: the most a pause
/// or a cancel can lag in another process.
const STATUS_TTL: Duration = Duration::from_millis(200);
/// How often finished sends are looked for while outcomes keep coming.
const FINISH_EVERY: Duration = Duration::from_millis(250);
/// Longest sleep while the queue is empty, in case another process queued work.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// At shutdown, how long messages on the wire may take to finish before they are cut off
/// (and retried, as an attempt, by whoever runs next).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Revocations remembered at most; older ones go first.
const MAX_REVOCATIONS: usize = 100_000;

/// What every part of the process shares to send mail.
#[derive(Clone)]
pub struct Mailer {
    pub transport: Transport,
    pub from: Mailbox,
    pub settings: Arc<Settings>,
}

impl Mailer {
    pub fn new(settings: Arc<Settings>) -> anyhow::Result<Mailer> {
        let transport = Transport::from_settings(&settings)?;
        let from = Mailbox::parse(&settings.newsletter.from).context("newsletter.from")?;
        Ok(Mailer {
            transport,
            from,
            settings,
        })
    }

    /// Whether a non-ASCII address can be delivered (see `Transport::smtputf8`).
    pub fn smtputf8(&self) -> Option<bool> {
        self.transport.smtputf8()
    }
}

pub(crate) fn reply_to(s: &Settings) -> Option<&str> {
    (!s.newsletter.reply_to.is_empty()).then_some(s.newsletter.reply_to.as_str())
}

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
    prepared: Mutex<HashMap<i64, Arc<Prepared>>>,
    streaks: Mutex<Streaks>,
    /// Recently read digest statuses: (still sending, when read).
    status: Mutex<HashMap<i64, (bool, Instant)>>,
    /// Readers who left mid-send, and messages to each reader on the wire right now.
    revocations: Mutex<Revocations>,
    /// Woken whenever a message ends, for [`Dispatcher::revoke`] waiting on one.
    ended: Notify,
}

#[derive(Default)]
struct Revocations {
    /// subscriber → when they left: rows claimed before that are not started.
    revoked: HashMap<i64, Instant>,
    /// subscriber → messages to them in flight in this process.
    in_flight: HashMap<i64, usize>,
}

/// Counts a message as in flight until dropped (also when its task is cut off).
struct InFlight<'a> {
    dispatcher: &'a Dispatcher,
    subscriber: i64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut r = self.dispatcher.revocations.lock().expect("not poisoned");
        if let Some(n) = r.in_flight.get_mut(&self.subscriber) {
            *n -= 1;
            if *n == 0 {
                r.in_flight.remove(&self.subscriber);
            }
        }
        drop(r);
        self.dispatcher.ended.notify_waiters();
    }
}

/// Per-digest runs of failures without a success in between, and the digests being stopped
/// because of one. Checked before every send, so a relay that rejects everything is noticed
/// within the messages already in flight, not after the ledger catches up.
#[derive(Default)]
struct Streaks {
    failures: HashMap<i64, u32>,
    stopping: std::collections::HashSet<i64>,
}

impl Dispatcher {
    pub fn new(store: Store, mailer: Mailer, metrics: Arc<Metrics>) -> Arc<Dispatcher> {
        let tokens = Tokens::new(&mailer.settings.security.secret);
        Arc::new(Dispatcher {
            store,
            mailer,
            tokens,
            metrics,
            wake: Arc::new(Notify::new()),
            prepared: Mutex::default(),
            streaks: Mutex::default(),
            status: Mutex::default(),
            revocations: Mutex::default(),
            ended: Notify::new(),
        })
    }

    /// A reader left (unsubscribed, erased) after the store took them out of every send: no
    /// message to them starts in this process from now on, and this returns once any message
    /// to them already on the wire has ended (at most twice `smtp.timeout`).
    pub async fn revoke(&self, subscriber: i64) {
        {
            let mut r = self.revocations.lock().expect("not poisoned");
            if r.revoked.len() >= MAX_REVOCATIONS {
                // Rows claimed longer ago than a lease are not ours to send any more.
                let lease = self.settings().delivery.lease;
                r.revoked.retain(|_, at| at.elapsed() < lease);
                if r.revoked.len() >= MAX_REVOCATIONS {
                    let oldest = r.revoked.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k);
                    if let Some(k) = oldest {
                        r.revoked.remove(&k);
                    }
                }
            }
            r.revoked.insert(subscriber, Instant::now());
        }
        let deadline = tokio::time::Instant::now() + self.mailer.settings.smtp.timeout * 2;
        loop {
            let ended = self.ended.notified();
            if !self
                .revocations
                .lock()
                .expect("not poisoned")
                .in_flight
                .contains_key(&subscriber)
            {
                return;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return;
            }
        }
    }

    /// Marks a message to `row`'s reader as on the wire, unless they left after it was
    /// claimed.
    fn start(&self, row: &Claimed) -> Option<InFlight<'_>> {
        let mut r = self.revocations.lock().expect("not poisoned");
        if r.revoked
            .get(&row.subscriber_id)
            .is_some_and(|at| *at >= row.claimed_at.0)
        {
            return None;
        }
        *r.in_flight.entry(row.subscriber_id).or_default() += 1;
        Some(InFlight {
            dispatcher: self,
            subscriber: row.subscriber_id,
        })
    }

    fn settings(&self) -> &Settings {
        &self.mailer.settings
    }

    /// The digest's message template, built once per process and cached.
    pub(crate) async fn prepared(&self, digest_id: i64) -> anyhow::Result<Arc<Prepared>> {
        if let Some(p) = self.prepared.lock().expect("not poisoned").get(&digest_id) {
            return Ok(p.clone());
        }
        let d: Digest = self
            .store
            .digest(digest_id)
            .await?
            .context("digest vanished")?;
        let s = self.settings();
        let feedback = format!(
            "{}:{}:{}:nashra",
            d.id,
            sanitize_fbl(&d.schedule),
            sanitize_fbl(&s.newsletter.list_id)
        );
        let slots = SlotMarkers::from_key(&d.slot_key);
        // A test send is not in the public archive; its link carries a key that opens it.
        let web_url = if d.kind == "test" {
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
            .insert(digest_id, p.clone());
        Ok(p)
    }

    /// Drains the queue until `shutdown` turns true; then stops claiming, lets in-flight
    /// messages finish (cutting off, after [`SHUTDOWN_GRACE`], any a relay keeps waiting),
    /// hands unsent claimed rows back and flushes the ledger.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let conc = self.settings().delivery.concurrency;
        let sem = Arc::new(Semaphore::new(conc));
        let (hard_stop_tx, hard_stop) = watch::channel(false);
        let (tx, rx) = mpsc::channel::<Done>(conc * 4);
        let writer = tokio::spawn(self.clone().write_outcomes(rx));
        let mut pacer = Pacer::new(self.settings().delivery.max_per_second);
        let mut relay_backoff = Duration::ZERO;
        let window = window::SendWindow::parse(
            &self.settings().delivery.window,
            &self.settings().delivery.window_timezone,
        )?;
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
            let mut rows = claimed.into_iter();
            while let Some(row) = rows.next() {
                let wait = pacer.next().unwrap_or_default();
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
                    release_all(&tx, std::iter::once(row).chain(rows.by_ref())).await;
                    break 'outer;
                };
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
                        _ = hard_stop.wait_for(|v| *v) => Done::from(Outcome::Retry {
                            id,
                            lease,
                            error: "interrupted by shutdown".into(),
                            next_attempt_at: now_ms(),
                        }),
                    };
                    if done.relay_down {
                        let _ = relay_tx.send(());
                    } else {
                        this.metrics
                            .relay_down
                            .store(0, std::sync::atomic::Ordering::Relaxed);
                    }
                    // The writer never stops taking these (it buffers while the store fails),
                    // so this cannot block shutdown.
                    let _ = out.send(done).await;
                    drop(permit);
                });
                if !relay_rx.is_empty() {
                    // Stop feeding a dead relay: give back the rest of the batch.
                    release_all(&tx, rows.by_ref()).await;
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
        drop(tx);
        writer.await.context("ledger writer panicked")??;
        Ok(())
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
            Ok(s) => s.as_deref() == Some("sending"),
            Err(_) => true,
        };
        self.status
            .lock()
            .expect("not poisoned")
            .insert(digest, (active, Instant::now()));
        active
    }

    /// Sends one claimed row; never fails, it reports the outcome, whether the relay could
    /// not be reached at all, and whether this outcome stops its send.
    async fn deliver(self: &Arc<Self>, row: Claimed) -> Done {
        let stopping = self
            .streaks
            .lock()
            .expect("not poisoned")
            .stopping
            .contains(&row.digest_id);
        // Paused, cancelled or stopped since the row was claimed: hand it back unsent.
        if stopping || !self.active(row.digest_id).await {
            return Done::from(row.release());
        }
        let digest = row.digest_id;
        let (outcome, relay_down) = self.deliver_one(row).await;
        let stop = match &outcome {
            Outcome::Sent { .. } => self.track_streak(digest, None),
            Outcome::Retry { error, .. } | Outcome::Failed { error, .. } => {
                self.track_streak(digest, Some(error))
            }
            _ => None,
        };
        Done {
            outcome,
            relay_down,
            stop: stop.map(|reason| (digest, reason)),
        }
    }

    async fn deliver_one(&self, row: Claimed) -> (Outcome, bool) {
        let Some(email) = row.email.as_deref().filter(|_| row.status == "confirmed") else {
            return (Outcome::Skipped { id: row.id }, false);
        };
        let prepared = match self.prepared(row.digest_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), digest = row.digest_id, "cannot prepare digest");
                return (row.release(), false);
            }
        };
        let unsub = self.mailer.settings.public_url(&format!(
            "/unsubscribe/{}",
            self.tokens.unsubscribe(row.subscriber_id)
        ));
        let message_id = prepared.template.new_message_id();
        // Names stored before names were checked get the same check here.
        let name = SubscriberName::sanitize(&row.name);
        let bytes = prepared.template.build(
            &Personal {
                to: email,
                unsubscribe_url: Some(&unsub),
                name: &name,
                date: Utc::now(),
            },
            &message_id,
        );
        let name = format!("digest-{}-{}", prepared.digest_id, row.id);
        // The reader left after this row was claimed: nothing more goes to them. Checked
        // (and the message counted as on the wire) right before it goes.
        let Some(_in_flight) = self.start(&row) else {
            return (Outcome::Skipped { id: row.id }, false);
        };
        let started = Instant::now();
        let res = self
            .mailer
            .transport
            .send(self.mailer.from.email.as_str(), email, bytes, &name)
            .await;
        self.metrics.observe_smtp(started.elapsed());
        let d = &self.mailer.settings.delivery;
        match res {
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
        }
    }

    /// Batches outcomes into the ledger, after stopping any send an outcome says to stop (so
    /// a stopped send is never seen as finished, and never bounces anyone).
    ///
    /// It never stops taking outcomes: while the store refuses writes they wait in memory
    /// (no more than the messages in flight, since claiming needs the store too) and the
    /// write is retried with backoff. Once shutdown closed the channel, it tries for
    /// [`SHUTDOWN_GRACE`] more and then gives up: those rows come back when their leases end.
    async fn write_outcomes(self: Arc<Self>, mut rx: mpsc::Receiver<Done>) -> anyhow::Result<()> {
        let cap = self.settings().delivery.concurrency.max(1);
        let bounce_after = self.settings().delivery.bounce_after;
        let mut buf: Vec<Outcome> = Vec::with_capacity(cap);
        let mut stops: Vec<(i64, String)> = Vec::new();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closed_at: Option<Instant> = None;
        let mut last_finish = Instant::now();
        // Outcomes were written since finished sends were last looked for.
        let mut finish_pending = false;
        // While writes fail: when to try again, and the delay after that.
        let mut retry: Option<(Instant, Duration)> = None;
        while closed_at.is_none() || !buf.is_empty() || !stops.is_empty() || finish_pending {
            let flush = tokio::select! {
                m = rx.recv(), if closed_at.is_none() => match m {
                    Some(done) => {
                        stops.extend(done.stop);
                        buf.push(done.outcome);
                        buf.len() >= cap
                    }
                    None => { closed_at = Some(Instant::now()); true }
                },
                _ = tick.tick() => true,
            };
            if !flush || retry.is_some_and(|(at, _)| Instant::now() < at) {
                continue;
            }
            for (digest, reason) in std::mem::take(&mut stops) {
                self.stop_send(digest, &reason).await;
            }
            if !buf.is_empty() {
                match self.store.record(&buf).await {
                    Ok(()) => {
                        buf.clear();
                        finish_pending = true;
                        retry = None;
                    }
                    Err(e) => {
                        let delay = retry.map_or(Duration::from_millis(100), |(_, d)| {
                            (d * 2).min(Duration::from_secs(5))
                        });
                        tracing::error!(error = %format!("{e:#}"), pending = buf.len(), retry_ms = delay.as_millis() as u64, "ledger write failed");
                        retry = Some((Instant::now() + delay, delay));
                        if closed_at.is_some_and(|at| at.elapsed() >= SHUTDOWN_GRACE) {
                            tracing::error!(
                                outcomes = buf.len(),
                                "giving up on writing outcomes at shutdown; their rows return to the queue when their leases end"
                            );
                            buf.clear();
                            finish_pending = false;
                        }
                        continue;
                    }
                }
            }
            if finish_pending && (closed_at.is_some() || last_finish.elapsed() >= FINISH_EVERY) {
                finish_pending = false;
                last_finish = Instant::now();
                self.finish_sends(bounce_after).await;
            }
        }
        Ok(())
    }

    /// Stops a send whose relay rejects everything, with the last reply as its reason.
    async fn stop_send(&self, digest: i64, reason: &str) {
        tracing::error!(digest, "relay rejects everything; stopping the send");
        if let Err(e) = self.store.fail_digest(digest, reason).await {
            tracing::error!(error = %format!("{e:#}"), "cannot stop digest");
        }
        self.status
            .lock()
            .expect("not poisoned")
            .insert(digest, (false, Instant::now()));
        self.streaks
            .lock()
            .expect("not poisoned")
            .stopping
            .remove(&digest);
    }

    /// Marks sends with nothing left in flight as done.
    async fn finish_sends(&self, bounce_after: u32) {
        match self.store.finish_digests(bounce_after).await {
            Ok(done) => {
                for id in done {
                    tracing::info!(digest = id, "send finished");
                    self.prepared.lock().expect("not poisoned").remove(&id);
                    if let Ok(Some(d)) = self.store.digest(id).await
                        && let (Some(a), Some(b)) = (d.started_at, d.finished_at)
                    {
                        self.metrics
                            .observe_send(Duration::from_millis((b - a).max(0) as u64));
                    }
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot finish digests"),
        }
    }

    /// Counts a failure (or a success) for `digest`; after `stop_after_failures` in a row it
    /// returns the reason to stop the send with (once), and the writer stops it before it
    /// records this outcome.
    fn track_streak(&self, digest: i64, failure: Option<&str>) -> Option<String> {
        let stop_after = self.settings().delivery.stop_after_failures;
        let mut st = self.streaks.lock().expect("not poisoned");
        let Some(error) = failure else {
            st.failures.remove(&digest);
            return None;
        };
        let n = {
            let n = st.failures.entry(digest).or_default();
            *n += 1;
            *n
        };
        if n < stop_after || !st.stopping.insert(digest) {
            return None;
        }
        st.failures.remove(&digest);
        Some(format!(
            "stopped after {n} consecutive failures; last: {error}"
        ))
    }
}

/// What became of one claimed row, for the ledger writer.
struct Done {
    outcome: Outcome,
    /// The relay could not be reached at all.
    relay_down: bool,
    /// This outcome ends a failure streak that stops its send: (digest, reason).
    stop: Option<(i64, String)>,
}

impl From<Outcome> for Done {
    fn from(outcome: Outcome) -> Done {
        Done {
            outcome,
            relay_down: false,
            stop: None,
        }
    }
}

/// Hands claimed rows back unsent.
async fn release_all(tx: &mpsc::Sender<Done>, rows: impl Iterator<Item = Claimed>) {
    for r in rows {
        let _ = tx.send(Done::from(r.release())).await;
    }
}

/// Rows claimed at once. Claimed rows that have not started cannot be duplicated by a crash
/// (they come back when the lease ends), so batches larger than `concurrency` only save
/// round trips to the store.
fn claim_batch(s: &Settings) -> i64 {
    let d = &s.delivery;
    let mut batch = (d.concurrency * 4).clamp(16, 512) as f64;
    // Paced sends start slowly: a claimed row must start well inside its lease.
    if d.max_per_second > 0.0 {
        batch = batch.min((d.max_per_second * d.lease.as_secs_f64() / 4.0).max(1.0));
    }
    batch as i64
}

/// `retry_after × 2^(attempt−1)`, with ±25 % jitter so a crowd of retries spreads out.
pub fn backoff(retry_after: Duration, attempt: u32) -> Duration {
    let base = retry_after.as_millis() as f64 * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let jitter = rand::rng().random_range(0.75..1.25);
    Duration::from_millis((base * jitter) as u64)
}

/// Relay replies often quote the recipient ("550 5.1.1 <alice@example.com>… "): logs get
/// `***@domain` instead.
pub fn redact_addresses(s: &str) -> String {
    static ADDR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[^\s<>@,;:]+@([A-Za-z0-9.-]+)").expect("valid regex")
    });
    ADDR.replace_all(s, "***@$1").into_owned()
}

fn sanitize_fbl(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect()
}

/// Smooth pacing: one message every 1/rate seconds, no bursts beyond a single slot.
struct Pacer {
    interval: Option<Duration>,
    next: Instant,
}

impl Pacer {
    fn new(per_second: f64) -> Pacer {
        let interval = (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second));
        Pacer {
            interval,
            next: Instant::now(),
        }
    }

    /// How long to wait before the next send.
    fn next(&mut self) -> Option<Duration> {
        let interval = self.interval?;
        let now = Instant::now();
        if self.next < now {
            self.next = now;
        }
        let wait = self.next - now;
        self.next += interval;
        (!wait.is_zero()).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter() {
        let b1 = backoff(Duration::from_secs(30), 1).as_secs_f64();
        let b3 = backoff(Duration::from_secs(30), 3).as_secs_f64();
        assert!((22.0..38.0).contains(&b1), "{b1}");
        assert!((90.0..150.0).contains(&b3), "{b3}");
    }

    #[test]
    fn addresses_are_redacted_from_log_lines() {
        assert_eq!(
            redact_addresses("550 5.1.1 <alice.b@example.com>: no such user"),
            "550 5.1.1 <***@example.com>: no such user"
        );
    }

    #[test]
    fn pacer_spaces_sends() {
        let mut p = Pacer::new(100.0);
        let waits: Vec<Duration> = (0..5).filter_map(|_| p.next()).collect();
        assert_eq!(waits.len(), 4);
        assert!(waits[3] >= Duration::from_millis(35));
    }
}
