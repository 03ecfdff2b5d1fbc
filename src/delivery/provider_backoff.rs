//! One mailbox provider that defers: when Microsoft (say) answers 4xx to most of its latest
//! messages, only its readers wait, with a growing backoff, while the others go on.
//!
//! Each process keeps, per provider, the answers to its latest `provider_window` attempts
//! (a 4xx, or attempts run out on 4xx, is a deferral; a message taken or refused for good is
//! not; a relay that cannot be reached says nothing about providers). When at least
//! `provider_deferral_rate` of a full window deferred, the provider backs off for
//! `provider_backoff`, doubled for each backoff in a row up to `provider_backoff_max`. The
//! backoff is written to the store (`provider_backoffs`), so every process holds the
//! provider's rows, and read back at most every [`REFRESH`].
//!
//! While a provider backs off, a row of its readers that comes up is handed back with its
//! next attempt at the backoff's end, its attempt not spent ([`Outcome::Held`]). Answers
//! that arrive meanwhile came from messages sent before, and are not judged. After a
//! backoff a shorter run decides ([`probe`]): a provider still deferring backs off again at
//! once, for twice as long; a full window mostly answered ends the run of backoffs.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering::Relaxed},
    },
    time::Duration,
};

use crate::{
    config::{Guard, Settings},
    domain::{Provider, Providers},
    metrics::Metrics,
    store::{Outcome, ProviderBackoff, Store, now_ms},
};

/// How stale this process's view of the stored backoffs may be.
const REFRESH: Duration = Duration::from_secs(1);

/// The attempts judged right after a backoff ended: a fifth of the window, at least 2.
fn probe(window: u32) -> usize {
    (window as usize / 5).max(2)
}

/// The wait of the `level`th backoff in a row.
fn wait(g: &Guard, level: i64) -> Duration {
    let doubled = 2u32.saturating_pow((level.max(1) - 1).min(30) as u32);
    g.provider_backoff
        .saturating_mul(doubled)
        .min(g.provider_backoff_max)
}

pub(super) struct ProviderBackoffs {
    store: Store,
    metrics: Arc<Metrics>,
    guard: Guard,
    classifier: Providers,
    state: Mutex<State>,
    /// When the stored backoffs were last read (ms since the epoch): the hot path reads
    /// this atomic, and one caller a second reads the store.
    refreshed: AtomicI64,
}

/// What one more answer makes of a provider.
enum Judged {
    /// Nothing yet.
    Wait,
    /// Its run of backoffs is over.
    Calm,
    /// It backs off (at the level after the one read).
    Trip(ProviderBackoff, i64),
}

#[derive(Default)]
struct State {
    /// Per provider, its latest answers (true: deferred), at most `provider_window`.
    windows: HashMap<Provider, VecDeque<bool>>,
    /// The stored backoffs as last read or written.
    stored: HashMap<Provider, ProviderBackoff>,
}

impl ProviderBackoffs {
    pub(super) fn new(store: Store, metrics: Arc<Metrics>, s: &Settings) -> ProviderBackoffs {
        ProviderBackoffs {
            store,
            metrics,
            guard: s.delivery.guard.clone(),
            classifier: s.providers.classifier.clone(),
            state: Mutex::default(),
            refreshed: AtomicI64::new(0),
        }
    }

    /// The provider of a row's address, when the guard is on.
    pub(super) fn provider(&self, email: Option<&str>) -> Option<Provider> {
        self.guard
            .enabled
            .then(|| email.map(|e| self.classifier.of_address(e)))
            .flatten()
    }

    /// Until when a row of `p`'s readers waits, while `p` backs off.
    pub(super) async fn held_until(&self, p: Option<Provider>) -> Option<i64> {
        let p = p?;
        self.refresh().await;
        let until = self
            .state
            .lock()
            .expect("not poisoned")
            .stored
            .get(&p)
            .map(|b| b.until_at)
            .filter(|u| *u > now_ms())?;
        self.metrics.count_provider(p, false);
        Some(until)
    }

