//! Shutdown as every long-running part sees it (after mini-redis's `shutdown.rs`).
//!
//! The web server, the dispatcher, the mail queue, the scheduler, the feed pollers and the
//! bounce mailbox all stop on the same signal (SIGINT or SIGTERM, or a test's sender); each
//! gets a clone of one `Shutdown` rather than the raw channel, so "is it time to stop?" and
//! "wait until it is" read the same everywhere. It names no other module of the crate, so any
//! layer may take one.

use tokio::sync::watch;

/// Listens for the process's shutdown: a `watch` channel that turns true once.
///
/// A sender that is gone counts as shutdown: nobody is left to ask for it, and a part that
/// kept running could then never be stopped.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Whether shutdown has been asked for.
    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Returns once shutdown has been asked for (at once if it already was).
    pub async fn recv(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    fn from(rx: watch::Receiver<bool>) -> Shutdown {
        Shutdown { rx }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_on_once_asked_or_once_nobody_can_ask() {
        let (tx, rx) = watch::channel(false);
        let mut s = Shutdown::from(rx);
        assert!(!s.is_shutdown());
        tx.send(true).unwrap();
        assert!(s.is_shutdown());
        s.recv().await;

        let (tx, rx) = watch::channel(false);
        let mut s = Shutdown::from(rx);
        drop(tx);
        assert!(s.is_shutdown());
        s.recv().await;
    }
}
