//! Keeping claims alive: rows wait in a claimed batch for a free place and their pace, behind
//! a slow relay for longer than their lease. Before a row starts, its claim must still be this
//! worker's with a whole message left on it; when little is left the batch's leases are
//! extended together, and a row another worker claimed meanwhile is dropped.

use std::{
    collections::{HashSet, VecDeque},
    time::Duration,
};

use tokio::sync::mpsc;

use super::Dispatcher;
use crate::{
    delivery::writer::Done,
    store::{Claimed, now_ms},
};

impl Dispatcher {
    /// The longest a message may take once started (the SMTP transaction's own bound): a
    /// row starts only with at least this much of its lease left.
    pub(super) fn send_budget(&self) -> Duration {
        self.settings().smtp.timeout * 2
    }

    /// Whether `row` may start now. Rows wait in a claimed batch for a free place (behind a
    /// slow relay, longer than their lease): when the row's lease no longer leaves a whole
    /// message with room to spare, the claims on it and on the rest of the batch are extended
    /// together. A row whose lease changed was claimed again by another worker once it ran
    /// out: it is that worker's now, so it is dropped here, unsent and unrecorded.
    pub(super) async fn keep_claims(
        &self,
        row: &mut Claimed,
        rest: &mut VecDeque<Claimed>,
        tx: &mpsc::Sender<Done>,
    ) -> bool {
        let lease = self.settings().delivery.lease;
        let budget = self.send_budget();
        let renew_below = budget + lease.saturating_sub(budget) / 2;
        let now = now_ms();
        if row.lease_until - now >= renew_below.as_millis() as i64 {
            return true;
        }
        let held: Vec<(i64, i64)> = std::iter::once(&*row)
            .chain(rest.iter())
            .map(|r| (r.id, r.lease_until))
            .collect();
        let until = now + lease.as_millis() as i64;
        match self.store.renew_leases(&held, until).await {
            Ok(renewed) => {
                let renewed: HashSet<i64> = renewed.into_iter().collect();
                let lost = held.len() - renewed.len();
                if lost > 0 {
                    tracing::warn!(
                        lost,
                        "claims ran out while waiting and were taken by another worker"
                    );
                }
                rest.retain_mut(|r| {
                    r.lease_until = until;
                    let ours = renewed.contains(&r.id);
                    if !ours {
                        self.revocations.unhold(r.id);
                    }
                    ours
                });
                if renewed.contains(&row.id) {
                    row.lease_until = until;
                    true
                } else {
                    self.revocations.unhold(row.id);
                    false
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot renew leases");
                // Without the store's word a row goes only while its lease covers a message.
                if row.lease_until - now_ms() >= budget.as_millis() as i64 {
                    return true;
                }
                self.release_all(tx, std::iter::once(row.clone())).await;
                false
            }
        }
    }
}
