//! Configuration: `config/default.toml` (embedded, so the binary runs from anywhere), an
//! optional `--config FILE` layered over it, and `NASHRA__SECTION__KEY` variables over both.
//!
//! Everything is checked once at start-up, and parsed into domain types (a schedule's crontab
//! in its time zone, the sending window, the subject template); a bad value stops the process
//! with a message that names the key, so an operator never discovers a typo at 07:00 when the
//! digest should go out. An unknown key stops it too (`unknown.rs`): a misspelt setting left
//! at its default looks live when it is not. This module depends on `domain` only.
//!
//! Long (about 1,000 lines) because every section's types, defaults and checks, and their tests,
//! are here; the unknown-key check is already apart (`unknown.rs`). Issue 16 splits it into a file
//! per section, each with its own check.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use anyhow::{Context, bail};
use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

use crate::domain::{CronSchedule, Mailbox, SendWindow, SubjectTemplate, SubscriberEmail};

mod unknown;

/// The defaults shipped in the repository, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Development values from `config/default.toml`: fine on a laptop, refused for real sending.
const DEV_SECRET: &str = "nashra-dev-secret-change-me-0123456789abcdef";
const DEV_ADMIN_TOKEN: &str = "nashra-dev-admin-token";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: Server,
    pub database: Database,
    pub delivery: Delivery,
    pub smtp: Smtp,
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
}

/// A `[[dkim]]` key: the PEM from a file or from an environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    pub domain: String,
    pub selector: String,
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    #[serde(default)]
    pub private_key_env: Option<String>,
    /// "rsa-sha256" or "ed25519-sha256"; checked against the key.
    #[serde(default)]
    pub algorithm: Option<String>,
}

/// Where bounces, complaints and mailed unsubscribes come back.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounces {
    /// `imaps://user:password@host:993/INBOX` (or `imap://` with STARTTLS); "" = no mailbox.
    pub imap_url: String,
    /// PEM file of the CA that signed the IMAP server's certificate; "" = the public roots.
    pub ca_file: String,
    /// Where a processed message is moved; "" = it is only flagged \Seen.
    pub processed_folder: String,
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

impl std::fmt::Debug for Bounces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bounces")
            .field("imap", &!self.imap_url.is_empty())
            .field("return_path", &self.return_path)
            .finish_non_exhaustive()
    }
}

/// Provider webhooks; a provider with no credentials set answers 404.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// Basic-auth user and password put in the webhook URL given to Postmark.
    pub postmark_user: String,
    pub postmark_password: String,
    /// Mailgun's "HTTP webhook signing key".
    pub mailgun_signing_key: String,
    /// SendGrid's "Verification Key" (base64 DER public key) of the signed event webhook.
    pub sendgrid_public_key: String,
    /// SNS topics whose messages are taken (ARNs); none = the SES webhook is off.
    pub ses_topic_arns: Vec<String>,
    /// Hosts a signing certificate may come from besides Amazon's: `host` is https on port
    /// 443 there, `host:port` that port only (how the tests serve one).
    pub sns_cert_hosts: Vec<String>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Webhooks { .. }")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub bind: SocketAddr,
    /// Base of every link we put in a message; must be reachable by readers.
    pub public_url: String,
    /// Sign-ups one client may make per hour (0 = no limit).
    #[serde(default = "default_signups_per_hour")]
    pub signups_per_hour: u32,
    /// A sign-up form posted back sooner than this after it was served was filled by a
    /// program: it gets the usual answer and nothing is stored.
    #[serde(with = "humantime_serde", default = "default_min_fill_time")]
    pub min_fill_time: Duration,
    /// Behind a reverse proxy, the header carrying the client's address ("X-Forwarded-For",
    /// "X-Real-IP"); empty = the TCP peer.
    #[serde(default)]
    pub client_ip_header: String,
    /// How many proxies of yours append to that header. The client is the address that many
    /// hops from its right end: everything to the left of it was written by the client and
    /// proves nothing.
    #[serde(default = "default_trusted_hops")]
    pub trusted_proxy_hops: usize,
    /// The proxies (CIDR ranges) whose `client_ip_header` is believed: from any other peer
    /// the header is the client's own word and the peer's address counts. Loopback by
    /// default (a proxy on the same machine).
    #[serde(default = "default_trusted_proxies")]
    pub trusted_proxies: Vec<crate::domain::Cidr>,
    /// A client must send a request's headers within this (also bounds an idle keep-alive).
    #[serde(with = "humantime_serde", default = "default_header_timeout")]
    pub header_timeout: Duration,
    /// A request, body included, must be answered within this.
    #[serde(with = "humantime_serde", default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// Open connections at most; beyond, new ones are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`; empty = open, for a
    /// scraper on a private network.
    #[serde(default)]
    pub metrics_token: SecretText,
}

