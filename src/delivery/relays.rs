//! Several SMTP relays (`[[relays]]`, or `[smtp]` as the one relay): each message goes to one
//! of the healthy primaries, spread by weight (smooth weighted round robin, so a 3:1 split is
//! 3:1 over any few messages, not only on average); the fallbacks take messages only while
//! no primary is healthy, or when asked for (a warm-up's overflow).
//!
//! Health, per relay and per process: [`UNREACHABLE_TO_MARK`] messages in a row that could
//! not reach it, or [`DEFERRED_TO_MARK`] of its last [`WINDOW`] answered with a 4xx (421,
//! say) or a stall, mark it unhealthy for a cool-off that starts at [`COOL_OFF`] and doubles
//! up to [`MAX_COOL_OFF`]; after it, one message at a time tries it again (the probe), and a
//! message it takes brings it back. A share of 4xx for some recipients (one mailbox provider
//! deferring) does not mark a relay: that is the provider's, and waits on its own.
//!
//! A message that could not reach a relay at all (no connection, no greeting) is handed to
//! the next relay at once: nothing was sent, so nothing can arrive twice. A message that
//! reached a relay and got no answer after its data is never sent again elsewhere here; the
//! ledger retries it as one attempt, as with one relay.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use lettre::address::Envelope;
use serde::Serialize;

use super::{
    send_error::SendError,
    smtp::{self, SmtpPool},
};
use crate::config::{self, Role, Settings};

/// Messages in a row that could not reach a relay (no connection, no greeting) that mark it
/// unhealthy.
pub const UNREACHABLE_TO_MARK: u32 = 3;
/// Of a relay's last [`WINDOW`] messages, this many deferred (4xx, a stall) or unreachable
/// mark it unhealthy.
pub const DEFERRED_TO_MARK: u32 = 16;
pub const WINDOW: u32 = 20;
/// The first cool-off of an unhealthy relay; it doubles each time a probe fails.
pub const COOL_OFF: Duration = Duration::from_secs(2);
pub const MAX_COOL_OFF: Duration = Duration::from_secs(60);

/// Which relays a message may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The healthy primaries; the fallbacks when none is.
    Any,
    /// The fallbacks only (a warm-up's overflow).
    Fallback,
}

/// One relay, its connections, health and counters.
pub struct Relay {
    pub name: Arc<str>,
    pub role: Role,
    pub weight: u32,
    pool: SmtpPool,
    health: Mutex<Health>,
    stats: Stats,
}

#[derive(Default)]
struct Health {
    /// Messages in a row that could not reach it.
    unreachable: u32,
    /// Its last [`WINDOW`] messages, newest in bit 0: 1 = deferred or unreachable.
    window: u32,
    /// Unhealthy until then.
    down_until: Option<Instant>,
    /// The cool-off the next failure while down (a failed probe) starts.
    cool_off: Duration,
    /// A probe message is on its way to it.
    probing: bool,
}

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    unreachable: AtomicU64,
    latency_us: AtomicU64,
    latency_n: AtomicU64,
    /// Messages taken per second over the last minute.
    recent: Mutex<Recent>,
}

/// A ring of per-second counts.
struct Recent {
    secs: [u64; 60],
    counts: [u32; 60],
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            secs: [0; 60],
            counts: [0; 60],
        }
    }
}

fn epoch_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Recent {
    fn add(&mut self, now: u64) {
        let i = (now % 60) as usize;
        if self.secs[i] != now {
            self.secs[i] = now;
            self.counts[i] = 0;
        }
        self.counts[i] += 1;
    }

    fn last_minute(&self, now: u64) -> u64 {
        (0..60)
            .filter(|&i| now.saturating_sub(self.secs[i]) < 60 && self.secs[i] <= now)
            .map(|i| self.counts[i] as u64)
            .sum()
    }
}

/// What the console, the API and `/metrics` show of a relay.
#[derive(Debug, Clone, Serialize)]
pub struct RelayStatus {
    pub name: String,
    pub role: &'static str,
    pub weight: u32,
    pub healthy: bool,
    /// Seconds until it is tried again, while unhealthy.
    pub retry_in_s: Option<u64>,
    pub sent: u64,
    /// 4xx answers and stalls.
    pub deferred: u64,
    /// 5xx answers.
    pub failed: u64,
    /// Connections that failed (refused, timed out, no greeting).
    pub unreachable: u64,
    /// Messages it took in the last minute.
    pub last_minute: u64,
    /// Mean time of one SMTP transaction, in milliseconds.
    pub latency_ms: f64,
}

