//! A new sending domain's warm-up (`[delivery.warmup]`): each mailbox provider takes at most
//! a day's cap of messages, growing day by day. The allowance lives in the store, shared by
//! every process; each process takes it a few messages at a time ([`chunk`]), so a message
//! costs a lock, not a query. What a process took and did not use when it stops is lost to
//! that day (the warm-up errs on the slow side).
//!
//! Over the cap a message goes through the fallback relay if there is one, else waits for the
//! next day (the newsroom's midnight), its attempt unspent; one that would wait past
//! `max_wait` since its send began is skipped. Either way its row says why
//! (`last_error = "warmup:<provider>"`), and the send's page counts them.

use std::{collections::HashMap, sync::Mutex};

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::{
    config::{Providers, Settings, Warmup as Config},
    dns::Dns,
    domain::Provider,
    store::Store,
};

/// What a message to a provider may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Within today's allowance (or no warm-up): any relay.
    Go,
    /// Over it, and a fallback relay takes the overflow.
    Fallback,
    /// Over it: wait until `until` (ms), or give up when `None` (past `max_wait`).
    Wait { until: Option<i64>, why: String },
}

pub(crate) struct Warmup {
    config: Config,
    store: Store,
    tz: Tz,
    fallback: bool,
    /// For the MX of domains no list names (cached there, failures too).
    dns: Option<Dns>,
    /// Per provider: the day and what is left of this process's share of it, -1 once the
    /// day's cap is used up (5 entries).
    left: Mutex<HashMap<Provider, (NaiveDate, i64)>>,
}

/// What the fallback relay could not take waits this long (ms) before it is tried again.
pub(crate) const RETRY_FALLBACK_MS: i64 = 60_000;

/// How much of a day's cap a process takes at once: a twentieth, 1 to 100.
fn chunk(cap: i64) -> i64 {
    (cap / 20).clamp(1, 100)
}

/// The reason a held row keeps (`last_error`), which the send's report reads back.
pub(crate) fn reason(p: Provider) -> String {
    format!("warmup:{}", p.as_str())
}

impl Warmup {
    /// `None` without a warm-up.
    pub(crate) fn new(settings: &Settings, store: Store, fallback: bool) -> Option<Warmup> {
        let config = settings.delivery.warmup.clone();
        if !config.enabled() {
            return None;
        }
        let dns = Dns::new(&settings.dns.nameservers)
            .map_err(|e| tracing::warn!(error = %e, "no DNS for the warm-up: custom domains count as other"))
            .ok();
        Some(Warmup {
            config,
            store,
            tz: settings.newsroom_tz(),
            fallback,
            dns,
            left: Mutex::default(),
        })
    }

    /// The mailbox provider of an address's domain (lower case): the lists first
    /// (`[providers]` and the built-in ones), then, for a domain they do not name, its MX
    /// (a newsroom on Google Workspace is Gmail's to warm up). A lookup that fails counts
    /// the domain as other.
    pub(crate) async fn provider(&self, lists: &Providers, domain: &str) -> Provider {
        let p = lists.of_domain(domain);
        if p != Provider::Other || domain.is_empty() {
            return p;
        }
        let Some(dns) = &self.dns else {
            return p;
        };
        match dns.mx(domain).await {
            Ok(mx) => mx
                .first()
                .and_then(|m| Provider::of_mx(&m.exchange))
                .unwrap_or(Provider::Other),
            Err(_) => Provider::Other,
        }
    }

