//! `[[schedules]]`: when digests go out, each a crontab in its time zone with its subject,
//! parsed as it is read; and what the list of them must satisfy.

use std::collections::HashSet;

use anyhow::bail;
use serde::Deserialize;

use crate::domain::{CronSchedule, SubjectTemplate};

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
    /// `deliver`: everyone at the slot, or each reader at the slot's hour in their own zone.
    pub deliver: Deliver,
}

/// `deliver = "at_once" | "local"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deliver {
    /// Every reader at the slot, in the schedule's time zone.
    #[default]
    AtOnce,
    /// Each reader when the slot's hour comes in their own time zone: the digest is made at
    /// the earliest of them and each ledger row waits for its reader's.
    Local,
}

/// A schedule as written. An array's entries cannot take defaults from
/// `config/default.toml` (a file's array replaces it), so the optional keys' defaults are
/// here; the TOML's `[[schedules]]` documents them.
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
    #[serde(default)]
    deliver: Deliver,
}

fn default_max_articles() -> u32 {
    20
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
        if name.is_empty() || name.len() > 60 || name.contains(',') || name.starts_with('!') {
            return Err(format!(
                "({name}) name: must be 1 to 60 characters without a comma, not starting with `!`"
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
            deliver: r.deliver,
        })
    }
}

/// Names used once, and at least one schedule a new reader gets.
pub(super) fn check(schedules: &[Schedule]) -> anyhow::Result<()> {
    let mut names = HashSet::new();
    for (i, s) in schedules.iter().enumerate() {
        // Ignoring case: a reader's list of schedules is matched with LIKE, which SQLite
        // compares without case and PostgreSQL with.
        if !names.insert(s.name.to_ascii_lowercase()) {
            bail!("schedules[{i}].name: `{}` is used twice", s.name);
        }
    }
    if !schedules.is_empty() && !schedules.iter().any(|s| s.for_new_readers) {
        bail!(
            "schedules: every schedule has `default = false`, so a new reader would get nothing; give one `default = true`"
        );
    }
    Ok(())
}