impl Relay {
    fn new(c: &config::Relay, s: &Settings) -> Relay {
        Relay {
            name: c.name.as_str().into(),
            role: c.role,
            weight: c.weight,
            pool: SmtpPool::new(c, &s.smtp, s.delivery.concurrency),
            health: Mutex::default(),
            stats: Stats::default(),
        }
    }

    /// Whether it may take a message now; a relay whose cool-off ended takes one (the probe).
    fn available(&self, now: Instant) -> bool {
        let h = self.health.lock().expect("not poisoned");
        match h.down_until {
            None => true,
            Some(until) => now >= until && !h.probing,
        }
    }

    fn healthy(&self) -> bool {
        self.health
            .lock()
            .expect("not poisoned")
            .down_until
            .is_none()
    }

    /// Whether it may take a message now, and if so whether that message is its probe
    /// (it is down and due: the probe slot is taken); `None` if another message took it first.
    fn claim_probe(&self, now: Instant) -> Option<bool> {
        let mut h = self.health.lock().expect("not poisoned");
        match h.down_until {
            None => Some(false),
            Some(until) if now >= until && !h.probing => {
                h.probing = true;
                Some(true)
            }
            Some(_) => None,
        }
    }

    /// Counts an answer and moves the relay's health. `probe`: this message was its probe;
    /// a message that was on its way before it was marked down moves nothing while it is.
    fn record(&self, res: &Result<(), SendError>, took: Duration, probe: bool) {
        let st = &self.stats;
        let failure = match res {
            Ok(()) => {
                st.sent.fetch_add(1, Relaxed);
                st.recent.lock().expect("not poisoned").add(epoch_secs());
                false
            }
            Err(SendError::Permanent(_)) => {
                st.failed.fetch_add(1, Relaxed);
                false
            }
            Err(SendError::Transient(_)) => {
                st.deferred.fetch_add(1, Relaxed);
                true
            }
            Err(SendError::Connection(_)) => {
                st.unreachable.fetch_add(1, Relaxed);
                true
            }
        };
        if !matches!(res, Err(SendError::Connection(_))) {
            st.latency_us.fetch_add(took.as_micros() as u64, Relaxed);
            st.latency_n.fetch_add(1, Relaxed);
        }
        let mut h = self.health.lock().expect("not poisoned");
        let was_probe = probe && std::mem::take(&mut h.probing);
        if h.down_until.is_some() && !was_probe {
            return;
        }
        h.window = ((h.window << 1) | failure as u32) & ((1 << WINDOW) - 1);
        if matches!(res, Err(SendError::Connection(_))) {
            h.unreachable += 1;
        } else {
            h.unreachable = 0;
        }
        if !failure {
            if h.down_until.take().is_some() {
                tracing::info!(relay = %self.name, "relay is healthy again");
                h.window = 0;
            }
            h.cool_off = Duration::ZERO;
            return;
        }
        let run = h.unreachable >= UNREACHABLE_TO_MARK || h.window.count_ones() >= DEFERRED_TO_MARK;
        if was_probe || (h.down_until.is_none() && run) {
            h.cool_off = if was_probe {
                (h.cool_off * 2).clamp(COOL_OFF, MAX_COOL_OFF)
            } else {
                COOL_OFF
            };
            h.down_until = Some(Instant::now() + h.cool_off);
            tracing::warn!(
                relay = %self.name,
                unreachable_in_a_row = h.unreachable,
                failed_of_last_20 = h.window.count_ones(),
                cool_off_s = h.cool_off.as_secs(),
                "relay marked unhealthy; its share goes to the others"
            );
        }
    }

    fn status(&self) -> RelayStatus {
        let st = &self.stats;
        let h = self.health.lock().expect("not poisoned");
        let n = st.latency_n.load(Relaxed);
        RelayStatus {
            name: self.name.to_string(),
            role: self.role.as_str(),
            weight: self.weight,
            healthy: h.down_until.is_none(),
            retry_in_s: h
                .down_until
                .map(|u| u.saturating_duration_since(Instant::now()).as_secs()),
            sent: st.sent.load(Relaxed),
            deferred: st.deferred.load(Relaxed),
            failed: st.failed.load(Relaxed),
            unreachable: st.unreachable.load(Relaxed),
            last_minute: st
                .recent
                .lock()
                .expect("not poisoned")
                .last_minute(epoch_secs()),
            latency_ms: if n == 0 {
                0.0
            } else {
                st.latency_us.load(Relaxed) as f64 / n as f64 / 1000.0
            },
        }
    }
}

