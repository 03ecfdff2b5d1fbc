//! The ledger writer: outcomes in batches, sends stopped by the breaker or paused by the
//! guard, sends finished.
//!
//! A row is marked sent at most one flush ([`FLUSH_EVERY`], or `concurrency − 1` outcomes)
//! after its SMTP transaction ended, and a sender waits (holding its place in `concurrency`)
//! while the writer is busy: messages on the wire plus outcomes not yet written stay within
//! 2 × concurrency, which is what a crash can send twice. A send the breaker stops is stopped before the outcome that stopped it is written,
//! so a stopped send is never seen as finished (and never bounces anyone).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use super::{guard, wait::SHUTDOWN_GRACE};
use crate::{
    config::Guard,
    metrics::Metrics,
    store::{Outcome, Store},
};

/// How long outcomes may wait before they are written (the other half of the crash window).
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How often finished sends are looked for while outcomes keep coming.
const FINISH_EVERY: Duration = Duration::from_millis(250);

/// What became of one claimed row.
pub(super) struct Done {
    pub(super) outcome: Outcome,
    /// The relay could not be reached at all.
    pub(super) relay_down: bool,
    /// This outcome ends a failure streak that stops its send: (digest, reason).
    pub(super) stop: Option<(i64, String)>,
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

/// What the writer needs, and whom it tells when a send stops or ends.
pub(super) struct Ledger {
    pub(super) store: Store,
    pub(super) metrics: Arc<Metrics>,
    /// Outcomes gathered before a write (`delivery.concurrency − 1`).
    pub(super) batch: usize,
    pub(super) bounce_after: u32,
    /// `[delivery.guard]`: sends over its limits pause themselves (see `guard`).
    pub(super) guard: Guard,
}

/// Told when the writer has stopped or finished a send (the dispatcher forgets it).
pub(super) trait SendEnded: Send + Sync + 'static {
    fn send_ended(&self, digest: i64);
}

/// Writes outcomes until the channel closes (every sender is gone, at shutdown).
///
/// It never stops taking outcomes: while the store refuses writes they wait in memory (no
/// more than the messages in flight, since claiming needs the store too) and the write is
/// retried with backoff. Once the channel closed it tries for [`SHUTDOWN_GRACE`] more and
/// then gives up: those rows come back when their leases end.
pub(super) async fn run(
    d: Ledger,
    ended: Arc<impl SendEnded>,
    mut rx: mpsc::Receiver<Done>,
) -> anyhow::Result<()> {
    let d = &d;
    let cap = d.batch.max(1);
    let bounce_after = d.bounce_after;
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
    let mut watch = guard::Watch::new();
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
            stop_send(d, digest, &reason).await;
            ended.send_ended(digest);
        }
        if !buf.is_empty() {
            match d.store.record(&buf).await {
                Ok(()) => {
                    watch.written(&buf);
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
        // Paused here: this process stops sending it at once, others within their status TTL.
        if watch.due() {
            for digest in guard::check(&d.store, &d.metrics, &d.guard, None).await {
                ended.send_ended(digest);
            }
        }
        if finish_pending && (closed_at.is_some() || last_finish.elapsed() >= FINISH_EVERY) {
            finish_pending = false;
            last_finish = Instant::now();
            for digest in finish_sends(d, bounce_after).await {
                ended.send_ended(digest);
            }
        }
    }
    Ok(())
}

/// Stops a send whose relay rejects everything, with the last reply as its reason.
async fn stop_send(d: &Ledger, digest: i64, reason: &str) {
    tracing::error!(digest, "relay rejects everything; stopping the send");
    if let Err(e) = d.store.fail_digest(digest, reason).await {
        tracing::error!(error = %format!("{e:#}"), "cannot stop digest");
    }
}

/// Marks sends with nothing left in flight as done; returns them.
async fn finish_sends(d: &Ledger, bounce_after: u32) -> Vec<i64> {
    match d.store.finish_digests(bounce_after).await {
        Ok(done) => {
            for id in &done {
                tracing::info!(digest = id, "send finished");
                if let Ok(Some(g)) = d.store.digest(*id).await
                    && let (Some(a), Some(b)) = (g.started_at, g.finished_at)
                {
                    d.metrics
                        .observe_send(Duration::from_millis((b - a).max(0) as u64));
                }
            }
            done
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot finish digests");
            vec![]
        }
    }
}
