//! Process metrics in Prometheus text format, kept as plain atomics: the hot path pays one
//! relaxed add per message, and `/metrics` renders them on request.

use std::{
    fmt::Write,
    sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
    time::Duration,
};

/// SMTP latency histogram buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];
const REASONS: [&str; 4] = ["transient", "permanent", "connection", "attempts_exhausted"];

#[derive(Default)]
pub struct Metrics {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    failed: [AtomicU64; 4],
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// 1 while the relay cannot be reached and delivery is backing off.
    pub relay_down: AtomicU64,
    pub digests_created: AtomicU64,
    sends_finished: AtomicU64,
    send_seconds_ms: AtomicU64,
    pub subscriptions: AtomicU64,
    /// Clicks on digest links counted (`newsletter.click_counts`), by this process.
    pub clicks: AtomicU64,
    /// Events recorded from bounce reports, complaints and webhooks, by kind.
    feedback: [AtomicU64; 5],
    /// Mails in the bounce mailbox that could not be handled and were set aside (flagged).
    pub bounce_mail_set_aside: AtomicU64,
    /// DMARC aggregate reports read: stored, already stored, refused (unreadable, too large).
    pub dmarc_stored: AtomicU64,
    pub dmarc_duplicate: AtomicU64,
    pub dmarc_refused: AtomicU64,
    /// The send guard (`delivery.guard`): its pauses by reason; per mailbox provider, the
    /// backoffs this process started, the rows it held back, and until when the provider's
    /// readers wait as this process last saw (ms, 0: they do not).
    guard_paused: [AtomicU64; 2],
    provider_backoffs: [AtomicU64; 5],
    provider_held: [AtomicU64; 5],
    provider_waiting_until: [AtomicI64; 5],
}

