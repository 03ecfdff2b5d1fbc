//! The loop that turns schedules' slots into digests (the crontab maths is
//! `domain::cron`).
//!
//! A slot fires once, however many processes run this loop: the store refuses a second
//! digest for the same (schedule, slot), under the schedule's lock. A slot missed while the
//! process was down is caught up once at start, within `delivery.catch_up_grace`.
//!
//! A local-hour schedule (`deliver = "local"`) fires in the zone furthest ahead among its
//! readers' ([`App::lead_zone`], read at most every [`ZONES_EVERY`]); each reader's row
//! waits for the slot in their own. The loop also starts approved alerts when their undo
//! window ends, and sends planned for later when their time comes, polling at least every
//! [`ALERTS_EVERY`] (another process may approve or plan one).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    app::App,
    config::Deliver,
    domain::{
        CronSchedule,
        cron::{Decision, decide},
    },
    shutdown::Shutdown,
};
use chrono::{DateTime, TimeZone, Utc};

/// How often a local-hour schedule's lead zone is read again.
const ZONES_EVERY: Duration = Duration::from_secs(60);
/// The longest the loop sleeps: an alert approved in another process starts within this of
/// its undo window's end.
const ALERTS_EVERY: Duration = Duration::from_secs(2);

/// Fires schedules and starts alerts until `shutdown`.
pub async fn run(app: Arc<App>, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let mut parsed: Vec<(String, CronSchedule, bool)> = app
        .settings
        .schedules
        .iter()
        .map(|s| (s.name.clone(), s.cron.clone(), s.deliver == Deliver::Local))
        .collect();
    let mut zones_read: Option<Instant> = None;
    loop {
        if parsed.iter().any(|p| p.2) && zones_read.is_none_or(|t| t.elapsed() >= ZONES_EVERY) {
            for (name, sched, local) in &mut parsed {
                if !*local {
                    continue;
                }
                let own = app.settings.schedule(Some(name))?.cron.timezone();
                match app.lead_zone(own).await {
                    Ok(lead) => *sched = sched.in_zone(lead),
                    Err(e) => {
                        tracing::warn!(schedule = %name, error = %format!("{e:#}"), "cannot read readers' zones; keeping the last")
                    }
                }
            }
            zones_read = Some(Instant::now());
        }
        let now = Utc::now();
        for (name, sched, _) in &parsed {
            if let Err(e) = tick(&app, name, sched, now).await {
                tracing::error!(schedule = %name, error = %format!("{e:#}"), "schedule tick failed");
            }
        }
        if let Err(e) = app.start_due_alerts().await {
            tracing::error!(error = %format!("{e:#}"), "cannot start alerts");
        }
        // Subject tests whose wait is over get their winner (within the loop's sleep).
        if let Err(e) = app.decide_subject_tests().await {
            tracing::error!(error = %format!("{e:#}"), "cannot decide subject tests");
        }
        if let Err(e) = app.start_due_plans().await {
            tracing::error!(error = %format!("{e:#}"), "cannot start sends planned for later");
        }
        // Sleep until the next slot of any schedule, the next alert or the next planned send,
        // re-checking at least every ALERTS_EVERY.
        let next_alert = app
            .next_alert_at()
            .await
            .ok()
            .flatten()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let next_plan = app
            .next_plan_at()
            .await
            .ok()
            .flatten()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let next = parsed
            .iter()
            .filter_map(|(_, s, _)| s.next_after(now))
            .chain(next_alert)
            .chain(next_plan)
            .min();
        let wait = next
            .and_then(|n| (n - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_millis(200))
            .clamp(Duration::from_millis(200), ALERTS_EVERY);
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
