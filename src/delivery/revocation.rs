//! Readers who leave mid-send (unsubscribe, erasure): nothing reaches them after their
//! request returned, in this process or any other.
//!
//! The store takes their queued rows out at once. Rows a worker has claimed stay with it, and
//! the worker checks before each message: this module keeps the rows this process holds
//! (claimed, not started), the readers who left (told directly by a request in this process,
//! or found every [`REFRESH_EVERY`] by asking the store which holders' readers are still
//! confirmed), and the messages on the wire. A leaving reader's held rows are resolved as
//! skipped at once; the request then waits until no worker anywhere holds a live claim on
//! them (`Store::deliveries_in_flight_to`), which covers a message already on the wire.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::Notify;

use crate::store::Claimed;

/// How often held rows' readers are checked against the store (the lag, in another process,
/// between a reader leaving and their held rows being resolved).
pub(super) const REFRESH_EVERY: Duration = Duration::from_millis(100);
/// Readers remembered as having left, at most; the oldest go first.
const MAX_REVOKED: usize = 100_000;

#[derive(Default)]
pub(super) struct Revocations {
    inner: Mutex<Inner>,
    /// Woken whenever a message ends.
    ended: Notify,
}

#[derive(Default)]
struct Inner {
    /// subscriber → when this process learnt they left: rows claimed before that do not start.
    revoked: HashMap<i64, Instant>,
    /// subscriber → messages to them on the wire in this process.
    in_flight: HashMap<i64, usize>,
    /// delivery → its reader, for rows claimed here and not started.
    held: HashMap<i64, i64>,
}

/// What to do with a claimed row about to start.
pub(super) enum Start<'a> {
    /// Send it; the guard counts the message as on the wire until dropped.
    Go(InFlight<'a>),
    /// Its reader left after it was claimed: record it as skipped.
    Revoked,
    /// Already resolved (skipped when its reader left): nothing to record.
    Resolved,
}

/// Counts a message as on the wire until dropped (also when its task is cut off).
pub(super) struct InFlight<'a> {
    owner: &'a Revocations,
    subscriber: i64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut r = self.owner.inner.lock().expect("not poisoned");
        if let Some(n) = r.in_flight.get_mut(&self.subscriber) {
            *n -= 1;
            if *n == 0 {
                r.in_flight.remove(&self.subscriber);
            }
        }
        drop(r);
        self.owner.ended.notify_waiters();
    }
}

impl Revocations {
    /// Rows just claimed by this process.
    pub(super) fn hold(&self, rows: &[Claimed]) {
        let mut r = self.inner.lock().expect("not poisoned");
        for row in rows {
            r.held.insert(row.id, row.subscriber_id);
        }
    }

    /// A held row handed back unsent.
    pub(super) fn unhold(&self, delivery: i64) {
        self.inner
            .lock()
            .expect("not poisoned")
            .held
            .remove(&delivery);
    }

    pub(super) fn start(&self, row: &Claimed) -> Start<'_> {
        let mut r = self.inner.lock().expect("not poisoned");
        if r.held.remove(&row.id).is_none() {
            return Start::Resolved;
        }
        if r.revoked
            .get(&row.subscriber_id)
            .is_some_and(|at| *at >= row.claimed_at.0)
        {
            return Start::Revoked;
        }
        *r.in_flight.entry(row.subscriber_id).or_default() += 1;
        Start::Go(InFlight {
            owner: self,
            subscriber: row.subscriber_id,
        })
    }

    /// `subscribers` left: no message to them starts here from now on. Returns the held rows
    /// this resolves (the caller records them as skipped).
    pub(super) fn revoke(&self, subscribers: &HashSet<i64>) -> Vec<i64> {
        let now = Instant::now();
        let mut r = self.inner.lock().expect("not poisoned");
        if r.revoked.len() + subscribers.len() > MAX_REVOKED {
            let mut by_age: Vec<(Instant, i64)> =
                r.revoked.iter().map(|(s, at)| (*at, *s)).collect();
            by_age.sort_unstable();
            for (_, s) in by_age.iter().take(by_age.len() / 2) {
                r.revoked.remove(s);
            }
        }
        for s in subscribers {
            r.revoked.insert(*s, now);
        }
        let resolved: Vec<i64> = r
            .held
            .iter()
            .filter(|(_, s)| subscribers.contains(s))
            .map(|(d, _)| *d)
            .collect();
        for d in &resolved {
            r.held.remove(d);
        }
        resolved
    }

    /// The readers of the rows held here (test sends, reader 0, excluded).
    pub(super) fn held_readers(&self) -> Vec<i64> {
        let r = self.inner.lock().expect("not poisoned");
        let mut v: Vec<i64> = r
            .held
            .values()
            .copied()
            .filter(|s| *s > 0)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        v.sort_unstable();
        v
    }

    /// Waits until no message to `subscriber` is on the wire in this process, or `deadline`.
    pub(super) async fn wait_local(&self, subscriber: i64, deadline: tokio::time::Instant) {
        loop {
            let ended = self.ended.notified();
            if !self
                .inner
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
}
