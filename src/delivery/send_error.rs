//! Why a send did not go through, and what follows from it: when to try again, and how a
//! relay's reply may be logged.
//!
//! A leaf: the SMTP client (`smtp`) makes these, the transport passes them on, and the
//! dispatcher and the mail queue decide on them, so none of those has to import another to
//! name a failure.

use std::time::Duration;

use rand::Rng;

/// Why a send did not go through, sorted by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The server answered 4xx: try again later.
    Transient(String),
    /// The server answered 5xx: this address will not take it.
    Permanent(String),
    /// No answer at all (connection refused, dropped, timed out): the relay is the problem,
    /// not the recipient.
    Connection(String),
}

impl SendError {
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Transient(_) => "transient",
            SendError::Permanent(_) => "permanent",
            SendError::Connection(_) => "connection",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            SendError::Transient(m) | SendError::Permanent(m) | SendError::Connection(m) => m,
        }
    }
}

/// `retry_after × 2^(attempt−1)`, with ±25 % jitter so a crowd of retries spreads out.
pub fn backoff(retry_after: Duration, attempt: u32) -> Duration {
    let base = retry_after.as_millis() as f64 * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let jitter = rand::rng().random_range(0.75..1.25);
    Duration::from_millis((base * jitter) as u64)
}

/// Relay replies often quote the recipient ("550 5.1.1 <alice@example.com>… "): logs get
/// `***@domain` instead.
pub fn redact_addresses(s: &str) -> String {
    static ADDR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"[^\s<>@,;:]+@([A-Za-z0-9.-]+)").expect("valid regex")
    });
    ADDR.replace_all(s, "***@$1").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter() {
        let b1 = backoff(Duration::from_secs(30), 1).as_secs_f64();
        let b3 = backoff(Duration::from_secs(30), 3).as_secs_f64();
        assert!((22.0..38.0).contains(&b1), "{b1}");
        assert!((90.0..150.0).contains(&b3), "{b3}");
    }

    #[test]
    fn addresses_are_redacted_from_log_lines() {
        assert_eq!(
            redact_addresses("550 5.1.1 <alice.b@example.com>: no such user"),
            "550 5.1.1 <***@example.com>: no such user"
        );
    }
}
