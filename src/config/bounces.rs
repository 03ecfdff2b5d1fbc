//! `[bounces]`: where bounces, complaints and mailed unsubscribes come back (a mailbox read
//! over IMAP), and the addresses that route them there.

use std::time::Duration;

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::SubscriberEmail;

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounces {
    /// `imaps://user:password@host:993/INBOX` (or `imap://` with STARTTLS); "" = no mailbox.
    /// A secret: it carries the mailbox's password.
    pub imap_url: SecretString,
    /// PEM file of the CA that signed the IMAP server's certificate; "" = the public roots.
    pub ca_file: String,
    /// Where a processed message is moved; "" = it is only flagged \Seen.
    pub processed_folder: String,
    /// A second folder of the same mailbox read on each pass, where DMARC aggregate reports
    /// are filed (by a rule on the server, or a separate `rua` address delivered there);
    /// "" = reports are read from the bounce mailbox itself, with everything else.
    pub dmarc_folder: String,
    #[serde(with = "humantime_serde")]
    pub poll_every: Duration,
    /// Envelope sender: `local@domain` becomes `local+<token>@domain` per message. "" = the
    /// From address, or `bounces@<From domain>` when a bounce mailbox is read.
    pub return_path: String,
    /// The `mailto:` unsubscribe address (`local+<token>@domain`); "" = none, or
    /// `unsubscribe@<From domain>` when a bounce mailbox is read.
    pub unsubscribe_address: String,
    /// Soft bounces (4.x.x) in a row, over different digests, that mark an address bounced.
    pub soft_bounce_after: u32,
}

impl Bounces {
    /// Whether a bounce mailbox is read.
    pub fn has_mailbox(&self) -> bool {
        !self.imap_url.expose_secret().is_empty()
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        for (key, v) in [
            ("bounces.return_path", &self.return_path),
            ("bounces.unsubscribe_address", &self.unsubscribe_address),
        ] {
            if v.is_empty() {
                continue;
            }
            let ok = SubscriberEmail::parse(v).is_ok()
                && v.is_ascii()
                && !v.contains('+')
                && v.split('@').next().is_some_and(|l| l.len() <= 30);
            if !ok {
                bail!(
                    "{key}: `{v}` must be a plain ASCII address without `+`, local part at most 30 characters (a tag is added to it per message)"
                );
            }
        }
        let imap = self.imap_url.expose_secret();
        if !imap.is_empty() && !imap.starts_with("imaps://") {
            bail!("bounces.imap_url: must start with imaps:// (TLS from the first byte)");
        }
        if self.soft_bounce_after == 0 {
            bail!("bounces.soft_bounce_after: must be at least 1");
        }
        Ok(())
    }
}
