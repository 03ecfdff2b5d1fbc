//! Where a send's messages went and what held them back: how many each relay took
//! (`[[relays]]`), and what a warm-up (`[delivery.warmup]`) keeps waiting for the next day's
//! allowance or gave up on, per mailbox provider. Counts only.

use serde::Serialize;

use super::App;
use crate::domain::Provider;

/// A send's routing, as its page and `GET /api/sends/{id}` show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Routing {
    /// Messages each relay took (names as configured), once any was recorded.
    pub relays: Vec<RelayCount>,
    /// What a warm-up held back, per provider; empty without one.
    pub warmup: Vec<WarmupHeld>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelayCount {
    pub relay: String,
    pub sent: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WarmupHeld {
    pub provider: Provider,
    /// How the console names it.
    pub provider_ar: &'static str,
    /// Waiting for the next day's allowance.
    pub waiting: i64,
    /// Given up after `delivery.warmup.max_wait` (skipped, reason `warmup`).
    pub skipped: i64,
}

impl App {
    /// Where send `id`'s messages went and what a warm-up held back. `with_relays`: count
    /// per relay too (it reads the send's whole ledger, so only once a send is over).
    pub async fn send_routing(&self, id: i64, with_relays: bool) -> anyhow::Result<Routing> {
        let mut out = Routing::default();
        if with_relays {
            out.relays = self
                .store
                .relay_counts(id)
                .await?
                .into_iter()
                .map(|(relay, sent)| RelayCount { relay, sent })
                .collect();
        }
        if self.settings.delivery.warmup.enabled() {
            for (provider, state, n) in self.store.warmup_held(id).await? {
                let Ok(provider) = provider.parse::<Provider>() else {
                    continue;
                };
                let i = match out.warmup.iter().position(|w| w.provider == provider) {
                    Some(i) => i,
                    None => {
                        out.warmup.push(WarmupHeld {
                            provider,
                            provider_ar: provider.arabic(),
                            waiting: 0,
                            skipped: 0,
                        });
                        out.warmup.len() - 1
                    }
                };
                if state == "skipped" {
                    out.warmup[i].skipped += n;
                } else {
                    out.warmup[i].waiting += n;
                }
            }
        }
        Ok(out)
    }
}
