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

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
};

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
    /// Within today's allowance (or no warm-up): any relay. `counted`: it took a unit of the
    /// allowance, to be given back if the message does not go.
    Go { counted: bool },
    /// Over it, and a fallback relay takes the overflow.
    Fallback,
    /// Over it: wait until `until` (ms), or give up when `None` (past `max_wait`, or an
    /// alert, which tomorrow would be too late for).
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
    /// One refill from the store at a time: the others wait and find it done.
    refill: tokio::sync::Mutex<()>,
    /// The warm-up's first day, once the store has one (it never changes).
    first_day: Mutex<Option<NaiveDate>>,
    /// The cap has reached `until`: the warm-up is over for good.
    over: AtomicBool,
}

/// The longest a message waits for its domain's MX.
const MX_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
        // On the send path a lookup waits a second at most (the doctor's wait is longer): an
        // unanswered domain counts as other, and the cache keeps that for a minute.
        let dns = Dns::with_timeout(&settings.dns.nameservers, MX_WAIT)
            .map_err(|e| {
                tracing::warn!(error = %e, "no DNS for the warm-up: custom domains count as other")
            })
            .ok();
        Some(Warmup {
            config,
            store,
            tz: settings.newsroom_tz(),
            fallback,
            dns,
            left: Mutex::default(),
            refill: tokio::sync::Mutex::new(()),
            first_day: Mutex::default(),
            over: AtomicBool::new(false),
        })
    }

    /// The mailbox provider of an address's domain (lower case): the lists first
    /// (`[providers]` and the built-in ones), then, for a domain they do not name, its MX
    /// (a newsroom on Google Workspace is Gmail's to warm up). A lookup that fails counts
    /// the domain as other.
    pub(crate) async fn provider(&self, lists: &Providers, domain: &str) -> Provider {
        let p = lists.of_domain(domain);
        if p != Provider::Other || domain.is_empty() || self.over.load(Relaxed) {
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

    /// A unit of this process's share, if it has one today: `Some(true)` taken, `Some(false)`
    /// the day's cap is used up, `None` to be refilled.
    fn take_local(&self, provider: Provider, today: NaiveDate) -> Option<bool> {
        let mut left = self.left.lock().expect("not poisoned");
        match left.get_mut(&provider) {
            Some((day, n)) if *day == today && *n > 0 => {
                *n -= 1;
                Some(true)
            }
            Some((day, n)) if *day == today && *n < 0 => Some(false),
            _ => None,
        }
    }

    /// Whether a message of a send that began at `began` (ms) to `provider` may go now;
    /// `urgent`: an alert's, given up rather than held for tomorrow.
    pub(crate) async fn admit(
        &self,
        provider: Provider,
        began: i64,
        urgent: bool,
    ) -> anyhow::Result<Admit> {
        if self.over.load(Relaxed) {
            return Ok(Admit::Go { counted: false });
        }
        let today = Utc::now().with_timezone(&self.tz).date_naive();
        match self.take_local(provider, today) {
            Some(true) => return Ok(Admit::Go { counted: true }),
            Some(false) => return Ok(self.overflow(provider, today, began, urgent)),
            None => {}
        }
        let _one = self.refill.lock().await;
        match self.take_local(provider, today) {
            Some(true) => return Ok(Admit::Go { counted: true }),
            Some(false) => return Ok(self.overflow(provider, today, began, urgent)),
            None => {}
        }
        let first = self.first_day(today).await?;
        let day = (today - first).num_days() + 1;
        let Some(cap) = self.config.cap(day) else {
            self.over.store(true, Relaxed);
            tracing::info!(day, "the warm-up is over: no daily caps from now on");
            return Ok(Admit::Go { counted: false });
        };
        let cap = cap as i64;
        let granted = self
            .store
            .warmup_take(&day_key(today), provider.as_str(), chunk(cap), cap)
            .await?;
        self.left.lock().expect("not poisoned").insert(
            provider,
            (today, if granted > 0 { granted - 1 } else { -1 }),
        );
        if granted > 0 {
            return Ok(Admit::Go { counted: true });
        }
        Ok(self.overflow(provider, today, began, urgent))
    }

    /// The first day, from the store once it has one; `today` before anything was sent.
    async fn first_day(&self, today: NaiveDate) -> anyhow::Result<NaiveDate> {
        if let Some(d) = *self.first_day.lock().expect("not poisoned") {
            return Ok(d);
        }
        let stored = self.store.warmup_first_day().await?;
        let Some(d) = stored.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()) else {
            return Ok(today);
        };
        *self.first_day.lock().expect("not poisoned") = Some(d);
        Ok(d)
    }

    /// A unit taken for a message that did not go (released, retried, held, skipped): back
    /// to this process's share for the next one.
    pub(crate) fn give_back(&self, provider: Provider) {
        let today = Utc::now().with_timezone(&self.tz).date_naive();
        let mut left = self.left.lock().expect("not poisoned");
        if let Some((day, n)) = left.get_mut(&provider)
            && *day == today
        {
            *n = (*n).max(0) + 1;
        }
    }

    /// At shutdown: today's unused share goes back to the store for the other processes and
    /// the next start.
    pub(crate) async fn return_unused(&self) {
        let today = Utc::now().with_timezone(&self.tz).date_naive();
        let unused: Vec<(Provider, i64)> = self
            .left
            .lock()
            .expect("not poisoned")
            .drain()
            .filter(|(_, (day, n))| *day == today && *n > 0)
            .map(|(p, (_, n))| (p, n))
            .collect();
        for (p, n) in unused {
            if let Err(e) = self
                .store
                .warmup_return(&day_key(today), p.as_str(), n)
                .await
            {
                tracing::warn!(error = %format!("{e:#}"), "cannot return the warm-up's unused share");
            }
        }
    }

    fn overflow(&self, provider: Provider, today: NaiveDate, began: i64, urgent: bool) -> Admit {
        overflow(
            &self.config,
            self.tz,
            self.fallback,
            provider,
            today,
            began,
            urgent,
        )
    }
}

