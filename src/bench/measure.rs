//! How a send is measured: CPU time and peak RSS of this process, a digest made and timed, and
//! the rate of its delivery.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::setup::bench_articles;
use crate::{
    app::App,
    store::{DigestKind, DigestOutcome},
};

/// (user, system) CPU time of this process so far.
pub(super) fn cpu_times() -> (Duration, Duration) {
    stat_cpu(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// (user, system) CPU time in a `/proc/PID/stat` line.
fn stat_cpu(stat: &str) -> (Duration, Duration) {
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat(5); here 0-based after the name: 11, 12.
    let hz = 100; // USER_HZ on Linux
    (
        Duration::from_millis(ticks(11) * 1000 / hz),
        Duration::from_millis(ticks(12) * 1000 / hz),
    )
}

/// CPU time (user + system) so far of the PostgreSQL backends serving database `name`, found
/// by their process titles (`postgres: USER DB HOST(PORT) STATE`): the database's share of
/// a send, which the sender's own CPU leaves out. `None` when there is none on this machine
/// (another server, or SQLite). A backend that exits in between takes its time with it; the
/// pool keeps its connections through a send.
pub(super) fn db_backends_cpu(name: &str) -> Option<Duration> {
    let needle = format!(" {name} ");
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let title = String::from_utf8_lossy(&cmdline);
        if !(title.starts_with("postgres: ") && title.contains(&needle)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let (user, sys) = stat_cpu(&stat);
        *total.get_or_insert(Duration::ZERO) += user + sys;
    }
    total
}

pub(super) fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Resets the peak-RSS mark so it covers only what follows.
pub(super) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Makes a digest of what is new, as a manual send does: (id, recipients, seconds taken).
pub(super) async fn make_digest(app: &App) -> anyhow::Result<(i64, i64, f64)> {
    let sched = app.settings.schedule(None)?.clone();
    let t = Instant::now();
    let DigestOutcome::Created { id, recipients } = app
        .create_digest(&sched, DigestKind::Manual, None, None)
        .await?
    else {
        bail!("no digest created");
    };
    Ok((id, recipients, t.elapsed().as_secs_f64()))
}

/// What one send cost.
pub(super) struct SendRun {
    pub(super) secs: f64,
    pub(super) user: Duration,
    pub(super) sys: Duration,
    /// Progress reads during the send, each in ms.
    pub(super) progress_ms: Vec<f64>,
    pub(super) peak_kb: u64,
}

/// Runs the dispatcher until digest `id` is delivered, timing it, its CPU and peak RSS, and
/// an editor watching its progress (read every 200 ms).
pub(super) async fn measure_send(app: &App, id: i64, recipients: i64) -> anyhow::Result<SendRun> {
    let metrics = app.metrics.clone();
    let before = metrics.sent.load(Ordering::Relaxed) as usize;
    reset_peak_rss();
    let (user0, sys0) = cpu_times();
    let t = Instant::now();
    let (tx, rx) = watch::channel(false);
    let worker = tokio::spawn(app.dispatcher.clone().run(rx));
    let mut progress_ms: Vec<f64> = Vec::new();
    let mut last_read = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if metrics.sent.load(Ordering::Relaxed) as usize >= before + recipients as usize {
            break;
        }
        if worker.is_finished() {
            bail!("dispatcher stopped early");
        }
        if last_read.elapsed() >= Duration::from_millis(200) {
            last_read = Instant::now();
            app.store.progress(id).await?;
            progress_ms.push(last_read.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let (user1, sys1) = cpu_times();
    let _ = tx.send(true);
    worker.await??;
    let peak_kb = status_kb("VmHWM:");
    let p = app.store.progress(id).await?.context("progress")?;
    anyhow::ensure!(
        p.sent == recipients && p.failed == 0,
        "not all delivered: {p:?}"
    );
    Ok(SendRun {
        secs,
        user: user1 - user0,
        sys: sys1 - sys0,
        progress_ms,
        peak_kb,
    })
}

/// Spreads the readers over `k` sections, adds ten articles to each, and sends a digest:
/// (k, seconds to make it, the send).
pub(super) async fn sectioned_send(
    app: &App,
    k: u32,
    n: usize,
) -> anyhow::Result<(u32, f64, SendRun)> {
    let slugs: Vec<String> = (1..=k).map(|i| format!("s{i}")).collect();
    app.store.spread_sections(&slugs).await?;
    for i in 0..k {
        for mut a in bench_articles() {
            a.guid = Some(format!("{}-s{}", a.guid.unwrap_or_default(), i + 1));
            a.url = format!("{}&s={}", a.url, i + 1);
            a.categories = vec![format!("s{}", i + 1)];
            app.add_article(a).await?;
        }
    }
    let (id, recipients, create) = make_digest(app).await?;
    anyhow::ensure!(
        recipients as usize == n,
        "{recipients} of {n} readers in the audience"
    );
    Ok((k, create, measure_send(app, id, recipients).await?))
}
