//! The send guard: a send whose complaints or hard bounces climb past `[delivery.guard]`'s
//! limits pauses itself, before it costs the domain its reputation for every later send.
//!
//! What is judged: of the messages a send is done with at the relay (taken, or refused for
//! good — "delivered" below), the share of hard bounces (a 5xx at send time, or a bounce
//! reported later by DSN or webhook) and of complaints, once at least `min_delivered` are
//! delivered. The counts are counters kept with the digest as outcomes and reports are
//! recorded, so a check is one indexed read of the sends under way, cheap enough to run
//! after every batch of outcomes that holds a refusal, whenever a bounce or a complaint is
//! recorded, and every [`CHECK_EVERY`] beside the ledger writer (reports recorded by another
//! process).
//!
//! A stop is the pause editors use: the send keeps its ledger, and an editor resumes or
//! cancels it. It is written once whatever the number of processes (a conditional update),
//! with the reason (English in the API's `error` and `guard`, Arabic on the console), an
//! audit entry by `guard`, and `nashra_sends_guard_paused_total{reason}`.
//!
//! After an editor resumes, the send is judged only on what it delivers from then on:
//! `min_delivered` more messages, and their own rates. The numbers that stopped it are the
//! editor's to weigh, and do not stop it again; a list that keeps bouncing does.

use std::time::Duration;

use crate::{
    config::Guard,
    metrics::Metrics,
    store::{AuditRecord, GuardCounts, GuardReason, GuardStop, Outcome, Store, now_ms},
};

/// How often the sends under way are judged even when this process records nothing.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The audit log's name for the guard.
pub const ACTOR: &str = "guard";

/// When the ledger writer judges: soon after a refusal is written (at most every
/// [`AFTER_REFUSAL`]), and every [`CHECK_EVERY`] in any case.
pub(super) struct Watch {
    last: std::time::Instant,
    refused: bool,
}

/// The shortest gap between two checks while refusals keep coming.
const AFTER_REFUSAL: Duration = Duration::from_millis(100);

impl Watch {
    pub(super) fn new() -> Watch {
        Watch {
            last: std::time::Instant::now(),
            refused: false,
        }
    }

    /// Notes a batch of outcomes just written.
    pub(super) fn written(&mut self, batch: &[Outcome]) {
        self.refused |= batch.iter().any(|o| {
            matches!(
                o,
                Outcome::Failed {
                    permanent: true,
                    ..
                }
            )
        });
    }

    /// Whether to check now (and, if so, the clock starts again).
    pub(super) fn due(&mut self) -> bool {
        let gap = if self.refused {
            AFTER_REFUSAL
        } else {
            CHECK_EVERY
        };
        if self.last.elapsed() < gap {
            return false;
        }
        self.last = std::time::Instant::now();
        self.refused = false;
        true
    }
}

/// A limit crossed: the stop to make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trip {
    pub reason: GuardReason,
    /// Complaints or hard bounces since the last resume …
    pub count: i64,
    /// … of messages delivered since then …
    pub delivered: i64,
    /// … above this rate.
    pub limit: f64,
}

/// Whether `c` crosses a limit of `g` (complaints first: the graver of the two).
pub fn judge(g: &Guard, c: &GuardCounts) -> Option<Trip> {
    if !g.enabled {
        return None;
    }
    let delivered = (c.delivered() - c.guard_base_delivered).max(0);
    if delivered == 0 || (delivered as u64) < g.min_delivered {
        return None;
    }
    let complaints = (c.complaints - c.guard_base_complaints).max(0);
    let hard = (c.hard_bounces - c.guard_base_hard).max(0);
    [
        (GuardReason::Complaints, complaints, g.max_complaint_rate),
        (GuardReason::HardBounces, hard, g.max_hard_bounce_rate),
    ]
    .into_iter()
    .find(|(_, n, limit)| *n as f64 / delivered as f64 > *limit)
    .map(|(reason, count, limit)| Trip {
        reason,
        count,
        delivered,
        limit,
    })
}