    /// Judges `p`'s answer to one message; may start its backoff.
    pub(super) async fn observe(&self, p: Option<Provider>, outcome: &Outcome) {
        let Some(p) = p else { return };
        let deferred = match outcome {
            Outcome::Sent { .. }
            | Outcome::Failed {
                permanent: true, ..
            } => false,
            Outcome::Retry { .. }
            | Outcome::Failed {
                permanent: false, ..
            } => true,
            _ => return,
        };
        let now = now_ms();
        let (b, prev) = match self.judge(p, deferred, now) {
            Judged::Wait => return,
            Judged::Calm => {
                if let Err(e) = self.store.calm_provider(p.as_str(), now).await {
                    tracing::warn!(error = %format!("{e:#}"), "cannot end a provider's backoff");
                }
                return;
            }
            Judged::Trip(b, prev) => (b, prev),
        };
        match self.store.trip_provider(&b, prev).await {
            Ok(true) => {
                tracing::warn!(
                    provider = p.as_str(),
                    deferred = b.deferred,
                    judged = b.judged,
                    wait_s = (b.until_at - now) / 1000,
                    "a mailbox provider defers most messages; its readers wait"
                );
                self.metrics.count_provider(p, true);
                self.metrics.provider_waiting(p, b.until_at);
                self.state.lock().expect("not poisoned").stored.insert(p, b);
            }
            // Another process started one meanwhile: read it.
            Ok(false) => self.refresh_now().await,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot start a provider's backoff")
            }
        }
    }

    /// Adds an answer to `p`'s window and says what follows.
    fn judge(&self, p: Provider, deferred: bool, now: i64) -> Judged {
        let mut st = self.state.lock().expect("not poisoned");
        let last = st.stored.get(&p).cloned();
        if last.as_ref().is_some_and(|b| b.until_at > now) {
            // Sent before the backoff began: already judged.
            return Judged::Wait;
        }
        let window = self.guard.provider_window as usize;
        let w = st.windows.entry(p).or_default();
        w.push_back(deferred);
        while w.len() > window {
            w.pop_front();
        }
        let needed = if last.is_some() {
            probe(self.guard.provider_window)
        } else {
            window
        };
        if w.len() < needed {
            return Judged::Wait;
        }
        let n = w.iter().filter(|d| **d).count();
        if (n as f64) < self.guard.provider_deferral_rate * w.len() as f64 {
            if w.len() >= window && last.is_some() {
                // A full window mostly answered: the run of backoffs is over.
                st.stored.remove(&p);
                return Judged::Calm;
            }
            return Judged::Wait;
        }
        let judged = w.len() as i64;
        w.clear();
        let prev = last.map_or(0, |b| b.level);
        let level = prev + 1;
        Judged::Trip(
            ProviderBackoff {
                provider: p.as_str().to_owned(),
                until_at: now + wait(&self.guard, level).as_millis() as i64,
                level,
                deferred: n as i64,
                judged,
                since: now,
            },
            prev,
        )
    }

    async fn refresh(&self) {
        let (now, last) = (now_ms(), self.refreshed.load(Relaxed));
        if now - last < REFRESH.as_millis() as i64
            || self
                .refreshed
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            return;
        }
        self.refresh_now().await;
    }

    async fn refresh_now(&self) {
        match self.store.provider_backoffs().await {
            Ok(rows) => {
                let stored: HashMap<Provider, ProviderBackoff> = rows
                    .into_iter()
                    .filter_map(|b| Some((b.provider.parse::<Provider>().ok()?, b)))
                    .collect();
                for p in Provider::ALL {
                    self.metrics
                        .provider_waiting(p, stored.get(&p).map_or(0, |b| b.until_at));
                }
                let mut st = self.state.lock().expect("not poisoned");
                // A backoff another process started (or moved on): the answers this process
                // saw before it were judged there, so they count no more here.
                for p in Provider::ALL {
                    let key = |b: Option<&ProviderBackoff>| b.map(|b| (b.since, b.level));
                    if key(st.stored.get(&p)) != key(stored.get(&p)) {
                        st.windows.remove(&p);
                    }
                }
                st.stored = stored;
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot read provider backoffs"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_its_limit() {
        let g = Settings::from_toml_over_defaults("")
            .unwrap()
            .delivery
            .guard;
        let mins: Vec<u64> = (1..=7).map(|l| wait(&g, l).as_secs() / 60).collect();
        assert_eq!(mins, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(wait(&g, 1000), g.provider_backoff_max);
        assert_eq!(probe(50), 10);
        assert_eq!(probe(5), 2);
    }
}
