//! What a reader chooses to receive: which schedules («يومية», «أسبوعية») and which
//! sections. Stored as sorted names; "every one" is stored as nothing, so a schedule or a
//! section added later reaches the readers who never narrowed their choice. And the
//! reader's clock: their time zone and breaking-news alerts, where "the newsroom's" and
//! "the configured default" are stored as nothing for the same reason.

use super::App;
use crate::{
    domain::ReaderZone,
    store::{Choice, ReaderClock, SubscriberStatus},
};

impl App {
    /// The choice a form made: names not in the configuration are dropped; none left, or
    /// every one picked, means everything.
    pub fn choice_from(&self, schedules: Option<&[String]>, sections: Option<&[String]>) -> Choice {
        let s = &self.settings;
        Choice {
            schedules: self.canonical_schedules(schedules),
            sections: canonical(sections, s.sections.iter().map(|x| x.slug.as_str())),
            by_schedule: vec![],
        }
    }

    /// The choice the preferences page made: each ticked schedule with the sections ticked
    /// for it. The same sections everywhere are stored once; otherwise each schedule keeps
    /// its own (and a schedule added later brings every section).
    pub fn choice_per_schedule(&self, picked: &[(String, Vec<String>)]) -> Choice {
        let s = &self.settings;
        let names: Vec<String> = picked.iter().map(|(n, _)| n.clone()).collect();
        let mut own: Vec<(String, Option<String>)> = s
            .schedules
            .iter()
            .filter_map(|x| picked.iter().find(|(n, _)| *n == x.name))
            .map(|(n, secs)| {
                let slugs = s.sections.iter().map(|x| x.slug.as_str());
                (n.clone(), canonical(Some(secs), slugs))
            })
            .collect();
        own.sort();
        let first = own.first().map(|(_, c)| c.clone()).unwrap_or_default();
        let (sections, by_schedule) = if own.iter().all(|(_, c)| *c == first) {
            (first, vec![])
        } else {
            let by = own
                .into_iter()
                .filter_map(|(n, c)| c.map(|c| (n, c)))
                .collect();
            (None, by)
        };
        Choice {
            schedules: self.canonical_schedules(Some(&names)),
            sections,
            by_schedule,
        }
    }

    /// A reader's schedules as stored: nothing for the schedules a reader who never chose
    /// gets (those with `default = true`), so one added later reaches them too.
    fn canonical_schedules(&self, picked: Option<&[String]>) -> Option<String> {
        let picked = picked?;
        let all = &self.settings.schedules;
        let kept: Vec<&str> = all
            .iter()
            .filter(|x| picked.contains(&x.name))
            .map(|x| x.name.as_str())
            .collect();
        let defaults: Vec<&str> = all
            .iter()
            .filter(|x| x.for_new_readers)
            .map(|x| x.name.as_str())
            .collect();
        if kept.is_empty() || kept == defaults {
            return None;
        }
        let mut kept = kept;
        kept.sort_unstable();
        Some(kept.join(","))
    }

    /// Whether a reader with `choice` gets the schedule `name`: the ones they chose, or,
    /// if they never chose, the ones new readers get.
    pub fn takes_schedule(&self, choice: &Choice, name: &str) -> bool {
        let for_new_readers = self
            .settings
            .schedules
            .iter()
            .any(|x| x.name == name && x.for_new_readers);
        choice.takes(name, for_new_readers)
    }

    /// Whether a stored list (a reader's `schedules` or `sections`) includes `name`; no list
    /// includes everything.
    pub fn chosen(list: &Option<String>, name: &str) -> bool {
        list.as_deref()
            .is_none_or(|l| l.split(',').any(|x| x == name))
    }

    /// A reader's status and choice, for the preferences page (whose signed link is checked
    /// by its handler) and the console's reader page (whose role is checked by its own).
    pub(crate) async fn reader_choice(
        &self,
        reader: i64,
    ) -> anyhow::Result<Option<(SubscriberStatus, Choice)>> {
        self.store.reader_choice(reader).await
    }