/// A secret read from the configuration: its `Debug` says only whether it is set, so
/// printing the settings never shows it.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "[set]" })
    }
}

fn default_trusted_hops() -> usize {
    1
}
fn default_trusted_proxies() -> Vec<crate::domain::Cidr> {
    ["127.0.0.0/8", "::1"]
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect()
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(90)
}
fn default_max_connections() -> usize {
    1024
}

fn default_signups_per_hour() -> u32 {
    20
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Outbox,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub transport: Transport,
    pub outbox_dir: PathBuf,
    pub concurrency: usize,
    pub max_per_second: f64,
    pub max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    pub bounce_after: u32,
    pub stop_after_failures: u32,
    #[serde(with = "humantime_serde")]
    pub catch_up_grace: Duration,
    /// Hours when messages may go out ("07:00-22:00"); empty = any time.
    #[serde(default)]
    pub window: String,
    #[serde(default = "default_window_tz")]
    pub window_timezone: String,
    /// `window` in `window_timezone`, parsed by `Settings::validate`.
    #[serde(skip)]
    pub send_window: Option<SendWindow>,
}

fn default_window_tz() -> String {
    "UTC".into()
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: String,
    pub password: String,
    pub helo_name: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Newsletter {
    pub name: String,
    pub from: String,
    pub reply_to: String,
    pub lang: String,
    pub dir: String,
    pub list_id: String,
    pub site_url: String,
    pub postal_address: String,
    pub most_read_feed: String,
    /// The sign-up prompt shown on `/subscribe` and in the embeddable form.
    pub prompt: String,
    /// Footer line telling the reader why the message reached them.
    pub why: String,
    /// Longest excerpt of an article in a digest, in characters (cut at a word).
    #[serde(default = "default_excerpt_chars")]
    pub excerpt_chars: usize,
    /// The site's own name, for «العودة إلى موقع …».
    #[serde(default = "default_site_name")]
    pub site_name: String,
    /// Where the site shows a hashtag's articles, `{tag}` standing for the tag; empty = tags
    /// are shown as plain text, not links.
    #[serde(default)]
    pub tag_url: String,
    /// The newsroom's time zone: the console shows times in it. Empty = the first
    /// schedule's.
    #[serde(default)]
    pub timezone: String,
    /// How the console writes numbers: `latin` (1,234) or `arabic` (١٬٢٣٤).
    #[serde(default)]
    pub digits: Digits,
    /// Which calendar dates the digest and the pages carry.
    #[serde(default)]
    pub calendar: Calendar,
    /// Links in digests go through `/r/…` and clicks are counted per article (no reader).
    #[serde(default)]
    pub click_counts: bool,
}

/// `newsletter.calendar`: the site's Gregorian form, the Umm al-Qura Hijri date, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Calendar {
    #[default]
    Gregorian,
    Hijri,
    Both,
}

/// A `[[sections]]` entry: what readers tick on the preferences page, and which articles
/// belong to it (a feed category, an API tag or `section` field, compared without case).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub categories: Vec<String>,
}

