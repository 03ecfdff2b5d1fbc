//! The failure breaker: a relay that rejects everything stops the send.
//!
//! Per digest, a run of failures without a success in between; after
//! `delivery.stop_after_failures` the send is stopped (once) with the last reply as its
//! reason. Checked before every send, so a relay that rejects everything is noticed within
//! the messages already in flight, not after the ledger catches up.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

#[derive(Default)]
pub(super) struct Breaker {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    failures: HashMap<i64, u32>,
    stopping: HashSet<i64>,
}

impl Breaker {
    /// Counts a failure (or, with `None`, a success) for `digest`. Returns the reason to stop
    /// the send with, once, when this failure completes a run of `stop_after`.
    pub(super) fn track(
        &self,
        digest: i64,
        failure: Option<&str>,
        stop_after: u32,
    ) -> Option<String> {
        let mut st = self.inner.lock().expect("not poisoned");
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

    /// Being stopped: its remaining rows are handed back unsent.
    pub(super) fn is_stopping(&self, digest: i64) -> bool {
        self.inner
            .lock()
            .expect("not poisoned")
            .stopping
            .contains(&digest)
    }

    /// The store has it as stopped now.
    pub(super) fn stopped(&self, digest: i64) {
        self.inner
            .lock()
            .expect("not poisoned")
            .stopping
            .remove(&digest);
    }
}