/// Every relay, and the weighted round robin's state.
pub struct Relays {
    list: Vec<Relay>,
    /// The smooth weighted round robin's current weights, one per relay.
    current: Mutex<Vec<i64>>,
    timeout: Duration,
}

impl Relays {
    pub fn new(settings: &Settings) -> Relays {
        let list: Vec<Relay> = settings
            .relays()
            .iter()
            .map(|c| Relay::new(c, settings))
            .collect();
        Relays {
            current: Mutex::new(vec![0; list.len()]),
            list,
            timeout: settings.smtp.timeout,
        }
    }

    /// The next relay for a message: among those of the route's role that are available and
    /// not yet tried for it, the one the weighted round robin picks.
    fn pick(&self, route: Route, tried: u32) -> Option<(usize, bool)> {
        let now = Instant::now();
        let open = |role: Role| -> Vec<usize> {
            (0..self.list.len())
                .filter(|&i| {
                    tried & (1 << i) == 0
                        && self.list[i].role == role
                        && self.list[i].available(now)
                })
                .collect()
        };
        let candidates = match route {
            Route::Any => {
                let p = open(Role::Primary);
                if p.is_empty() {
                    open(Role::Fallback)
                } else {
                    p
                }
            }
            Route::Fallback => open(Role::Fallback),
        };
        let mut current = self.current.lock().expect("not poisoned");
        let mut candidates = candidates;
        while !candidates.is_empty() {
            let total: i64 = candidates.iter().map(|&i| self.list[i].weight as i64).sum();
            for &i in &candidates {
                current[i] += self.list[i].weight as i64;
            }
            let best = *candidates
                .iter()
                .max_by_key(|&&i| (current[i], std::cmp::Reverse(i)))
                .expect("not empty");
            if let Some(probe) = self.list[best].claim_probe(now) {
                current[best] -= total;
                return Some((best, probe));
            }
            // Another message took its probe meanwhile: its turn is not spent.
            current[best] -= self.list[best].weight as i64;
            candidates.retain(|&i| i != best);
        }
        None
    }

    /// Whether some relay may take a message now (healthy, or due for its probe): a message
    /// that reached none is then no reason to pause the whole of delivery.
    pub fn any_available(&self) -> bool {
        let now = Instant::now();
        self.list.iter().any(|r| r.available(now))
    }

    /// Whether a fallback relay exists (a warm-up's overflow can go somewhere).
    pub fn has_fallback(&self) -> bool {
        self.list.iter().any(|r| r.role == Role::Fallback)
    }

