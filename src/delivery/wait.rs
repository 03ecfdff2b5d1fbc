//! How the delivery loops wait: for work while their queue is empty, and for messages on the
//! wire at shutdown. The dispatcher and the mail queue wait the same way, so it is written
//! once here.

use std::time::Duration;

use tokio::sync::Notify;

use crate::{shutdown::Shutdown, store::now_ms};

/// At shutdown, how long messages on the wire may take to finish before they are cut off
/// (and retried, as an attempt, by whoever runs next), and how long the writer keeps trying.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Sleeps while a queue is empty: until its next row is due (`next_due`, in ms since the
/// epoch, as the store answered), for at most `poll` (another process may queue work), or
/// until this process queues work (`wake`) or shuts down.
pub(super) async fn idle(
    next_due: anyhow::Result<Option<i64>>,
    poll: Duration,
    wake: &Notify,
    shutdown: &mut Shutdown,
) {
    let wait = match next_due {
        Ok(Some(due)) => {
            Duration::from_millis((due - now_ms()).clamp(5, poll.as_millis() as i64) as u64)
        }
        _ => poll,
    };
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = wake.notified() => {}
        _ = shutdown.recv() => {}
    }
}