impl Section {
    /// Whether an article with these categories and tags belongs here.
    pub fn matches<'a>(&self, mut labels: impl Iterator<Item = &'a str>) -> bool {
        labels.any(|l| {
            let l = l.trim().trim_start_matches('#');
            l.eq_ignore_ascii_case(&self.slug)
                || self.categories.iter().any(|c| {
                    c.trim()
                        .replace(' ', "_")
                        .eq_ignore_ascii_case(&l.replace(' ', "_"))
                })
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digits {
    #[default]
    Latin,
    Arabic,
}

fn default_site_name() -> String {
    "الحل نت".into()
}

fn default_excerpt_chars() -> usize {
    320
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    pub secret: String,
    /// A bearer token for scripts, with the owner role. Empty = retired (use API tokens
    /// made in the console).
    pub admin_token: String,
    /// A console session ends after this long unused…
    #[serde(with = "humantime_serde", default = "default_session_idle")]
    pub session_idle: Duration,
    /// …and this long after sign-in, however busy.
    #[serde(with = "humantime_serde", default = "default_session_max")]
    pub session_max: Duration,
    /// Wrong passwords (or codes) in a row that lock an account…
    #[serde(default = "default_login_attempts")]
    pub login_attempts: u32,
    /// …for this long.
    #[serde(with = "humantime_serde", default = "default_lockout")]
    pub lockout: Duration,
    /// Sign-in attempts a client address may make an hour, whatever the accounts.
    #[serde(default = "default_logins_per_hour")]
    pub logins_per_hour: u32,
}

fn default_min_fill_time() -> Duration {
    Duration::from_secs(2)
}

fn default_session_idle() -> Duration {
    Duration::from_secs(2 * 3600)
}

fn default_session_max() -> Duration {
    Duration::from_secs(12 * 3600)
}

fn default_login_attempts() -> u32 {
    5
}

fn default_lockout() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_logins_per_hour() -> u32 {
    30
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Security { .. }")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    pub url: String,
    #[serde(with = "humantime_serde", default = "default_poll")]
    pub poll_every: Duration,
}

fn default_poll() -> Duration {
    Duration::from_secs(15 * 60)
}

/// A `[[schedules]]` entry, its crontab and subject parsed as it is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSchedule")]
pub struct Schedule {
    pub name: String,
    /// What readers see on the preferences page («يومية»); the name when not given.
    pub label: String,
    pub cron: CronSchedule,
    pub subject: SubjectTemplate,
    pub max_articles: u32,
    /// `default`: whether a reader who never chose schedules gets this one (a weekly
    /// round-up beside a daily digest repeats its articles: it is opt-in).
    pub for_new_readers: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    name: String,
    #[serde(default)]
    label: String,
    cron: String,
    timezone: String,
    subject: String,
    #[serde(default = "default_max_articles")]
    max_articles: u32,
    #[serde(default = "default_true")]
    default: bool,
}

fn default_true() -> bool {
    true
}

impl TryFrom<RawSchedule> for Schedule {
    type Error = String;

    fn try_from(r: RawSchedule) -> Result<Schedule, String> {
        let name = r.name;
        let cron =
            CronSchedule::parse(&r.cron, &r.timezone).map_err(|e| format!("({name}) {e:#}"))?;
        let subject =
            SubjectTemplate::parse(&r.subject).map_err(|e| format!("({name}) subject: {e:#}"))?;
        if r.max_articles == 0 {
            return Err(format!("({name}) max_articles: must be at least 1"));
        }
        if name.is_empty() || name.len() > 60 || name.contains(',') {
            return Err(format!(
                "({name}) name: must be 1 to 60 characters without a comma"
            ));
        }
        Ok(Schedule {
            label: if r.label.trim().is_empty() {
                name.clone()
            } else {
                r.label.trim().to_owned()
            },
            name,
            cron,
            subject,
            max_articles: r.max_articles,
            for_new_readers: r.default,
        })
    }
}

fn default_max_articles() -> u32 {
    20
}

/// `humantime` durations ("30s", "2m") in TOML and environment variables.
mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            D::Error::custom(format!(
                "`{s}` is not a duration like \"30s\" or \"2m\": {e}"
            ))
        })
    }
}

