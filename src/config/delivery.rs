//! `[delivery]`: how messages leave (written to a folder, or over SMTP), how fast, how often
//! they are retried, and the hours they may go out.

use std::{path::PathBuf, str::FromStr, time::Duration};

use anyhow::bail;
use serde::Deserialize;

use super::guard::Guard;
use crate::domain::SendWindow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Outbox,
    Smtp,
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

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
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
    pub window: String,
    pub window_timezone: String,
    /// `window` in `window_timezone`, parsed as the settings are loaded.
    #[serde(skip)]
    pub send_window: Option<SendWindow>,
    /// A new sending domain's daily caps per mailbox provider.
    pub warmup: Warmup,
    /// `[delivery.guard]`: when a send stops itself, when a provider's readers wait.
    pub guard: Guard,
}

/// `[delivery.warmup]`: on day 1 each mailbox provider gets at most `start` messages; each
/// day the cap grows `growth` times, until it reaches `until`, when the warm-up is over for
/// good. Day 1 is the first day anything was sent under it. `start = 0`: no warm-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    pub start: u64,
    pub growth: f64,
    pub until: u64,
    /// A message held back longer than this since its send began is skipped (`warmup`).
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

impl Warmup {
    pub fn enabled(&self) -> bool {
        self.start > 0
    }

    /// Day `day`'s cap per provider (day 1 is the first); `None` once the warm-up is over.
    pub fn cap(&self, day: i64) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let cap = self.start as f64 * self.growth.powi((day.max(1) - 1).min(400) as i32);
        (cap < self.until as f64).then_some(cap.floor() as u64)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        if !(self.growth > 1.0 && self.growth <= 10.0) {
            bail!(
                "delivery.warmup.growth: {} must be more than 1 and at most 10 (1.5 = half as much again each day)",
                self.growth
            );
        }
        if self.until <= self.start {
            bail!(
                "delivery.warmup.until: {} must be more than start ({})",
                self.until,
                self.start
            );
        }
        if self.max_wait < Duration::from_secs(3600) {
            bail!("delivery.warmup.max_wait: must be at least 1h");
        }
        Ok(())
    }
}

impl Delivery {
    pub(super) fn check(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.concurrency > 1000 {
            bail!(
                "delivery.concurrency: {} must be between 1 and 1000",
                self.concurrency
            );
        }
        if !(self.max_per_second >= 0.0 && self.max_per_second.is_finite()) {
            bail!("delivery.max_per_second: must be 0 (unlimited) or a positive number");
        }
        if self.max_attempts == 0 {
            bail!("delivery.max_attempts: must be at least 1");
        }
        if self.lease < Duration::from_secs(1) {
            bail!("delivery.lease: must be at least 1s");
        }
        if self.bounce_after == 0 {
            bail!("delivery.bounce_after: must be at least 1");
        }
        self.warmup.check()?;
        self.guard.check()
    }
}
