//! Local-hour sends seen from the application: the zone a local-hour schedule fires in, and
//! a reader's waiting rows moved to their new zone's hour.

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::{App, alert_plan::reader_zone};
use crate::domain::CronSchedule;

impl App {
    /// Where `cron`'s slots come first among the zones readers chose and `own` (the
    /// schedule's): the zone furthest ahead of UTC now. A local-hour schedule fires in it, so
    /// its digest is made before any reader's local slot.
    pub async fn lead_zone(&self, own: Tz) -> anyhow::Result<Tz> {
        let now = Utc::now().naive_utc();
        let offset = |tz: &Tz| {
            use chrono::Offset;
            tz.offset_from_utc_datetime(&now).fix().local_minus_utc()
        };
        let zones = self.store.reader_zones().await?;
        Ok(zones
            .iter()
            .filter_map(|z| z.parse::<Tz>().ok())
            .chain([own, self.settings.newsroom_tz()])
            .max_by_key(offset)
            .unwrap_or(own))
    }

    /// After a reader changes zone (`None`: the newsroom's): their rows still waiting for a
    /// local-hour wave move to the slot's hour in the new zone (at once if it has passed).
    pub(crate) async fn move_waves(
        &self,
        subscriber: i64,
        zone: Option<&str>,
    ) -> anyhow::Result<usize> {
        let newsroom = self.settings.newsroom_tz();
        let tz = reader_zone(zone, newsroom);
        let mut moved = 0;
        for (row, schedule, slot) in self.store.waiting_waves(subscriber).await? {
            let Ok(s) = self.settings.schedule(Some(&schedule)) else {
                continue;
            };
            let Some(slot) = Utc.timestamp_millis_opt(slot).single() else {
                continue;
            };
            let at = CronSchedule::in_zone(&s.cron, tz)
                .slot_at_or_after(slot)
                .unwrap_or(slot);
            if self
                .store
                .move_to_wave(row, tz.name(), at.timestamp_millis())
                .await?
            {
                moved += 1;
            }
        }
        if moved > 0 {
            self.dispatcher.wake.notify_one();
        }
        Ok(moved)
    }
}

/// A wave of a local-hour send as the send's page and the API show it.
#[derive(Debug, serde::Serialize)]
pub struct WaveView {
    /// The IANA zone.
    pub timezone: String,
    /// The slot's hour there («07:00»).
    pub local_time: String,
    /// The instant (RFC 3339, UTC).
    pub at: String,
    pub readers: i64,
    pub sent: i64,
}

impl App {
    /// A local-hour send's waves, earliest first; empty for any other send.
    pub async fn send_waves(&self, digest: i64) -> anyhow::Result<Vec<WaveView>> {
        let newsroom = self.settings.newsroom_tz();
        Ok(self
            .store
            .waves(digest)
            .await?
            .into_iter()
            .filter_map(|w| {
                let at = Utc.timestamp_millis_opt(w.at).single()?;
                let tz = reader_zone(Some(&w.zone), newsroom);
                Some(WaveView {
                    local_time: at.with_timezone(&tz).format("%H:%M").to_string(),
                    at: at.to_rfc3339(),
                    timezone: w.zone,
                    readers: w.readers,
                    sent: w.sent,
                })
            })
            .collect())
    }
}
