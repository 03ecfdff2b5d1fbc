//! The optional sending window: hours of the day, in a time zone, when messages may go out.
//! Outside it a send waits (nothing is claimed) and resumes by itself when the window opens.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy)]
pub struct SendWindow {
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
}

impl SendWindow {
    /// `"07:00-22:00"` in `tz`; an end before the start wraps past midnight. Empty = always.
    pub fn parse(spec: &str, tz: &str) -> anyhow::Result<Option<SendWindow>> {
        let Some((start, end)) = parse_hours(spec, "the window", "07:00-22:00")? else {
            return Ok(None);
        };
        let tz: Tz = tz
            .parse()
            .map_err(|_| anyhow::anyhow!("`{tz}` is not an IANA time zone"))?;
        Ok(Some(SendWindow { start, end, tz }))
    }

    /// `None` when sending is allowed at `now`, else how long until the window opens.
    pub fn wait(&self, now: DateTime<Utc>) -> Option<Duration> {
        let local = now.with_timezone(&self.tz).time();
        let inside = within(local, self.start, self.end);
        if inside {
            return None;
        }
        let secs = (self.start - local).num_seconds().rem_euclid(24 * 3600);
        Some(Duration::from_secs(secs.max(1) as u64))
    }
}

/// Hours of the day written `"HH:MM-HH:MM"` (an end before the start wraps past midnight);
/// `""` = none. `what` and `example` name them in the error («the window», `07:00-22:00`).
/// The sending window and readers' quiet hours are read alike.
pub fn parse_hours(
    spec: &str,
    what: &str,
    example: &str,
) -> anyhow::Result<Option<(NaiveTime, NaiveTime)>> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(None);
    }
    let (a, b) = spec
        .split_once('-')
        .with_context(|| format!("write {what} as HH:MM-HH:MM, e.g. {example}"))?;
    let t = |s: &str| {
        NaiveTime::parse_from_str(s.trim(), "%H:%M").with_context(|| format!("`{s}` is not HH:MM"))
    };
    let (start, end) = (t(a)?, t(b)?);
    anyhow::ensure!(start != end, "the start and end of {what} are the same");
    Ok(Some((start, end)))
}

/// Whether `t` falls in the hours from `start` to `end` (wrapping past midnight).
pub fn within(t: NaiveTime, start: NaiveTime, end: NaiveTime) -> bool {
    if start < end {
        t >= start && t < end
    } else {
        t >= start || t < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn inside_and_outside_in_the_windows_zone() {
        let w = SendWindow::parse("07:00-22:00", "Asia/Baghdad")
            .unwrap()
            .unwrap();
        assert_eq!(w.wait(utc("2026-11-29T05:00:00Z")), None); // 08:00 in Baghdad
        assert_eq!(
            w.wait(utc("2026-11-29T03:30:00Z")),
            Some(Duration::from_secs(30 * 60))
        ); // 06:30
        assert_eq!(
            w.wait(utc("2026-11-29T19:00:00Z")),
            Some(Duration::from_secs(9 * 3600))
        ); // 22:00
    }

    #[test]
    fn wraps_past_midnight() {
        let w = SendWindow::parse("22:00-02:00", "UTC").unwrap().unwrap();
        assert_eq!(w.wait(utc("2026-11-29T23:00:00Z")), None);
        assert_eq!(w.wait(utc("2026-11-29T01:00:00Z")), None);
        assert_eq!(
            w.wait(utc("2026-11-29T03:00:00Z")),
            Some(Duration::from_secs(19 * 3600))
        );
    }

    #[test]
    fn bad_windows_are_refused() {
        assert!(SendWindow::parse("", "UTC").unwrap().is_none());
        for bad in ["7-22", "07:00", "25:00-01:00", "07:00-07:00"] {
            assert!(SendWindow::parse(bad, "UTC").is_err(), "{bad}");
        }
        assert!(SendWindow::parse("07:00-22:00", "Nowhere").is_err());
    }
}
