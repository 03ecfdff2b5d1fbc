//! Which relays a row's message may take now: any, or only the fallback when a warm-up's
//! allowance for the reader's mailbox provider is used up; or none today (the row is held
//! for the next day's allowance, or given up after `max_wait`).

use super::{Dispatcher, Prepared};
use crate::{
    delivery::{relays::Route, warmup::Admit},
    domain::Provider,
    store::{Claimed, Outcome, now_ms},
};

/// A store that cannot say what is left of the allowance: the row waits this long (ms).
const STORE_TROUBLE_WAIT_MS: i64 = 5_000;

/// How a row's message goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Way {
    pub(super) route: Route,
    pub(super) provider: Provider,
    /// The provider whose warm-up allowance it took a unit of (given back if it does not go).
    pub(super) counted: Option<Provider>,
}

impl Dispatcher {
    /// The way a row's message may go now, or what becomes of the row when a warm-up holds
    /// it back. A test send is never held.
    pub(super) async fn route(
        &self,
        row: &Claimed,
        email: &str,
        prepared: &Prepared,
    ) -> Result<Way, Outcome> {
        let any = Way {
            route: Route::Any,
            provider: Provider::Other,
            counted: None,
        };
        let Some(w) = self.warmup.as_ref().filter(|_| !prepared.test) else {
            return Ok(any);
        };
        let domain = email
            .rsplit_once('@')
            .map_or(String::new(), |(_, d)| d.to_ascii_lowercase());
        let provider = w.provider(&self.settings().providers, &domain).await;
        let held = |until, why| Outcome::Held {
            id: row.id,
            lease: row.lease_until,
            until,
            why,
        };
        match w.admit(provider, prepared.began, prepared.urgent).await {
            Ok(Admit::Go { counted }) => Ok(Way {
                route: Route::Any,
                provider,
                counted: counted.then_some(provider),
            }),
            Ok(Admit::Fallback) => Ok(Way {
                route: Route::Fallback,
                provider,
                counted: None,
            }),
            Ok(Admit::Wait { until, why }) => Err(held(until, why)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot read the warm-up's allowance");
                Err(held(
                    Some(now_ms() + STORE_TROUBLE_WAIT_MS),
                    "warmup:unavailable".into(),
                ))
            }
        }
    }
}
