//! The delivery engine: a durable queue (the ledger in the store) drained by a dispatcher in
//! every process that delivers.
//!
//! - `dispatcher` claims due ledger rows with a lease and sends each through the transport,
//!   at most `delivery.concurrency` at a time;
//! - `writer` writes outcomes back in batches, stops sends the breaker says to stop, and
//!   marks sends finished;
//! - `pacing` holds the deployment-wide rate and sizes claims; `breaker` stops a send whose
//!   relay rejects everything; `revocation` keeps readers who leave mid-send from getting
//!   anything more;
//! - `message` builds the bytes, `transport` and `smtp` carry them; `mailq` is the queue of
//!   one-off mail (confirmations).
//!
//! What a crash can duplicate is bounded: a row is marked sent at most one flush after its
//! SMTP transaction ended, and the flush buffer holds at most `concurrency` outcomes, so at
//! most 2 × concurrency messages (in flight + unflushed) can go out twice. Nothing is ever
//! skipped: a row leaves the queue only by being marked sent, failed, skipped or cancelled,
//! and a row whose worker died returns when its lease runs out. Several processes share the
//! ledger safely: a claim takes rows no other worker holds (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, the single writer on SQLite).

mod breaker;
mod dispatcher;
mod mailq;
pub mod message;
mod pacing;
mod revocation;
mod smtp;
pub mod transport;
mod writer;

pub use dispatcher::Dispatcher;
pub use mailq::MailQueue;

use std::{borrow::Cow, sync::Arc, time::Duration};

use anyhow::Context;
use rand::Rng;

use crate::{
    config::Settings,
    dkim,
    domain::{Mailbox, Tokens, VerpTarget},
};
use transport::Transport;

/// Longest sleep while the queue is empty, in case another process queued work.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// At shutdown, how long messages on the wire may take to finish before they are cut off
/// (and retried, as an attempt, by whoever runs next), and how long the writer keeps trying.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every part of the process shares to send mail.
#[derive(Clone)]
pub struct Mailer {
    pub transport: Transport,
    pub from: Mailbox,
    pub settings: Arc<Settings>,
    /// The `[[dkim]]` keys, if any.
    pub signer: Option<Arc<dkim::Signer>>,
    return_path: Option<(String, String)>,
    unsubscribe_mail: Option<(String, String)>,
}

impl Mailer {
    pub fn new(settings: Arc<Settings>) -> anyhow::Result<Mailer> {
        let transport = Transport::from_settings(&settings)?;
        let from = Mailbox::parse(&settings.newsletter.from).context("newsletter.from")?;
        let signer = dkim::Signer::from_config(&settings.dkim)?.map(Arc::new);
        Ok(Mailer {
            transport,
            from,
            signer,
            return_path: settings.return_path_base(),
            unsubscribe_mail: settings.unsubscribe_mail_base(),
            settings,
        })
    }

    /// Says at start-up what receivers will see of the signing: a From domain that no key
    /// aligns with fails DMARC at Gmail, Yahoo and Outlook.com however well the mail is signed.
    pub fn warn_about_alignment(&self) {
        let domain = self.from.email.domain();
        match &self.signer {
            None if self.transport.is_outbox() => {}
            None => tracing::warn!(
                "no [[dkim]] key: the relay must sign with d={domain}, or bulk mail will be refused or junked"
            ),
            Some(s) if !s.aligned(domain) => tracing::warn!(
                from_domain = domain,
                dkim_domains = %s.keys().iter().map(|k| k.domain.as_str()).collect::<Vec<_>>().join(","),
                "the From domain is not aligned with any DKIM domain: DMARC will fail"
            ),
            Some(s) => tracing::info!(
                keys = %s.keys().iter().map(|k| format!("{:?}", k)).collect::<Vec<_>>().join(", "),
                "DKIM signing"
            ),
        }
    }

    /// The local part bounces come back to (`bounces` unless configured otherwise).
    pub fn return_local(&self) -> &str {
        self.return_path.as_ref().map_or("bounces", |(l, _)| l)
    }

    /// The local part mailed unsubscribes come to (`unsubscribe` unless configured otherwise).
    pub fn unsubscribe_local(&self) -> &str {
        self.unsubscribe_mail
            .as_ref()
            .map_or("unsubscribe", |(l, _)| l)
    }

    /// The envelope sender of a message about `target`: `bounces+<tag>@domain`, so that its
    /// bounce names it; the From address when no bounce mailbox is configured.
    pub fn envelope_from(&self, tokens: &Tokens, target: VerpTarget) -> Cow<'_, str> {
        match &self.return_path {
            Some((local, domain)) => {
                Cow::Owned(format!("{local}+{}@{domain}", tokens.verp_tag(target)))
            }
            None => Cow::Borrowed(self.from.email.as_str()),
        }
    }

    /// The `mailto:` unsubscribe address for a reader's unsubscribe token, if offered.
    pub fn unsubscribe_mailto(&self, token: &str) -> Option<String> {
        self.unsubscribe_mail
            .as_ref()
            .map(|(local, domain)| format!("{local}+{token}@{domain}"))
    }

    /// `message` with its DKIM signatures, signed on a blocking thread (an RSA signature is
    /// about a millisecond of CPU, too long for an async worker thread).
    pub async fn sign(&self, message: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let Some(signer) = self.signer.clone() else {
            return Ok(message);
        };
        let now = chrono::Utc::now().timestamp();
        tokio::task::spawn_blocking(move || signer.sign(&message, now))
            .await
            .context("DKIM signing thread")
    }

    /// Whether a non-ASCII address can be delivered (see `Transport::smtputf8`).
    pub fn smtputf8(&self) -> Option<bool> {
        self.transport.smtputf8()
    }
}

pub(crate) fn reply_to(s: &Settings) -> Option<&str> {
    (!s.newsletter.reply_to.is_empty()).then_some(s.newsletter.reply_to.as_str())
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

fn sanitize_fbl(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect()
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