impl Metrics {
    pub fn count_failure(&self, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.failed[i].fetch_add(1, Relaxed);
        }
    }

    pub fn count_feedback(&self, kind: crate::store::FeedbackKind) {
        if let Some(i) = crate::store::FeedbackKind::ALL
            .iter()
            .position(|k| *k == kind)
        {
            self.feedback[i].fetch_add(1, Relaxed);
        }
    }

    /// The send guard paused a send.
    pub fn count_guard_pause(&self, reason: crate::store::GuardReason) {
        let i = crate::store::GuardReason::ALL
            .iter()
            .position(|r| *r == reason);
        if let Some(i) = i {
            self.guard_paused[i].fetch_add(1, Relaxed);
        }
    }

    /// This process started a backoff of `p` (`started`), or held back one of its rows.
    pub fn count_provider(&self, p: crate::domain::Provider, started: bool) {
        if let Some(i) = crate::domain::Provider::ALL.iter().position(|x| *x == p) {
            let c = if started {
                &self.provider_backoffs
            } else {
                &self.provider_held
            };
            c[i].fetch_add(1, Relaxed);
        }
    }

    /// Until when `p`'s readers wait (ms since the epoch; 0: they do not).
    pub fn provider_waiting(&self, p: crate::domain::Provider, until: i64) {
        if let Some(i) = crate::domain::Provider::ALL.iter().position(|x| *x == p) {
            self.provider_waiting_until[i].store(until, Relaxed);
        }
    }

    /// A send finished after `d` from its start to its last delivery.
    pub fn observe_send(&self, d: Duration) {
        self.sends_finished.fetch_add(1, Relaxed);
        self.send_seconds_ms
            .fetch_add(d.as_millis() as u64, Relaxed);
    }

    pub fn observe_smtp(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// Renders everything; `gauges` are values read at scrape time (queue depth, …).
    pub fn render(&self, gauges: &[(&str, &str, i64)]) -> String {
        let mut s = String::with_capacity(2048);
        let _ = writeln!(
            s,
            "# HELP nashra_messages_sent_total Messages accepted by the transport."
        );
        let _ = writeln!(s, "# TYPE nashra_messages_sent_total counter");
        let _ = writeln!(s, "nashra_messages_sent_total {}", self.sent.load(Relaxed));
        let _ = writeln!(
            s,
            "# HELP nashra_messages_failed_total Failed send attempts by reason."
        );
        let _ = writeln!(s, "# TYPE nashra_messages_failed_total counter");
        for (i, r) in REASONS.iter().enumerate() {
            let _ = writeln!(
                s,
                "nashra_messages_failed_total{{reason=\"{r}\"}} {}",
                self.failed[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP nashra_feedback_total Bounces, complaints, mailed unsubscribes and deliveries reported after the relay took a message (recorded once each)."
        );
        let _ = writeln!(s, "# TYPE nashra_feedback_total counter");
        for (i, k) in crate::store::FeedbackKind::ALL.iter().enumerate() {
            let _ = writeln!(
                s,
                "nashra_feedback_total{{kind=\"{k}\"}} {}",
                self.feedback[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP nashra_bounce_mail_set_aside_total Mails in the bounce mailbox that could not be handled, flagged and left there."
        );
        let _ = writeln!(s, "# TYPE nashra_bounce_mail_set_aside_total counter");
        let _ = writeln!(
            s,
            "nashra_bounce_mail_set_aside_total {}",
            self.bounce_mail_set_aside.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP nashra_dmarc_reports_total DMARC aggregate reports read from mail: stored, already stored, refused."
        );
        let _ = writeln!(s, "# TYPE nashra_dmarc_reports_total counter");
        for (outcome, n) in [
            ("stored", &self.dmarc_stored),
            ("duplicate", &self.dmarc_duplicate),
            ("refused", &self.dmarc_refused),
        ] {
            let _ = writeln!(
                s,
                "nashra_dmarc_reports_total{{outcome=\"{outcome}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP nashra_messages_retried_total Deliveries scheduled for another attempt."
        );
        let _ = writeln!(s, "# TYPE nashra_messages_retried_total counter");
        let _ = writeln!(
            s,
            "nashra_messages_retried_total {}",
            self.retried.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP nashra_smtp_latency_seconds Time for one SMTP transaction."
        );
        let _ = writeln!(s, "# TYPE nashra_smtp_latency_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "nashra_smtp_latency_seconds_bucket{{le=\"{b}\"}} {}",
                self.latency_buckets[i].load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            s,
            "nashra_smtp_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "nashra_smtp_latency_seconds_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "nashra_smtp_latency_seconds_count {count}");
        let _ = writeln!(
            s,
            "# HELP nashra_relay_down 1 while the SMTP relay is unreachable."
        );
        let _ = writeln!(s, "# TYPE nashra_relay_down gauge");
        let _ = writeln!(s, "nashra_relay_down {}", self.relay_down.load(Relaxed));
        let _ = writeln!(
            s,
            "# HELP nashra_send_duration_seconds Time from a send's start to its last delivery."
        );
        let _ = writeln!(s, "# TYPE nashra_send_duration_seconds summary");
        let _ = writeln!(
            s,
            "nashra_send_duration_seconds_sum {}",
            self.send_seconds_ms.load(Relaxed) as f64 / 1e3
        );
        let _ = writeln!(
            s,
            "nashra_send_duration_seconds_count {}",
            self.sends_finished.load(Relaxed)
        );
        let _ = writeln!(s, "# TYPE nashra_digests_created_total counter");
        let _ = writeln!(
            s,
            "nashra_digests_created_total {}",
            self.digests_created.load(Relaxed)
        );
        let _ = writeln!(s, "# TYPE nashra_subscriptions_total counter");
        let _ = writeln!(
            s,
            "nashra_subscriptions_total {}",
            self.subscriptions.load(Relaxed)
        );
        let _ = writeln!(s, "# TYPE nashra_clicks_total counter");
        let _ = writeln!(s, "nashra_clicks_total {}", self.clicks.load(Relaxed));
        self.render_guard(&mut s);
        for (name, help, v) in gauges {
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} gauge");
            let _ = writeln!(s, "{name} {v}");
        }
        s
    }

    fn render_guard(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP nashra_sends_guard_paused_total Sends that paused themselves (delivery.guard), by the rate that crossed its limit."
        );
        let _ = writeln!(s, "# TYPE nashra_sends_guard_paused_total counter");
        for (i, r) in crate::store::GuardReason::ALL.iter().enumerate() {
            let _ = writeln!(
                s,
                "nashra_sends_guard_paused_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.guard_paused[i].load(Relaxed)
            );
        }
        let now = crate::store::now_ms();
        let providers = crate::domain::Provider::ALL;
        for (name, kind, help) in [
            (
                "nashra_provider_backoff",
                "gauge",
                "1 while a mailbox provider's readers wait: it deferred most of its latest attempts.",
            ),
            (
                "nashra_provider_backoffs_total",
                "counter",
                "Backoffs of a mailbox provider this process started.",
            ),
            (
                "nashra_provider_held_total",
                "counter",
                "Messages held back because their mailbox provider was backing off.",
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} {kind}");
            for (i, p) in providers.iter().enumerate() {
                let v = match kind {
                    "gauge" => (self.provider_waiting_until[i].load(Relaxed) > now) as u64,
                    _ if name == "nashra_provider_backoffs_total" => {
                        self.provider_backoffs[i].load(Relaxed)
                    }
                    _ => self.provider_held[i].load(Relaxed),
                };
                let _ = writeln!(s, "{name}{{provider=\"{p}\"}} {v}");
            }
        }
    }
}
