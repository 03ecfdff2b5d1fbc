//! `[delivery.guard]`: when a send stops itself, and when one mailbox provider's readers wait.
//!
//! A send whose complaints or hard bounces climb past what the big providers tolerate (Gmail
//! names 0.3 % of complaints) is paused before it hurts the domain's reputation for every
//! later send; an editor looks and resumes or cancels. A provider that answers 4xx to most
//! of its messages is left alone for a while (its rows wait, with a growing backoff) while the
//! others go on. The rules themselves live in `delivery::guard` and
//! `delivery::provider_backoff`.

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// Off: no send pauses itself and no provider's rows wait.
    pub enabled: bool,
    /// Messages a send must have delivered (since its last resume after a stop of the guard's)
    /// before its rates are judged: a few early bounces say nothing.
    pub min_delivered: u64,
    /// Complaints over delivered messages above which the send pauses (0.003 = 0.3 %).
    pub max_complaint_rate: f64,
    /// Hard bounces over delivered messages above which the send pauses (0.05 = 5 %).
    pub max_hard_bounce_rate: f64,
    /// How many of a provider's latest attempts are judged.
    pub provider_window: u32,
    /// The share of those answered 4xx that makes the provider's rows wait.
    pub provider_deferral_rate: f64,
    /// The first wait; each wait in a row doubles it, up to `provider_backoff_max`.
    #[serde(with = "humantime_serde")]
    pub provider_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub provider_backoff_max: Duration,
}

impl Guard {
    pub(super) fn check(&self) -> anyhow::Result<()> {
        for (key, rate) in [
            ("max_complaint_rate", self.max_complaint_rate),
            ("max_hard_bounce_rate", self.max_hard_bounce_rate),
        ] {
            if !(rate > 0.0 && rate < 1.0) {
                bail!(
                    "delivery.guard.{key}: {rate} must be a fraction between 0 and 1 (0.003 = 0.3 %)"
                );
            }
        }
        if !(self.provider_deferral_rate > 0.0 && self.provider_deferral_rate <= 1.0) {
            bail!(
                "delivery.guard.provider_deferral_rate: {} must be a fraction above 0, at most 1 (0.8 = 80 %)",
                self.provider_deferral_rate
            );
        }
        if !(2..=10_000).contains(&self.provider_window) {
            bail!(
                "delivery.guard.provider_window: {} must be between 2 and 10000 attempts",
                self.provider_window
            );
        }
        if self.provider_backoff < Duration::from_secs(1) {
            bail!("delivery.guard.provider_backoff: must be at least 1s");
        }
        if self.provider_backoff_max < self.provider_backoff {
            bail!("delivery.guard.provider_backoff_max: must be at least provider_backoff");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    #[test]
    fn defaults_and_bad_values() {
        let s = Settings::from_toml_over_defaults("").unwrap();
        let g = &s.delivery.guard;
        assert!(g.enabled);
        assert_eq!(g.min_delivered, 500);
        assert_eq!(g.max_complaint_rate, 0.003);
        assert_eq!(g.max_hard_bounce_rate, 0.05);
        assert_eq!(g.provider_window, 50);
        for (toml, says) in [
            (
                "[delivery.guard]\nmax_complaint_rate = 3\n",
                "max_complaint_rate",
            ),
            (
                "[delivery.guard]\nmax_hard_bounce_rate = 0\n",
                "max_hard_bounce_rate",
            ),
            ("[delivery.guard]\nprovider_window = 1\n", "provider_window"),
            (
                "[delivery.guard]\nprovider_backoff = \"10m\"\nprovider_backoff_max = \"1m\"\n",
                "provider_backoff_max",
            ),
        ] {
            let e = Settings::from_toml_over_defaults(toml).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{toml}: {e:#}");
        }
    }
}
