//! How fast and when: the deployment-wide rate, the sending window, the claim size.
//!
//! `delivery.max_per_second` is the relay account's limit, so it holds for the whole
//! deployment: each process reserves send times from one row in the store
//! (`Store::reserve_sends`), a tenth of a second's worth at a time, and waits for each. Two
//! workers at 50 a second send 50 a second together.

use std::{collections::VecDeque, time::Duration};

use crate::{config::Settings, store::Store};

/// Send times reserved at once: one at a time up to this rate (a store round trip per message
/// is nothing at a relay's usual limits), a tenth of a second's worth above it.
const ONE_BY_ONE_UP_TO: f64 = 200.0;
const RESERVE_SPAN: f64 = 0.1;

pub(super) struct Pacer {
    /// Microseconds between two sends, deployment-wide; `None` = unlimited.
    interval_us: Option<f64>,
    /// Send times reserved for this process (µs since the epoch), soonest first.
    slots: VecDeque<i64>,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Pacer {
    pub(super) fn new(per_second: f64) -> Pacer {
        Pacer {
            interval_us: (per_second > 0.0).then(|| 1e6 / per_second),
            slots: VecDeque::new(),
        }
    }

    /// How long to wait before the next send (`None`: go now). Reserves more send times
    /// from the store when this process has none left; if the store cannot be asked, paces
    /// locally for this once rather than stall.
    pub(super) async fn next(&mut self, store: &Store) -> Option<Duration> {
        let interval = self.interval_us?;
        let now = now_us();
        // A reserved time long past was not used: using it now would be a burst.
        while self
            .slots
            .front()
            .is_some_and(|t| *t < now - interval as i64)
        {
            self.slots.pop_front();
        }
        if self.slots.is_empty() {
            let per_second = 1e6 / interval;
            let n = if per_second <= ONE_BY_ONE_UP_TO {
                1
            } else {
                (per_second * RESERVE_SPAN).ceil() as i64
            };
            match store.reserve_sends(n, interval, now).await {
                Ok(first) => {
                    for k in 0..n {
                        self.slots
                            .push_back(first + (k as f64 * interval).round() as i64);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot reserve send times; pacing locally");
                    return Some(Duration::from_micros(interval as u64));
                }
            }
        }
        let at = self.slots.pop_front()?;
        let wait = at - now_us();
        (wait > 0).then(|| Duration::from_micros(wait as u64))
    }
}

/// Rows claimed at once. Claimed rows that have not started cannot be duplicated by a crash
/// (they come back when the lease ends), so batches larger than `concurrency` only save
/// round trips to the store.
pub(super) fn claim_batch(s: &Settings) -> i64 {
    let d = &s.delivery;
    let mut batch = (d.concurrency * 4).clamp(16, 512) as f64;
    // Paced sends start slowly: a claimed row must start well inside its lease, even when
    // several workers share the rate (a sixteenth of a lease at the whole rate).
    if d.max_per_second > 0.0 {
        batch = batch.min((d.max_per_second * d.lease.as_secs_f64() / 16.0).max(1.0));
    }
    batch as i64
}