fn day_key(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The first instant of `day` in `tz`: midnight, or the first hour that exists when the
/// clocks skip midnight (Beirut, Cairo in spring).
fn day_start(tz: Tz, day: NaiveDate) -> Option<i64> {
    (0..4).find_map(|h| {
        tz.from_local_datetime(&day.and_hms_opt(h, 0, 0)?)
            .earliest()
            .map(|t| t.timestamp_millis())
    })
}

/// Over the day's cap: the fallback, or the next day's start, or nothing when that is past
/// `max_wait` from `began` (or for an alert).
fn overflow(
    config: &Config,
    tz: Tz,
    fallback: bool,
    provider: Provider,
    today: NaiveDate,
    began: i64,
    urgent: bool,
) -> Admit {
    if fallback {
        return Admit::Fallback;
    }
    let give_up = began.saturating_add(config.max_wait.as_millis() as i64);
    let until = today
        .succ_opt()
        .and_then(|d| day_start(tz, d))
        .filter(|u| !urgent && *u <= give_up);
    Admit::Wait {
        until,
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
            overflow(&c, tz, false, Provider::Gmail, today, noon, false),
            Admit::Wait {
                until: Some(midnight),
                why: "warmup:gmail".into()
            }
        );
        let long_ago = noon - 4 * 86400 * 1000;
        assert_eq!(
            overflow(&c, tz, false, Provider::Gmail, today, long_ago, false),
            Admit::Wait {
                until: None,
                why: "warmup:gmail".into()
            }
        );
        assert_eq!(
            overflow(&c, tz, true, Provider::Microsoft, today, long_ago, false),
            Admit::Fallback
        );
        assert_eq!(
            overflow(&c, tz, false, Provider::Gmail, today, noon, true),
            Admit::Wait {
                until: None,
                why: "warmup:gmail".into()
            },
            "an alert is not held for tomorrow"
        );
    }

    #[test]
    fn a_night_whose_midnight_does_not_exist_waits_for_its_first_hour() {
        // Beirut's clocks go from 23:59:59 on 28 March 2026 to 01:00.
        let tz: Tz = "Asia/Beirut".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let one = tz
            .with_ymd_and_hms(2026, 3, 29, 1, 0, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(day_start(tz, day), Some(one));
        let c = Config {
            start: 50,
            growth: 2.0,
            until: 1000,
            max_wait: std::time::Duration::from_secs(3 * 86400),
        };
        let began = one - 3600 * 1000;
        assert_eq!(
            overflow(
                &c,
                tz,
                false,
                Provider::Gmail,
                day.pred_opt().unwrap(),
                began,
                false
            ),
            Admit::Wait {
                until: Some(one),
                why: "warmup:gmail".into()
            }
        );
    }
}
