//! The loop that turns schedules' slots into digests (the crontab maths is
//! `domain::cron`).
//!
//! A slot fires once, however many processes run this loop: the store refuses a second
//! digest for the same (schedule, slot), under the schedule's lock. A slot missed while the
//! process was down is caught up once at start, within `delivery.catch_up_grace`.

use std::{sync::Arc, time::Duration};

use crate::{
    app::App,
    domain::{
        CronSchedule,
        cron::{Decision, decide},
    },
    shutdown::Shutdown,
};
use chrono::{DateTime, TimeZone, Utc};

/// Fires schedules until `shutdown`.
pub async fn run(app: Arc<App>, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let parsed: Vec<(String, CronSchedule)> = app
        .settings
        .schedules
        .iter()
        .map(|s| (s.name.clone(), s.cron.clone()))
        .collect();
    loop {
        let now = Utc::now();
        for (name, sched) in &parsed {
            if let Err(e) = tick(&app, name, sched, now).await {
                tracing::error!(schedule = %name, error = %format!("{e:#}"), "schedule tick failed");
            }
        }
        // Sleep until the next slot of any schedule, but re-check at least every 30 s.
        let next = parsed.iter().filter_map(|(_, s)| s.next_after(now)).min();
        let wait = next
            .and_then(|n| (n - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(200), Duration::from_secs(30));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.recv() => return Ok(()),
        }
    }
}

async fn tick(
    app: &App,
    name: &str,
    sched: &CronSchedule,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let last = app.store.schedule_last_slot(name).await?;
    match decide(sched, last, now, app.settings.delivery.catch_up_grace) {
        Decision::Idle => {}
        Decision::Start(slot) => app.store.mark_slot(name, slot).await?,
        Decision::Skip(slot) => {
            tracing::warn!(schedule = name, slot = %Utc.timestamp_millis_opt(slot).single().unwrap_or_default(), "missed slot is older than the grace period; skipped");
            app.store.mark_slot(name, slot).await?;
        }
        Decision::Fire(slot) => {
            let out = app.fire_schedule(name, slot).await?;
            tracing::info!(schedule = name, outcome = ?out, "schedule fired");
        }
    }
    Ok(())
}
