//! Who gets an alert, and when: each reader's quiet hours and daily allowance, in their own
//! time zone. Pure, so the console's estimate and the send itself decide alike.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::{
    config::Alerts,
    store::{AlertReader, AlertRow},
};

/// An alert's audience as planned.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct AlertPlan {
    /// (reader, when): at once (`None`) or when their quiet hours end.
    #[serde(skip)]
    pub rows: Vec<AlertRow>,
    /// Readers it reaches at once.
    pub now: usize,
    /// Readers in their quiet hours who get it when those end (within `alerts.max_delay`).
    pub later: usize,
    /// Readers who already had their day's alerts: the article reaches them in their digest.
    pub over_budget: usize,
    /// Readers whose quiet hours outlast `alerts.max_delay`: their digest brings it.
    pub held: usize,
}

/// A reader's zone: theirs when it is a zone, else the newsroom's.
pub fn reader_zone(timezone: Option<&str>, newsroom: Tz) -> Tz {
    timezone.and_then(|z| z.parse().ok()).unwrap_or(newsroom)
}

/// Plans an alert at `now` for `readers`, given `recent` (reader, when) alert messages.
pub fn plan(
    settings: &Alerts,
    newsroom: Tz,
    readers: &[AlertReader],
    recent: &[(i64, i64)],
    now: DateTime<Utc>,
) -> AlertPlan {
    let mut had: HashMap<i64, Vec<i64>> = HashMap::new();
    for (reader, at) in recent {
        had.entry(*reader).or_default().push(*at);
    }
    let max_delay = Duration::from_std(settings.max_delay).unwrap_or(Duration::hours(3));
    let mut p = AlertPlan::default();
    for r in readers {
        let tz = reader_zone(r.timezone.as_deref(), newsroom);
        let at = match quiet_end(settings, tz, now) {
            None => now,
            Some(end) if end - now <= max_delay => end,
            Some(_) => {
                p.held += 1;
                continue;
            }
        };
        let allowance = r
            .per_day
            .map(|n| n.clamp(1, crate::config::MAX_ALERTS_PER_DAY as i64))
            .unwrap_or(settings.max_per_day as i64);
        let day = local_day(at, tz);
        let used = had.get(&r.id).map_or(0, |v| {
            v.iter()
                .filter_map(|ms| Utc.timestamp_millis_opt(*ms).single())
                .filter(|t| local_day(*t, tz) == day)
                .count()
        }) as i64;
        if used >= allowance {
            p.over_budget += 1;
            continue;
        }
        if at == now {
            p.now += 1;
            p.rows.push((r.id, None));
        } else {
            p.later += 1;
            p.rows.push((r.id, Some(at.timestamp_millis())));
        }
    }
    p
}

fn local_day(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// When the quiet hours `now` falls in end, in `tz`; `None` outside them.
fn quiet_end(settings: &Alerts, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (start, end) = settings.quiet?;
    let local = now.with_timezone(&tz);
    let t = local.time();
    if !crate::domain::window::within(t, start, end) {
        return None;
    }
    let day = if t < end {
        local.date_naive()
    } else {
        local.date_naive() + Duration::days(1)
    };
    let wall = day.and_time(end);
    // A wall time a clock change skips: an hour later exists.
    let at = tz.from_local_datetime(&wall).earliest().or_else(|| {
        tz.from_local_datetime(&(wall + Duration::hours(1)))
            .earliest()
    })?;
    Some(at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Alerts {
        let mut a: Alerts = toml::from_str(
            r#"approval = "editor"
categories = []
undo = "60s"
max_delay = "3h"
max_per_day = 2
quiet_hours = "23:00-07:00"
ignore_window = true"#,
        )
        .unwrap();
        a.quiet = crate::config::parse_quiet(&a.quiet_hours).unwrap();
        a
    }

    fn reader(id: i64, tz: &str) -> AlertReader {
        AlertReader {
            id,
            timezone: Some(tz.into()),
            per_day: None,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_budget_and_freshness_in_each_readers_zone() {
        // 03:00 UTC: 06:00 in Baghdad (quiet, ends in 1 h), 04:00 in Casablanca (quiet, ends
        // in 3 h... within max_delay), 22:00 in Detroit (awake), 08:30 in Kolkata (awake),
        // 15:00 in Auckland (awake; two alerts today already).
        let now = at("2026-12-06T03:00:00Z");
        let readers = [
            reader(1, "Asia/Baghdad"),
            reader(2, "Africa/Casablanca"),
            reader(3, "America/Detroit"),
            reader(4, "Asia/Kolkata"),
            reader(5, "Pacific/Auckland"),
            reader(6, "Mars/Olympus"),
        ];
        let recent = [
            (5, at("2026-12-05T20:00:00Z").timestamp_millis()),
            (5, at("2026-12-06T01:00:00Z").timestamp_millis()),
            // Yesterday in Detroit's day: does not count today.
            (3, at("2026-12-05T04:00:00Z").timestamp_millis()),
            (3, at("2026-12-05T04:30:00Z").timestamp_millis()),
        ];
        let p = plan(
            &settings(),
            chrono_tz::Asia::Baghdad,
            &readers,
            &recent,
            now,
        );
        assert_eq!(p.over_budget, 1, "{p:?}");
        let when = |id| p.rows.iter().find(|(r, _)| *r == id).map(|(_, t)| *t);
        assert_eq!(
            when(1),
            Some(Some(at("2026-12-06T04:00:00Z").timestamp_millis()))
        );
        assert_eq!(
            when(2),
            Some(Some(at("2026-12-06T06:00:00Z").timestamp_millis()))
        );
        assert_eq!(when(3), Some(None));
        assert_eq!(when(4), Some(None));
        assert_eq!(when(5), None);
        // An unknown zone is the newsroom's (Baghdad).
        assert_eq!(when(6), when(1));
        assert_eq!((p.now, p.later, p.held), (2, 3, 0));
        // Past max_delay: at 00:30 in Baghdad the quiet hours end in 6.5 h.
        let p = plan(
            &settings(),
            chrono_tz::Asia::Baghdad,
            &readers[..1],
            &[],
            at("2026-12-05T21:30:00Z"),
        );
        assert_eq!((p.held, p.rows.len()), (1, 0));
    }
}
