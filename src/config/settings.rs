//! `Settings`: every section together, the checks that span sections (the development
//! secrets, what sending over SMTP needs), and what callers ask of the whole (a schedule by
//! name, the sender's domain, the newsroom's time zone, public URLs).

use serde::Deserialize;

use super::{
    alerts::Alerts,
    bounces::Bounces,
    database::Database,
    delivery::{Delivery, Transport},
    dkim::DkimKeyConfig,
    dns::Dns,
    feeds::{self, Feed},
    newsletter::Newsletter,
    providers::Providers,
    relays::Relay,
    schedules::{self, Schedule},
    sections::{self, Section},
    security::Security,
    server::Server,
    smtp::Smtp,
    webhooks::Webhooks,
};
use crate::domain::Mailbox;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: Server,
    pub database: Database,
    pub delivery: Delivery,
    pub smtp: Smtp,
    /// Several relays with weights and failover; none = `[smtp]` is the one relay.
    #[serde(default)]
    pub relays: Vec<Relay>,
    pub newsletter: Newsletter,
    pub security: Security,
    #[serde(default)]
    pub feeds: Vec<Feed>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    /// What readers may choose from besides schedules; none = every reader gets every article.
    #[serde(default)]
    pub sections: Vec<Section>,
    #[serde(default)]
    pub dkim: Vec<DkimKeyConfig>,
    pub bounces: Bounces,
    pub webhooks: Webhooks,
    pub alerts: Alerts,
    /// Address domains counted as a mailbox provider's, besides the built-in lists.
    pub providers: Providers,
    /// The nameservers our own lookups ask (`nashra doctor`).
    pub dns: Dns,
}

impl Settings {
    /// Checks what serde cannot: ranges, addresses, secrets, what must go together. Each
    /// section checks its own keys; what spans sections is checked here.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.server.check()?;
        self.database.check()?;
        self.bounces.check()?;
        self.delivery.check()?;
        self.newsletter.check()?;
        self.security.check()?;
        // The development values are published with the code: with them anyone can sign a
        // reader's link or act as owner. They are for a laptop only, whatever the process
        // runs: a web-only process or a worker shares its secret and its database with the
        // rest of the site, so the rule cannot depend on the role.
        let smtp = self.delivery.transport == Transport::Smtp;
        let why = if smtp {
            Some("sending over smtp")
        } else if self.server.faces_readers() {
            Some("serving readers (server.public_url is https or server.bind is not loopback)")
        } else {
            None
        };
        if let Some(why) = why {
            self.security.check_not_development(why)?;
        }
        if smtp {
            self.smtp
                .check(&self.delivery, &self.server, !self.relays.is_empty())?;
        }
        feeds::check(&self.feeds)?;
        schedules::check(&self.schedules)?;
        sections::check(&self.sections)
    }

    /// The envelope sender's local part and domain, to which `+<tag>` is added per message;
    /// `None`: the From address as it is (no bounce mailbox to name).
    pub fn return_path_base(&self) -> Option<(String, String)> {
        self.address_base(&self.bounces.return_path, "bounces")
    }

    /// The `mailto:` unsubscribe address's local part and domain, if there is one.
    pub fn unsubscribe_mail_base(&self) -> Option<(String, String)> {
        self.address_base(&self.bounces.unsubscribe_address, "unsubscribe")
    }

    fn address_base(&self, given: &str, default_local: &str) -> Option<(String, String)> {
        if let Some((l, d)) = given.rsplit_once('@') {
            return Some((l.to_owned(), d.to_ascii_lowercase()));
        }
        if !self.bounces.has_mailbox() {
            return None;
        }
        let from = Mailbox::parse(&self.newsletter.from).ok()?;
        Some((default_local.to_owned(), from.email.domain().to_owned()))
    }

    /// The relays messages go to: `[[relays]]`, or `[smtp]` as the one relay.
    pub fn relays(&self) -> Vec<Relay> {
        if self.relays.is_empty() {
            vec![Relay::from_smtp(&self.smtp)]
        } else {
            self.relays.clone()
        }
    }

    pub fn schedule(&self, name: Option<&str>) -> anyhow::Result<&Schedule> {
        use anyhow::Context;
        match name {
            Some(n) => self
                .schedules
                .iter()
                .find(|s| s.name == n)
                .with_context(|| format!("no schedule named `{n}` in the configuration")),
            None => self
                .schedules
                .first()
                .context("no [[schedules]] in the configuration"),
        }
    }

    /// The domain our Message-IDs and List-Id live on: the From address's domain.
    pub fn sender_domain(&self) -> String {
        Mailbox::parse(&self.newsletter.from)
            .map(|m| m.email.domain().to_owned())
            .unwrap_or_else(|_| "localhost".into())
    }

    /// The newsroom's time zone (`newsletter.timezone`, else the first schedule's, else UTC).
    pub fn newsroom_tz(&self) -> chrono_tz::Tz {
        self.newsletter
            .timezone
            .parse()
            .ok()
            .or_else(|| self.schedules.first().map(|s| s.cron.timezone()))
            .unwrap_or(chrono_tz::UTC)
    }

    /// The scheme, host and port of `server.public_url`, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        url::Url::parse(&self.server.public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    pub fn public_url(&self, path: &str) -> String {
        format!("{}{}", self.server.public_url.trim_end_matches('/'), path)
    }
}
