//! Schedules as admins write them: ordinary five-field crontab expressions (Monday = 1,
//! Sunday = 0 or 7) read in an IANA time zone, and the decision of what a schedule does at a
//! moment — pure, so it is tested without clocks.
//!
//! A slot missed while the process was down is caught up once — only the latest one, and only
//! within a grace period; an older one is skipped, because a morning digest that arrives in
//! the evening is news no more.

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
    /// As written, for messages.
    expr: String,
}

impl CronSchedule {
    pub fn parse(expr: &str, timezone: &str) -> anyhow::Result<CronSchedule> {
        let fields = expr.split_whitespace().count();
        anyhow::ensure!(
            fields == 5,
            "cron: `{expr}` has {fields} fields; write the five crontab fields (minute hour day-of-month month day-of-week)"
        );
        let cron = Cron::from_str(expr)
            .map_err(|e| anyhow::anyhow!("cron: `{expr}` does not parse: {e}"))?;
        let tz: Tz = timezone.parse().map_err(|_| {
            anyhow::anyhow!("timezone: `{timezone}` is not an IANA time zone such as Asia/Baghdad")
        })?;
        // An expression that never fires (30 February) is a typo, not a schedule.
        let probe = Utc::now().with_timezone(&tz);
        cron.find_next_occurrence(&probe, false)
            .map_err(|e| anyhow::anyhow!("cron: `{expr}` never fires: {e}"))?;
        Ok(CronSchedule {
            cron,
            tz,
            expr: expr.to_owned(),
        })
    }

    /// The time zone its hours are read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The latest slot at or before `t`.
    pub fn slot_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&whole_second(t).with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The slot strictly before `t`.
    pub fn slot_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&whole_second(t).with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The same expression read in another time zone (a local-hour schedule's readers').
    pub fn in_zone(&self, tz: Tz) -> CronSchedule {
        CronSchedule {
            cron: self.cron.clone(),
            tz,
            expr: self.expr.clone(),
        }
    }

    /// The first slot at or after `t`.
    pub fn slot_at_or_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&whole_second(t).with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&whole_second(t).with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

/// croner carries the input's fraction of a second into the slot it returns; a slot must be
/// the same instant whenever it is computed, or a slot would look new on every tick.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
}

/// What the scheduler decided for one schedule at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing due.
    Idle,
    /// First sight of this schedule: remember the current slot, fire from the next one.
    Start(i64),
    /// Fire the digest of this slot.
    Fire(i64),
    /// This slot was missed by more than the grace period: record it and move on.
    Skip(i64),
}

/// Pure decision, so it can be tested without clocks.
pub fn decide(
    sched: &CronSchedule,
    last_slot: Option<i64>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Decision {
    let Some(slot) = sched.slot_at_or_before(now) else {
        return Decision::Idle;
    };
    let slot_ms = slot.timestamp_millis();
    match last_slot {
        None => Decision::Start(slot_ms),
        Some(last) if slot_ms > last => {
            if (now - slot).to_std().unwrap_or_default() > grace {
                Decision::Skip(slot_ms)
            } else {
                Decision::Fire(slot_ms)
            }
        }
        Some(_) => Decision::Idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn monday_seven_in_baghdad_is_four_utc() {
        let s = CronSchedule::parse("0 7 * * 1", "Asia/Baghdad").unwrap();
        // Sunday 29 November 2026, noon UTC → next is Monday 30 November 07:00 +03:00.
        let next = s.next_after(utc("2026-11-29T12:00:00Z")).unwrap();
        assert_eq!(next, utc("2026-11-30T04:00:00Z"));
        assert_eq!(
            next.with_timezone(&chrono_tz::Asia::Baghdad)
                .format("%A %H:%M")
                .to_string(),
            "Monday 07:00"
        );
    }

    #[test]
    fn sunday_is_zero_or_seven() {
        let a = CronSchedule::parse("30 6 * * 0", "UTC").unwrap();
        let b = CronSchedule::parse("30 6 * * 7", "UTC").unwrap();
        let t = utc("2026-11-25T00:00:00Z");
        assert_eq!(a.next_after(t), b.next_after(t));
        assert_eq!(a.next_after(t).unwrap(), utc("2026-11-29T06:30:00Z"));
    }

    #[test]
    fn daylight_saving_zone() {
        // New York: 07:00 is 12:00 UTC in winter and 11:00 UTC in summer.
        let s = CronSchedule::parse("0 7 * * *", "America/New_York").unwrap();
        assert_eq!(
            s.next_after(utc("2026-01-10T00:00:00Z")).unwrap(),
            utc("2026-01-10T12:00:00Z")
        );
        assert_eq!(
            s.next_after(utc("2026-07-10T00:00:00Z")).unwrap(),
            utc("2026-07-10T11:00:00Z")
        );
    }

    #[test]
    fn bad_expressions_are_refused() {
        assert!(CronSchedule::parse("0 7 * *", "UTC").is_err());
        assert!(CronSchedule::parse("0 25 * * *", "UTC").is_err());
        assert!(CronSchedule::parse("0 7 * * 1", "Nowhere/City").is_err());
        assert!(CronSchedule::parse("0 0 7 * * 1", "UTC").is_err());
    }

    #[test]
    fn a_slot_is_the_same_instant_on_every_tick() {
        let s = CronSchedule::parse("0 7 * * *", "Asia/Baghdad").unwrap();
        let a = s
            .slot_at_or_before(utc("2026-11-29T06:00:00.123Z"))
            .unwrap();
        let b = s
            .slot_at_or_before(utc("2026-11-29T06:00:30.987Z"))
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a, utc("2026-11-29T04:00:00Z"));
        let grace = Duration::from_secs(6 * 3600);
        let slot = a.timestamp_millis();
        assert_eq!(
            decide(&s, Some(slot), utc("2026-11-29T06:00:30.987Z"), grace),
            Decision::Idle
        );
    }

    #[test]
    fn catch_up_once_within_grace_else_skip() {
        let s = CronSchedule::parse("0 7 * * *", "Asia/Baghdad").unwrap();
        let grace = Duration::from_secs(6 * 3600);
        let slot = utc("2026-11-29T04:00:00Z").timestamp_millis();
        let day_before = utc("2026-11-28T04:00:00Z").timestamp_millis();
        // Down for three days, back two hours after today's slot: fire today's once.
        let three_days_ago = utc("2026-11-26T04:00:00Z").timestamp_millis();
        assert_eq!(
            decide(&s, Some(three_days_ago), utc("2026-11-29T06:00:00Z"), grace),
            Decision::Fire(slot)
        );
        assert_eq!(
            decide(&s, Some(slot), utc("2026-11-29T06:00:01Z"), grace),
            Decision::Idle
        );
        // Back twelve hours late: skip.
        assert_eq!(
            decide(&s, Some(day_before), utc("2026-11-29T16:00:00Z"), grace),
            Decision::Skip(slot)
        );
        // Never seen: start counting, no catch-up.
        assert_eq!(
            decide(&s, None, utc("2026-11-29T05:00:00Z"), grace),
            Decision::Start(slot)
        );
    }
}
