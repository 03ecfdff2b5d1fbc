//! What a transport's answer makes of a ledger row: sent; handed back without spending an
//! attempt when the relay could not be reached; retried later, after a growing delay, on a
//! 4xx while attempts remain; failed on a 5xx or when they run out. Counted in the metrics
//! on the way.

use std::{sync::atomic::Ordering, time::Duration};

use crate::{
    delivery::send_error::{SendError, backoff, redact_addresses},
    metrics::Metrics,
    store::{Claimed, Outcome, now_ms},
};

/// How a 4xx is retried (`delivery.max_attempts`, `delivery.retry_after`).
pub(super) struct Retries {
    pub(super) max_attempts: u32,
    pub(super) retry_after: Duration,
}

/// The outcome of sending `row` (as `message_id`, through `relay`), and whether the relay could not be
/// reached at all.
pub(super) fn outcome(
    row: &Claimed,
    sent: Result<(), SendError>,
    message_id: String,
    relay: Option<std::sync::Arc<str>>,
    d: Retries,
    metrics: &Metrics,
) -> (Outcome, bool) {
    match sent {
        Ok(()) => {
            metrics.sent.fetch_add(1, Ordering::Relaxed);
            (
                Outcome::Sent {
                    id: row.id,
                    message_id,
                    at: now_ms(),
                    relay,
                },
                false,
            )
        }
        Err(SendError::Connection(m)) => {
            metrics.count_failure("connection");
            tracing::warn!(error = %redact_addresses(&m), "relay connection failed");
            // The relay, not the reader, failed before the message went out: the attempt
            // does not count.
            (row.release(), true)
        }
        Err(SendError::Transient(m)) if (row.attempts as u32) < d.max_attempts => {
            metrics.count_failure("transient");
            metrics.retried.fetch_add(1, Ordering::Relaxed);
            let next = now_ms() + backoff(d.retry_after, row.attempts as u32).as_millis() as i64;
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
            metrics.count_failure(if permanent {
                "permanent"
            } else {
                "attempts_exhausted"
            });
            tracing::info!(reason = e.reason(), "delivery failed");
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
