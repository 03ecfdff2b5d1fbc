//! `[alerts]`: breaking news («عاجل») sent as it happens to the readers who asked for it,
//! within each reader's budget: how an article becomes an alert, who approves it, the undo
//! window, and the default daily allowance and quiet hours a reader may change.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveTime;
use serde::Deserialize;

/// Who starts an alert: an editor in the console (the default), or nobody (the CMS that
/// pushed the article already had an editor's approval).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    #[default]
    Editor,
    Auto,
}

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    pub approval: Approval,
    /// An article carrying one of these categories (its feed's or the API's) is urgent, as
    /// one pushed with `"urgent": true`.
    pub categories: Vec<String>,
    /// Between «أرسل» and the first message: «تراجع» cancels with nothing sent.
    #[serde(with = "humantime_serde")]
    pub undo: Duration,
    /// An alert held by a reader's quiet hours goes out when they end only if it is younger
    /// than this; older, the article waits for the reader's next digest.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Alerts a reader gets in one of their days at most, unless they chose (1 to 5).
    pub max_per_day: u32,
    /// No alert in these hours of the reader's own day ("23:00-07:00"); "" = none.
    pub quiet_hours: String,
    /// Alerts go out outside `delivery.window` (digests still wait for it).
    pub ignore_window: bool,
    /// `quiet_hours` parsed, as the settings are loaded.
    #[serde(skip)]
    pub quiet: Option<(NaiveTime, NaiveTime)>,
}

/// The most alerts a day a reader may choose (the preferences page offers 1 to this).
pub const MAX_PER_DAY: u32 = 5;

impl Alerts {
    pub(super) fn check(&mut self) -> anyhow::Result<()> {
        if !(1..=MAX_PER_DAY).contains(&self.max_per_day) {
            bail!(
                "alerts.max_per_day: {} must be between 1 and {MAX_PER_DAY}",
                self.max_per_day
            );
        }
        if self.undo > Duration::from_secs(3600) {
            bail!("alerts.undo: at most 1h (an alert an hour late is no longer breaking)");
        }
        if self.max_delay > Duration::from_secs(24 * 3600) {
            bail!("alerts.max_delay: at most 24h");
        }
        if self.categories.iter().any(|c| c.trim().is_empty()) {
            bail!("alerts.categories: a category is empty");
        }
        self.quiet = parse_quiet(&self.quiet_hours).context("alerts.quiet_hours")?;
        Ok(())
    }

    /// Whether an article with these categories is urgent by its category alone.
    pub fn urgent_category<'a>(&self, mut categories: impl Iterator<Item = &'a str>) -> bool {
        categories.any(|c| {
            self.categories
                .iter()
                .any(|u| u.trim().to_lowercase() == c.trim().to_lowercase())
        })
    }
}

/// `"23:00-07:00"`: start and end of the quiet hours (an end before the start wraps past
/// midnight); `""` = none.
pub fn parse_quiet(spec: &str) -> anyhow::Result<Option<(NaiveTime, NaiveTime)>> {
    crate::domain::window::parse_hours(spec, "the quiet hours", "23:00-07:00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_are_read_or_refused() {
        let (s, e) = parse_quiet("23:00-07:00").unwrap().unwrap();
        assert_eq!(
            (s.to_string(), e.to_string()),
            ("23:00:00".into(), "07:00:00".into())
        );
        assert!(parse_quiet("").unwrap().is_none());
        for bad in ["23:00", "25:00-07:00", "07:00-07:00", "late-early"] {
            assert!(parse_quiet(bad).is_err(), "{bad}");
        }
    }
}
