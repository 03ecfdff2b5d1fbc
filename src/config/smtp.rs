//! `[smtp]`: the relay messages go to when `delivery.transport = "smtp"` (or, with
//! `[[relays]]`, what every relay shares: `helo_name`, `timeout`), and what it must satisfy
//! beside the delivery and server timings.

use std::time::Duration;

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{delivery::Delivery, server::Server};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: SecretString,
    pub helo_name: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Smtp {
    /// What sending over SMTP needs: a relay, and timings that fit around its timeout.
    /// `relays`: `[[relays]]` are given, so `[smtp]`'s host and credentials are not used.
    pub(super) fn check(
        &self,
        delivery: &Delivery,
        server: &Server,
        relays: bool,
    ) -> anyhow::Result<()> {
        if !relays && self.host.trim().is_empty() {
            bail!("smtp.host: must be set for the smtp transport");
        }
        // A claim must outlive the slowest transaction (connect + 2 × timeout), or a slow
        // relay would see the row claimed and sent a second time.
        if delivery.lease < self.timeout * 3 {
            bail!(
                "delivery.lease: {} must be at least 3 × smtp.timeout ({})",
                humantime::format_duration(delivery.lease),
                humantime::format_duration(self.timeout)
            );
        }
        // An unsubscribe waits for a message already on the wire to its reader (at most
        // twice smtp.timeout) before it answers, and must answer before the request timeout.
        if server.request_timeout <= self.timeout * 2 {
            bail!(
                "server.request_timeout: {} must be more than 2 × smtp.timeout ({})",
                humantime::format_duration(server.request_timeout),
                humantime::format_duration(self.timeout)
            );
        }
        if !relays && self.username.is_empty() != self.password.expose_secret().is_empty() {
            bail!("smtp.password: username and password must be set together");
        }
        Ok(())
    }
}