/// Judges the sends under way (`Some(id)`: that one), pauses those over a limit, and returns
/// the ones this call paused. Never fails: a store error is logged, and the next check tries
/// again.
pub async fn check(store: &Store, metrics: &Metrics, g: &Guard, digest: Option<i64>) -> Vec<i64> {
    if !g.enabled {
        return vec![];
    }
    let counts = match store.guard_counts(digest).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the send guard cannot read the sends under way");
            return vec![];
        }
    };
    let mut paused = Vec::new();
    for c in counts {
        let Some(trip) = judge(g, &c) else { continue };
        match pause(store, metrics, &c, trip).await {
            Ok(true) => paused.push(c.id),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(digest = c.id, error = %format!("{e:#}"), "the send guard cannot pause a send")
            }
        }
    }
    paused
}

/// Pauses the send of `c` for `trip`, once: true when this call did.
async fn pause(
    store: &Store,
    metrics: &Metrics,
    c: &GuardCounts,
    trip: Trip,
) -> anyhow::Result<bool> {
    let stop = GuardStop {
        reason: Some(trip.reason.as_str().to_owned()),
        count: Some(trip.count),
        delivered: Some(trip.delivered),
        limit: Some(trip.limit),
    };
    let english = stop.english().unwrap_or_default();
    let now = now_ms();
    if !store
        .guard_pause(c.id, &stop, c.guard_base_delivered, &english, now)
        .await?
    {
        return Ok(false);
    }
    tracing::warn!(
        digest = c.id,
        reason = trip.reason.as_str(),
        count = trip.count,
        delivered = trip.delivered,
        "the send paused itself"
    );
    metrics.count_guard_pause(trip.reason);
    let entry = AuditRecord {
        actor: ACTOR.into(),
        action: "send_guard_pause",
        target: format!("send:{}", c.id),
        detail: stop.arabic().unwrap_or_default(),
        client: ACTOR.into(),
    };
    if let Err(e) = store.audit(&entry, now).await {
        tracing::error!(error = %format!("{e:#}"), "audit entry not written");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn guard() -> Guard {
        Settings::from_toml_over_defaults("")
            .unwrap()
            .delivery
            .guard
    }

    fn counts(sent: i64, rejected: i64, later: i64, complaints: i64) -> GuardCounts {
        GuardCounts {
            id: 1,
            sent,
            rejected,
            hard_bounces: rejected + later,
            complaints,
            ..GuardCounts::default()
        }
    }

    #[test]
    fn nothing_is_judged_before_min_delivered() {
        let g = guard();
        // 40 % bouncing, but only 499 delivered.
        assert_eq!(judge(&g, &counts(300, 199, 0, 0)), None);
        assert!(judge(&g, &counts(301, 199, 0, 0)).is_some());
    }

    #[test]
    fn limits_are_strict_and_complaints_come_first() {
        let g = guard();
        // Exactly 5 % of 1,000: not above the limit.
        assert_eq!(judge(&g, &counts(950, 50, 0, 0)), None);
        let t = judge(&g, &counts(949, 51, 0, 0)).unwrap();
        assert_eq!(
            (t.reason, t.count, t.delivered),
            (GuardReason::HardBounces, 51, 1000)
        );
        // Bounces reported later count too.
        let t = judge(&g, &counts(1000, 20, 40, 0)).unwrap();
        assert_eq!(
            (t.reason, t.count, t.delivered),
            (GuardReason::HardBounces, 60, 1020)
        );
        // 0.3 % of 1,000 complaints is the line; one more crosses it, and comes first.
        assert_eq!(judge(&g, &counts(1000, 0, 0, 3)), None);
        let t = judge(&g, &counts(900, 100, 0, 4)).unwrap();
        assert_eq!(t.reason, GuardReason::Complaints);
        let mut off = g.clone();
        off.enabled = false;
        assert_eq!(judge(&off, &counts(900, 100, 0, 4)), None);
    }

    #[test]
    fn after_a_resume_only_what_follows_is_judged() {
        let g = guard();
        let mut c = counts(920, 80, 0, 0);
        assert!(judge(&g, &c).is_some());
        c.guard_base_delivered = 1000;
        c.guard_base_hard = 80;
        // 499 more, none bouncing: not judged yet; then 500 more with 30 bounces: 6 %.
        c.sent += 499;
        assert_eq!(judge(&g, &c), None);
        c.sent += 1;
        assert_eq!(judge(&g, &c), None);
        c.sent -= 30;
        c.rejected += 30;
        c.hard_bounces += 30;
        let t = judge(&g, &c).unwrap();
        assert_eq!((t.count, t.delivered), (30, 500));
    }
}