    /// A reader's time zone and alerts, for the preferences page.
    pub(crate) async fn reader_clock(&self, reader: i64) -> anyhow::Result<Option<ReaderClock>> {
        self.store.reader_clock(reader).await
    }

    /// The zone a reader's clock keeps: theirs, else the newsroom's.
    pub fn zone_of(&self, clock: &ReaderClock) -> chrono_tz::Tz {
        clock
            .zone
            .map_or_else(|| self.settings.newsroom_tz(), |z| z.tz())
    }

    /// The most alerts a day a reader's clock allows: theirs, else the configuration's.
    pub fn alerts_per_day_of(&self, clock: &ReaderClock) -> u32 {
        clock
            .alerts_per_day
            .unwrap_or(self.settings.alerts.max_per_day)
    }

    /// The clock the preferences page asked for (`zone` `None`: the newsroom's), over the
    /// reader's `current` one. A value that comes to what the reader has now is kept as
    /// stored: a reader who saves their sections without touching the zone or the count
    /// keeps following the newsroom's zone and the configured default when these change.
    pub fn clock_from(
        &self,
        current: &ReaderClock,
        zone: Option<ReaderZone>,
        alerts: bool,
        per_day: u32,
    ) -> ReaderClock {
        let asked = ReaderClock {
            zone,
            ..ReaderClock::default()
        };
        ReaderClock {
            zone: if self.zone_of(&asked) == self.zone_of(current) {
                current.zone
            } else {
                zone
            },
            alerts,
            alerts_per_day: if per_day == self.alerts_per_day_of(current) {
                current.alerts_per_day
            } else {
                Some(per_day)
            },
        }
    }

    /// Saves a reader's choice and clock together: the next digest made follows the choice
    /// (one already made keeps the audience it was made with); a new zone moves the
    /// reader's waiting local-hour deliveries with it. False when the reader is not
    /// subscribed. For the preferences handler that has checked the reader's signed link.
    pub(crate) async fn save_preferences(
        &self,
        reader: i64,
        choice: &Choice,
        clock: &ReaderClock,
    ) -> anyhow::Result<bool> {
        let Some(before) = self.store.set_preferences(reader, choice, clock).await? else {
            return Ok(false);
        };
        tracing::info!(subscriber = reader, "preferences saved");
        if self.zone_of(&before) != self.zone_of(clock) {
            self.reader_zone_changed(reader).await?;
        }
        Ok(true)
    }

    /// Moves the reader's rows still waiting for a local-hour wave to the slot's hour in
    /// their new zone ([`App::move_waves`]).
    pub(crate) async fn reader_zone_changed(&self, subscriber: i64) -> anyhow::Result<()> {
        let Some(clock) = self.store.reader_clock(subscriber).await? else {
            return Ok(());
        };
        let moved = self
            .move_waves(subscriber, clock.zone.as_ref().map(|z| z.name()))
            .await?;
        if moved > 0 {
            tracing::info!(
                reader = subscriber,
                moved,
                "waiting rows moved to the reader's new zone"
            );
        }
        Ok(())
    }
}

fn canonical<'a>(
    picked: Option<&[String]>,
    known: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let picked = picked?;
    let known: Vec<&str> = known.collect();
    let mut kept: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| picked.iter().any(|p| p == k))
        .collect();
    if kept.is_empty() || kept.len() == known.len() {
        return None;
    }
    kept.sort_unstable();
    Some(kept.join(","))
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn choices_are_canonical() {
        let known = ["politics", "culture", "sport"];
        let pick = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(canonical(None, known.into_iter()), None);
        assert_eq!(
            canonical(
                Some(&pick(&["sport", "culture", "sport", "nope"])),
                known.into_iter()
            ),
            Some("culture,sport".into())
        );
        assert_eq!(
            canonical(
                Some(&pick(&["sport", "culture", "politics"])),
                known.into_iter()
            ),
            None
        );
        assert_eq!(canonical(Some(&pick(&["nope"])), known.into_iter()), None);
    }
}