    /// Whether a message of a send that began at `began` (ms) to `provider` may go now.
    pub(crate) async fn admit(&self, provider: Provider, began: i64) -> anyhow::Result<Admit> {
        let today = Utc::now().with_timezone(&self.tz).date_naive();
        {
            let mut left = self.left.lock().expect("not poisoned");
            if let Some((day, n)) = left.get_mut(&provider)
                && *day == today
            {
                if *n > 0 {
                    *n -= 1;
                    return Ok(Admit::Go);
                }
                if *n < 0 {
                    return Ok(self.overflow(provider, today, began));
                }
            }
        }
        let first = match self.store.warmup_first_day().await? {
            Some(d) => NaiveDate::parse_from_str(&d, "%Y-%m-%d").unwrap_or(today),
            None => today,
        };
        let day = (today - first).num_days() + 1;
        let Some(cap) = self.config.cap(day) else {
            return Ok(Admit::Go);
        };
        let cap = cap as i64;
        let granted = self
            .store
            .warmup_take(
                &today.format("%Y-%m-%d").to_string(),
                provider.as_str(),
                chunk(cap),
                cap,
            )
            .await?;
        // Others may have taken a share meanwhile: add to it, never overwrite it.
        let mut left = self.left.lock().expect("not poisoned");
        let e = left.entry(provider).or_insert((today, 0));
        if e.0 != today {
            *e = (today, 0);
        }
        if granted > 0 {
            e.1 = e.1.max(0) + granted - 1;
            return Ok(Admit::Go);
        }
        if e.1 > 0 {
            e.1 -= 1;
            return Ok(Admit::Go);
        }
        e.1 = -1;
        drop(left);
        Ok(self.overflow(provider, today, began))
    }

    fn overflow(&self, provider: Provider, today: NaiveDate, began: i64) -> Admit {
        overflow(&self.config, self.tz, self.fallback, provider, today, began)
    }
}

/// Over the day's cap: the fallback, or the next day (the newsroom's midnight), or nothing
/// when that is past `max_wait` from `began`.
fn overflow(
    config: &Config,
    tz: Tz,
    fallback: bool,
    provider: Provider,
    today: NaiveDate,
    began: i64,
) -> Admit {
    if fallback {
        return Admit::Fallback;
    }
    let tomorrow = today.succ_opt().unwrap_or(today);
    let until = tz
        .from_local_datetime(&tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or(i64::MAX / 4, |t| t.timestamp_millis());
    let give_up = began.saturating_add(config.max_wait.as_millis() as i64);
    Admit::Wait {
        until: (until <= give_up).then_some(until),
        why: reason(provider),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_grows_each_day_until_the_warmup_is_over() {
        let c = Config {
            start: 50,
            growth: 2.0,
            until: 1000,
            max_wait: std::time::Duration::from_secs(86400),
        };
        assert_eq!(c.cap(1), Some(50));
        assert_eq!(c.cap(2), Some(100));
        assert_eq!(c.cap(5), Some(800));
        assert_eq!(c.cap(6), None, "1600 ≥ until: over");
        assert_eq!(c.cap(100_000), None);
        assert_eq!(chunk(50), 2);
        assert_eq!(chunk(10), 1);
        assert_eq!(chunk(1_000_000), 100);
    }

    #[test]
    fn over_the_cap_a_message_waits_for_midnight_or_is_given_up_after_max_wait() {
        let c = Config {
            start: 50,
            growth: 2.0,
            until: 1000,
            max_wait: std::time::Duration::from_secs(3 * 86400),
        };
        let tz: Tz = "Asia/Baghdad".parse().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let midnight = tz
            .with_ymd_and_hms(2026, 12, 7, 0, 0, 0)
            .unwrap()
            .timestamp_millis();
        let noon = midnight - 12 * 3600 * 1000;
        assert_eq!(
            overflow(&c, tz, false, Provider::Gmail, today, noon),
            Admit::Wait {
                until: Some(midnight),
                why: "warmup:gmail".into()
            }
        );
        let long_ago = noon - 4 * 86400 * 1000;
        assert_eq!(
            overflow(&c, tz, false, Provider::Gmail, today, long_ago),
            Admit::Wait {
                until: None,
                why: "warmup:gmail".into()
            }
        );
        assert_eq!(
            overflow(&c, tz, true, Provider::Microsoft, today, long_ago),
            Admit::Fallback
        );
    }
}