    /// Sends one message, handing it to the next relay when one cannot be reached; the name
    /// of the relay that answered (none when none could be reached).
    pub async fn send(
        &self,
        envelope: &Envelope,
        mut bytes: Vec<u8>,
        route: Route,
    ) -> (Result<(), SendError>, Option<Arc<str>>) {
        smtp::terminate(&mut bytes);
        // One bound for the message however many relays it tries: a row's lease covers it.
        let deadline = tokio::time::Instant::now() + self.timeout * 2;
        let mut tried = 0u32;
        let mut last: Option<String> = None;
        loop {
            let Some((i, probe)) = self.pick(route, tried) else {
                let why = match (last, route) {
                    (Some(m), _) => format!("no relay could be reached; last: {m}"),
                    (None, Route::Fallback) => "no fallback relay is available".into(),
                    (None, Route::Any) => {
                        "every relay is unhealthy and cooling off; waiting to try again".into()
                    }
                };
                return (Err(SendError::Connection(why)), None);
            };
            tried |= 1 << i;
            let relay = &self.list[i];
            let started = Instant::now();
            // Half of what is left to have a connection: a relay that stalls leaves the next
            // one time for the message.
            let now = tokio::time::Instant::now();
            let connect_by = now + deadline.saturating_duration_since(now) / 2;
            let res = relay
                .pool
                .send(envelope, &bytes, connect_by, deadline)
                .await;
            relay.record(&res, started.elapsed(), probe);
            match res {
                // Nothing reached this relay: the next one may take it, while time is left.
                Err(SendError::Connection(m)) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(relay = %relay.name, error = %super::redact_addresses(&m), "relay could not be reached; trying the next");
                    last = Some(format!("{}: {m}", relay.name));
                }
                res => return (res, Some(relay.name.clone())),
            }
        }
    }

    /// Whether non-ASCII addresses can be delivered: every relay heard from offers SMTPUTF8
    /// (a message may go to any of them); `None` before any has been heard from.
    pub fn smtputf8(&self) -> Option<bool> {
        let known: Vec<bool> = self.list.iter().filter_map(|r| r.pool.smtputf8()).collect();
        (!known.is_empty()).then(|| known.iter().all(|k| *k))
    }

    /// Greets every relay once; whether any answered.
    pub async fn probe(&self) -> bool {
        futures::future::join_all(self.list.iter().map(|r| r.pool.probe())).await;
        self.list.iter().any(|r| r.pool.smtputf8().is_some())
    }

    /// Every relay's health and counters, in configuration order.
    pub fn statuses(&self) -> Vec<RelayStatus> {
        self.list.iter().map(Relay::status).collect()
    }

    /// What the console says while a relay is unhealthy (in Arabic; names are the
    /// configuration's, left to right); nothing while every relay is healthy.
    pub fn warning(&self) -> Option<String> {
        let names = |role: Role, healthy: bool| -> Vec<String> {
            self.list
                .iter()
                .filter(|r| r.role == role && r.healthy() == healthy)
                .map(|r| format!("\u{2066}{}\u{2069}", r.name))
                .collect()
        };
        let down = names(Role::Primary, false);
        if down.is_empty() {
            return None;
        }
        let up = names(Role::Primary, true);
        let fallback = names(Role::Fallback, true);
        Some(if !up.is_empty() {
            format!(
                "مرحّل متوقف مؤقتاً: {}. حصّته تذهب إلى {}، ويُجرَّب من جديد تلقائياً.",
                down.join("، "),
                up.join("، ")
            )
        } else if !fallback.is_empty() {
            format!(
                "المرحّلات الأساسية كلها متوقفة ({}): يُرسَل البريد الآن عبر المرحّل الاحتياطي {}.",
                down.join("، "),
                fallback.join("، ")
            )
        } else {
            format!(
                "لا مرحّل يجيب ({}): الإرسال ينتظر حتى يعود أحدها، ولا يضيع شيء.",
                down.join("، ")
            )
        })
    }

    /// The relays in Prometheus text: messages by result, mean latency, health.
    pub fn prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        let all = self.statuses();
        let _ = writeln!(
            out,
            "# HELP nashra_relay_messages_total Answers from each relay: sent, deferred (4xx or a stall), failed (5xx), unreachable."
        );
        let _ = writeln!(out, "# TYPE nashra_relay_messages_total counter");
        for r in &all {
            for (result, n) in [
                ("sent", r.sent),
                ("deferred", r.deferred),
                ("failed", r.failed),
                ("unreachable", r.unreachable),
            ] {
                let _ = writeln!(
                    out,
                    "nashra_relay_messages_total{{relay=\"{}\",result=\"{result}\"}} {n}",
                    r.name
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP nashra_relay_healthy 1 while the relay takes its share, 0 while it cools off."
        );
        let _ = writeln!(out, "# TYPE nashra_relay_healthy gauge");
        for r in &all {
            let _ = writeln!(
                out,
                "nashra_relay_healthy{{relay=\"{}\",role=\"{}\"}} {}",
                r.name, r.role, r.healthy as u8
            );
        }
        let _ = writeln!(
            out,
            "# HELP nashra_relay_latency_seconds_mean Mean time of one SMTP transaction with the relay."
        );
        let _ = writeln!(out, "# TYPE nashra_relay_latency_seconds_mean gauge");
        for r in &all {
            let _ = writeln!(
                out,
                "nashra_relay_latency_seconds_mean{{relay=\"{}\"}} {}",
                r.name,
                r.latency_ms / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "# HELP nashra_relay_last_minute Messages the relay took in the last minute."
        );
        let _ = writeln!(out, "# TYPE nashra_relay_last_minute gauge");
        for r in &all {
            let _ = writeln!(
                out,
                "nashra_relay_last_minute{{relay=\"{}\"}} {}",
                r.name, r.last_minute
            );
        }
    }
}
