//! What the send guard stopped or holds, as the API and the console show it: a send that
//! paused itself says why (`store::GuardStop`), and mailbox providers whose readers wait
//! (`delivery::provider_backoff`) say until when.

use serde::Serialize;

use super::App;
use crate::{
    domain::Provider,
    store::{GuardStop, now_ms},
};

/// A mailbox provider whose readers wait now.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderWait {
    pub provider: Provider,
    /// Until then (ms since the epoch), and the same in RFC 3339 for scripts.
    pub until_ms: i64,
    pub until: String,
    /// Backoffs in a row (the wait doubles with each).
    pub level: i64,
    /// Of its `judged` latest attempts, so many were deferred (4xx).
    pub deferred: i64,
    pub judged: i64,
}

impl App {
    /// Mailbox providers whose readers wait now (an ended backoff is not shown).
    pub async fn provider_waits(&self) -> anyhow::Result<Vec<ProviderWait>> {
        let now = now_ms();
        Ok(self
            .store
            .provider_backoffs()
            .await?
            .into_iter()
            .filter(|b| b.until_at > now)
            .filter_map(|b| {
                Some(ProviderWait {
                    provider: b.provider.parse().ok()?,
                    until_ms: b.until_at,
                    until: chrono::DateTime::from_timestamp_millis(b.until_at)?.to_rfc3339(),
                    level: b.level,
                    deferred: b.deferred,
                    judged: b.judged,
                })
            })
            .collect())
    }
}

/// The API's account of a guard's stop: what it saw, and the reason in words.
pub fn guard_json(stop: &GuardStop) -> Option<serde_json::Value> {
    let (reason, count, delivered, limit) = stop.parts()?;
    Some(serde_json::json!({
        "reason": reason,
        "count": count,
        "delivered": delivered,
        "rate": stop.rate(),
        "limit": limit,
        "message": stop.english(),
    }))
}
