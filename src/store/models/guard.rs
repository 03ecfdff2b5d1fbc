//! What the send guard reads and writes: a send's counts as the guard judges them, the stop
//! it made, and the mailbox providers whose readers wait.

use serde::Serialize;

/// Why the guard paused a send, as stored (`guard_reason`) and as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardReason {
    Complaints,
    HardBounces,
}

impl GuardReason {
    pub const ALL: [GuardReason; 2] = [GuardReason::Complaints, GuardReason::HardBounces];

    pub fn as_str(self) -> &'static str {
        match self {
            GuardReason::Complaints => "complaints",
            GuardReason::HardBounces => "hard_bounces",
        }
    }

    pub fn parse(s: &str) -> Option<GuardReason> {
        GuardReason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A send's counts as the guard judges them, from counters kept with the digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct GuardCounts {
    pub id: i64,
    /// Taken by the relay.
    pub sent: i64,
    /// Refused for good at send time (5xx): part of `hard_bounces`.
    pub rejected: i64,
    /// `rejected` and the hard bounces reported after the relay took the message.
    pub hard_bounces: i64,
    pub complaints: i64,
    /// The counts when an editor last resumed a send the guard had paused.
    pub guard_base_delivered: i64,
    pub guard_base_hard: i64,
    pub guard_base_complaints: i64,
}

impl GuardCounts {
    /// Messages the send is done with at the relay: taken, or refused for good.
    pub fn delivered(&self) -> i64 {
        self.sent + self.rejected
    }
}

/// The guard's stop of a send, while it stands (cleared when an editor resumes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow)]
pub struct GuardStop {
    /// `complaints` or `hard_bounces`; `None`: the guard has not paused this send.
    #[sqlx(rename = "guard_reason")]
    pub reason: Option<String>,
    /// So many complaints or hard bounces …
    #[sqlx(rename = "guard_count")]
    pub count: Option<i64>,
    /// … of so many messages delivered (since the last resume) …
    #[sqlx(rename = "guard_delivered")]
    pub delivered: Option<i64>,
    /// … above this rate.
    #[sqlx(rename = "guard_limit")]
    pub limit: Option<f64>,
}

impl GuardStop {
    /// (why, count, delivered, limit) when the guard paused the send.
    pub fn parts(&self) -> Option<(GuardReason, i64, i64, f64)> {
        Some((
            GuardReason::parse(self.reason.as_deref()?)?,
            self.count?,
            self.delivered?,
            self.limit?,
        ))
    }

    /// The rate it saw.
    pub fn rate(&self) -> Option<f64> {
        let (_, count, delivered, _) = self.parts()?;
        Some(count as f64 / delivered.max(1) as f64)
    }

    /// For operators: "paused itself: hard bounces 8.1% (42 of 520 delivered) above the 5%
    /// limit".
    pub fn english(&self) -> Option<String> {
        let (reason, count, delivered, limit) = self.parts()?;
        let what = match reason {
            GuardReason::Complaints => "complaints",
            GuardReason::HardBounces => "hard bounces",
        };
        Some(format!(
            "paused itself: {what} {} ({count} of {delivered} delivered) above the {} limit",
            percent(count as f64 / delivered.max(1) as f64),
            percent(limit)
        ))
    }

    /// For the console and the audit log, in Latin digits (the console turns them into the
    /// newsroom's): «أوقف الإرسال نفسه: الشكاوى 0.5٪ فوق حد 0.3٪ (3 من 600 رسالة وصلت)».
    pub fn arabic(&self) -> Option<String> {
        let (reason, count, delivered, limit) = self.parts()?;
        let what = match reason {
            GuardReason::Complaints => "الشكاوى",
            GuardReason::HardBounces => "الارتدادات الدائمة",
        };
        let pc = |f: f64| percent(f).replace('%', "٪");
        Some(format!(
            "أوقف الإرسال نفسه: {what} {} فوق حد {} ({count} من {delivered} رسالة وصلت)",
            pc(count as f64 / delivered.max(1) as f64),
            pc(limit)
        ))
    }
}

/// A fraction as a percentage with at most two decimals and no trailing zeros: 0.003 →
/// "0.3%", 0.05 → "5%", 0.0812 → "8.12%".
pub fn percent(fraction: f64) -> String {
    let s = format!("{:.2}", fraction * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// A mailbox provider whose readers wait (see `provider_backoffs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ProviderBackoff {
    /// gmail, microsoft, yahoo, icloud, other.
    pub provider: String,
    /// Its rows wait until then (ms).
    pub until_at: i64,
    /// Backoffs in a row: the wait was `provider_backoff × 2^(level − 1)`.
    pub level: i64,
    /// Of its `judged` latest attempts, so many were deferred (4xx).
    pub deferred: i64,
    pub judged: i64,
    /// When this backoff began.
    pub since: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_as_people_write_them() {
        assert_eq!(percent(0.003), "0.3%");
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(0.0812), "8.12%");
        assert_eq!(percent(0.08123), "8.12%");
        assert_eq!(percent(0.1), "10%");
    }

    #[test]
    fn a_stop_says_what_it_saw() {
        let s = GuardStop {
            reason: Some("hard_bounces".into()),
            count: Some(42),
            delivered: Some(520),
            limit: Some(0.05),
        };
        assert_eq!(
            s.english().unwrap(),
            "paused itself: hard bounces 8.08% (42 of 520 delivered) above the 5% limit"
        );
        assert_eq!(
            s.arabic().unwrap(),
            "أوقف الإرسال نفسه: الارتدادات الدائمة 8.08٪ فوق حد 5٪ (42 من 520 رسالة وصلت)"
        );
        assert_eq!(GuardStop::default().english(), None);
    }
}