impl Settings {
    /// Loads defaults, then `file`, then the environment, and checks every value.
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Settings> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            fig = fig.merge(Toml::file(file));
        }
        fig = fig.merge(Env::prefixed("NASHRA__").split("__"));
        Self::from_figment(fig)
    }

    /// Loads defaults with `toml` layered over them (tests and tools build configs this way).
    pub fn from_toml_over_defaults(toml: &str) -> anyhow::Result<Settings> {
        Self::from_toml_layers(&[toml])
    }

    /// Defaults, then each TOML document in turn.
    pub fn from_toml_layers(layers: &[&str]) -> anyhow::Result<Settings> {
        let fig = layers
            .iter()
            .fold(Figment::from(Toml::string(DEFAULT_TOML)), |f, l| {
                f.merge(Toml::string(l))
            });
        Self::from_figment(fig)
    }

    fn from_figment(fig: Figment) -> anyhow::Result<Settings> {
        let mut settings: Settings = fig.extract().map_err(|e| {
            let unknown = unknown::describe(&fig);
            let msgs: Vec<String> = if unknown.is_empty() {
                e.into_iter().map(describe_figment_error).collect()
            } else {
                unknown
            };
            anyhow::anyhow!("invalid configuration: {}", msgs.join("; "))
        })?;
        settings.delivery.send_window = SendWindow::parse(
            &settings.delivery.window,
            &settings.delivery.window_timezone,
        )
        .context("delivery.window / delivery.window_timezone")?;
        settings.validate()?;
        Ok(settings)
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
        if self.bounces.imap_url.is_empty() {
            return None;
        }
        let from = Mailbox::parse(&self.newsletter.from).ok()?;
        Some((default_local.to_owned(), from.email.domain().to_owned()))
    }

    /// Checks what serde cannot: ranges, addresses, secrets, what must go together.
    pub fn validate(&self) -> anyhow::Result<()> {
        let public = &self.server.public_url;
        if !(public.starts_with("http://") || public.starts_with("https://")) {
            bail!("server.public_url: `{public}` must start with http:// or https://");
        }
        if self.database.url.trim().is_empty() {
            bail!("database.url: must not be empty");
        }
        for (key, v) in [
            ("bounces.return_path", &self.bounces.return_path),
            (
                "bounces.unsubscribe_address",
                &self.bounces.unsubscribe_address,
            ),
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
        let imap = &self.bounces.imap_url;
        if !imap.is_empty() && !imap.starts_with("imaps://") {
            bail!("bounces.imap_url: must start with imaps:// (TLS from the first byte)");
        }
        if self.bounces.soft_bounce_after == 0 {
            bail!("bounces.soft_bounce_after: must be at least 1");
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            bail!(
                "database.url: `{}` is neither sqlite://PATH nor postgres://…",
                redact_url(db)
            );
        }
        let d = &self.delivery;
        if d.concurrency == 0 || d.concurrency > 1000 {
            bail!(
                "delivery.concurrency: {} must be between 1 and 1000",
                d.concurrency
            );
        }
        if !(d.max_per_second >= 0.0 && d.max_per_second.is_finite()) {
            bail!("delivery.max_per_second: must be 0 (unlimited) or a positive number");
        }
        if d.max_attempts == 0 {
            bail!("delivery.max_attempts: must be at least 1");
        }
        if d.lease < Duration::from_secs(1) {
            bail!("delivery.lease: must be at least 1s");
        }
        if d.bounce_after == 0 {
            bail!("delivery.bounce_after: must be at least 1");
        }
        Mailbox::parse(&self.newsletter.from).with_context(|| {
            format!(
                "newsletter.from: `{}` is not `Name <address>`",
                self.newsletter.from
            )
        })?;
        if !self.newsletter.reply_to.is_empty() {
            SubscriberEmail::parse(&self.newsletter.reply_to)
                .map_err(|_| anyhow::anyhow!("newsletter.reply_to: not a valid address"))?;
        }
        if !(40..=5000).contains(&self.newsletter.excerpt_chars) {
            bail!(
                "newsletter.excerpt_chars: {} must be between 40 and 5000",
                self.newsletter.excerpt_chars
            );
        }
        let tag_url = &self.newsletter.tag_url;
        if !tag_url.is_empty()
            && (crate::domain::safe_url(tag_url).is_none() || !tag_url.contains("{tag}"))
        {
            bail!("newsletter.tag_url: `{tag_url}` must be an http(s) URL containing {{tag}}");
        }
        let srv = &self.server;
        if srv.trusted_proxy_hops == 0 {
            bail!("server.trusted_proxy_hops: must be at least 1");
        }
        if srv.max_connections < 16 {
            bail!("server.max_connections: must be at least 16");
        }
        if srv.header_timeout.is_zero() || srv.request_timeout.is_zero() {
            bail!("server.header_timeout / server.request_timeout: must be more than 0");
        }
        let lid = &self.newsletter.list_id;
        if !lid.contains('.')
            || !lid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        {
            bail!("newsletter.list_id: `{lid}` must look like digest.example.org");
        }
        if self.security.secret.len() < 32 {
            bail!("security.secret: must be at least 32 characters");
        }
        if !self.security.admin_token.is_empty() && self.security.admin_token.len() < 16 {
            bail!("security.admin_token: must be at least 16 characters (or empty: retired)");
        }
        if self.security.login_attempts == 0 || self.security.logins_per_hour == 0 {
            bail!("security.login_attempts and security.logins_per_hour: must be at least 1");
        }
        if self.security.session_idle.is_zero()
            || self.security.session_max < self.security.session_idle
        {
            bail!(
                "security.session_max: must be at least security.session_idle (and both above zero)"
            );
        }
        if !self.newsletter.timezone.is_empty() {
            self.newsletter
                .timezone
                .parse::<chrono_tz::Tz>()
                .map_err(|_| {
                    anyhow::anyhow!(
                        "newsletter.timezone: `{}` is not a time zone (e.g. Asia/Baghdad)",
                        self.newsletter.timezone
                    )
                })?;
        }
        // The development values are published with the code: with them anyone can sign a
        // reader's link or act as owner. They are for a laptop only, whatever the process
        // runs: a web-only process or a worker shares its secret and its database with the
        // rest of the site, so the rule cannot depend on the role.
        let readers_reach_it = public.starts_with("https://") || !srv.bind.ip().is_loopback();
        let why = if d.transport == Transport::Smtp {
            Some("sending over smtp")
        } else if readers_reach_it {
            Some("serving readers (server.public_url is https or server.bind is not loopback)")
        } else {
            None
        };
        if let Some(why) = why {
            if self.security.secret == DEV_SECRET {
                bail!(
                    "security.secret: still the development value; set a secret of your own (NASHRA__SECURITY__SECRET) before {why}"
                );
            }
            if self.security.admin_token == DEV_ADMIN_TOKEN {
                bail!(
                    "security.admin_token: still the development value; set your own (NASHRA__SECURITY__ADMIN_TOKEN, or \"\" to retire it) before {why}"
                );
            }
        }
        if d.transport == Transport::Smtp {
            if self.smtp.host.trim().is_empty() {
                bail!("smtp.host: must be set for the smtp transport");
            }
            // A claim must outlive the slowest transaction (connect + 2 × timeout), or a slow
            // relay would see the row claimed and sent a second time.
            if d.lease < self.smtp.timeout * 3 {
                bail!(
                    "delivery.lease: {} must be at least 3 × smtp.timeout ({})",
                    humantime::format_duration(d.lease),
                    humantime::format_duration(self.smtp.timeout)
                );
            }
            // An unsubscribe waits for a message already on the wire to its reader (at most
            // twice smtp.timeout) before it answers, and must answer before the request timeout.
            if self.server.request_timeout <= self.smtp.timeout * 2 {
                bail!(
                    "server.request_timeout: {} must be more than 2 × smtp.timeout ({})",
                    humantime::format_duration(self.server.request_timeout),
                    humantime::format_duration(self.smtp.timeout)
                );
            }
            if self.smtp.username.is_empty() != self.smtp.password.is_empty() {
                bail!("smtp.password: username and password must be set together");
            }
        }
        for (i, f) in self.feeds.iter().enumerate() {
            if !(f.url.starts_with("http://")
                || f.url.starts_with("https://")
                || f.url.starts_with("file://"))
            {
                bail!(
                    "feeds[{i}].url: `{}` must be an http(s):// or file:// URL",
                    f.url
                );
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.schedules.iter().enumerate() {
            // Ignoring case: a reader's list of schedules is matched with LIKE, which SQLite
            // compares without case and PostgreSQL with.
            if !names.insert(s.name.to_ascii_lowercase()) {
                bail!("schedules[{i}].name: `{}` is used twice", s.name);
            }
        }
        if !self.schedules.is_empty() && !self.schedules.iter().any(|s| s.for_new_readers) {
            bail!(
                "schedules: every schedule has `default = false`, so a new reader would get nothing; give one `default = true`"
            );
        }
        let mut slugs = std::collections::HashSet::new();
        for (i, s) in self.sections.iter().enumerate() {
            let ok = (1..=40).contains(&s.slug.len())
                && s.slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                bail!(
                    "sections[{i}].slug: `{}` must be 1 to 40 of a-z, 0-9 and -",
                    s.slug
                );
            }
            if !slugs.insert(s.slug.as_str()) {
                bail!("sections[{i}].slug: `{}` is used twice", s.slug);
            }
            if s.name.trim().is_empty() || s.name.chars().count() > 60 {
                bail!("sections[{i}].name: must be 1 to 60 characters");
            }
        }
        if self.sections.len() > 12 {
            bail!("sections: at most 12 (each reader's choice is rendered once per send)");
        }
        Ok(())
    }

    pub fn schedule(&self, name: Option<&str>) -> anyhow::Result<&Schedule> {
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

fn describe_figment_error(e: figment::Error) -> String {
    let path = e.path.join(".");
    let kind = e.kind.to_string();
    if path.is_empty() {
        kind
    } else {
        format!("{path}: {kind}")
    }
}

/// Hides a password in a database URL before it reaches a message or a log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl FromStr for Transport {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "outbox" => Ok(Transport::Outbox),
            "smtp" => Ok(Transport::Smtp),
            _ => bail!("unknown transport `{s}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::from_toml_over_defaults("").unwrap();
        assert_eq!(s.delivery.transport, Transport::Outbox);
        assert_eq!(s.server.bind.port(), 8080);
        assert_eq!(s.delivery.retry_after, Duration::from_secs(30));
        assert_eq!(s.schedules[0].name, "daily");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[delivery]\ntransport = \"pigeon\"", "delivery.transport"),
            (
                "[[schedules]]\nname=\"x\"\ncron=\"61 * * * *\"\ntimezone=\"UTC\"\nsubject=\"s\"",
                "schedules",
            ),
            (
                "[[schedules]]\nname=\"x\"\ncron=\"0 7 * * *\"\ntimezone=\"Mars/Olympus\"\nsubject=\"s\"",
                "schedules",
            ),
            ("[delivery]\ntransport = \"smtp\"", "security.secret"),
            ("[delivery]\nretry_after = \"soon\"", "delivery.retry_after"),
            ("[server]\npublic_url = \"ftp://x\"", "server.public_url"),
            (
                "[[sections]]\nslug = \"Sport\"\nname = \"رياضة\"",
                "sections[0].slug",
            ),
            (
                "[[sections]]\nslug = \"a\"\nname = \"أ\"\n[[sections]]\nslug = \"a\"\nname = \"ب\"",
                "sections[1].slug",
            ),
            ("[newsletter]\ncalendar = \"julian\"", "newsletter.calendar"),
            (
                "[[schedules]]\nname=\"a,b\"\ncron=\"0 7 * * *\"\ntimezone=\"UTC\"\nsubject=\"s\"",
                "without a comma",
            ),
        ];
        for (toml, key) in cases {
            let err = format!("{:#}", Settings::from_toml_over_defaults(toml).unwrap_err());
            assert!(err.contains(key), "{toml:?} gave {err}");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_the_nearest_known_one() {
        let cases = [
            ("[delivry]\nconcurrency = 3", "did you mean `delivery`?"),
            (
                "[smtp]\nhots = \"x\"",
                "unknown key `smtp.hots`: did you mean `smtp.host`?",
            ),
            ("[newsletter]\nwelcome = \"x\"", "planned but not supported"),
            (
                "[[dkim]]\ndomain = \"a.b\"\nselector = \"s\"\nalgoritm = \"x\"",
                "`dkim[0].algorithm`?",
            ),
        ];
        for (toml, wanted) in cases {
            let err = format!("{:#}", Settings::from_toml_over_defaults(toml).unwrap_err());
            assert!(err.contains(wanted), "{toml:?} gave {err}");
        }
        // Every key of the shipped defaults is known (they load over themselves).
        Settings::from_toml_over_defaults(DEFAULT_TOML).unwrap();
    }

    #[test]
    fn the_development_secrets_stay_on_a_laptop() {
        let own = "[security]\nsecret = \"an-operator-secret-0123456789-0123456789\"\n";
        for (toml, key) in [
            (
                "[server]\npublic_url = \"https://news.example.org\"",
                "security.secret",
            ),
            ("[server]\nbind = \"0.0.0.0:8080\"", "security.secret"),
            (
                &format!("{own}[server]\nbind = \"[::]:8080\""),
                "security.admin_token",
            ),
        ] {
            let err = format!("{:#}", Settings::from_toml_over_defaults(toml).unwrap_err());
            assert!(
                err.contains(key) && err.contains("development value"),
                "{toml:?} gave {err}"
            );
        }
        Settings::from_toml_over_defaults("").expect("loopback and http: the demo runs");
    }

    #[test]
    fn sections_match_categories_tags_and_slugs() {
        let s = Settings::from_toml_over_defaults(
            "[[sections]]\nslug = \"culture\"\nname = \"ثقافة\"\ncategories = [\"ثقافة وفنون\", \"Arts\"]",
        )
        .unwrap();
        let c = &s.sections[0];
        assert!(c.matches(["culture"].into_iter()));
        assert!(c.matches(["arts", "x"].into_iter()));
        assert!(
            c.matches(["#ثقافة_وفنون"].into_iter()),
            "a hashtag of the category"
        );
        assert!(!c.matches(["ثقافة", "sport"].into_iter()));
        assert_eq!(s.schedules[0].label, "يومية");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://***@h/db");
    }
}
