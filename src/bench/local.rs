//! Local-hour delivery at size (`--local`): what waves cost the sender. The same readers,
//! spread over seven time zones, get a digest of a schedule that sends at once and one of a
//! schedule with `deliver = "local"`, both made by the scheduler's door for a slot a week
//! back: every zone's hour has passed, so every row of the local one is due at once and
//! what is measured is the claims and the ledger over waves, not hours of waiting. Each kind
//! is sent twice, mirrored (at once, local, local, at once), into Postfix's `smtp-sink`; the
//! figure is the sender's CPU per message of each and their ratio (the issue's bound: within
//! 10 %). On PostgreSQL on this machine the database's backends are counted too, apart.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;

use super::{
    args::BenchArgs,
    measure::{SendRun, db_backends_cpu, measure_send},
    setup::{
        BenchDb, ZONES, bench_articles, bench_toml, dkim_config, free_port, import_readers,
        spread_zones,
    },
    sink::PostfixSink,
};
use crate::{app::App, config::Settings, store::DigestOutcome};

/// Two schedules alike but for `deliver`, ten articles a digest.
const SCHEDULES: &str = r#"
[[schedules]]
name = "at_once"
cron = "0 7 * * *"
timezone = "Asia/Baghdad"
subject = "نشرة الحل نت — {{ date }}"
max_articles = 10
[[schedules]]
name = "local"
cron = "0 7 * * *"
timezone = "Asia/Baghdad"
subject = "نشرة الحل نت — {{ date }}"
max_articles = 10
deliver = "local"
"#;

/// The sends in order: each kind twice, mirrored, so a drift of the shared machine (or of
/// the ledger growing) weighs on both alike.
const ORDER: [&str; 4] = ["at_once", "local", "local", "at_once"];

/// One send of the four.
struct Run {
    schedule: &'static str,
    create_secs: f64,
    waves: usize,
    send: SendRun,
    /// CPU of the database's backends during the send, when they could be seen.
    db: Option<Duration>,
}

pub(super) async fn local(args: &BenchArgs, db: &BenchDb) -> anyhow::Result<()> {
    let n = args.subscribers;
    let port = free_port()?;
    let sink = PostfixSink::start(port)?;
    let toml = bench_toml(&db.url, port, args.sessions);
    let dkim_toml = if args.dkim {
        dkim_config(db.dir.path(), args.dkim_ed25519)?
    } else {
        String::new()
    };
    let settings = Settings::from_toml_layers(&[&toml, SCHEDULES, &dkim_toml])?;
    let app = App::new(settings).await?;
    let import_secs = import_readers(&app, n).await?;
    spread_zones(db, false).await?;
    let database = db.pg.as_ref().map(|(_, name)| name.as_str());

    let cron = app.settings.schedule(Some("local"))?.cron.clone();
    let week_ago = cron
        .slot_before(Utc::now() - chrono::Duration::days(7))
        .context("the schedule has no slot")?;
    let mut runs = Vec::new();
    for (round, schedule) in ORDER.into_iter().enumerate() {
        // Ten new articles for each digest, so every message is the same size.
        for mut a in bench_articles() {
            a.guid = Some(format!("{}-r{round}", a.guid.unwrap_or_default()));
            a.url = format!("{}&round={round}", a.url);
            app.add_article(a).await?;
        }
        let slot = (week_ago + chrono::Duration::days(round as i64)).timestamp_millis();
        let t = Instant::now();
        let DigestOutcome::Created { id, recipients } = app.fire_schedule(schedule, slot).await?
        else {
            bail!("no digest made for {schedule}");
        };
        let create_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            recipients as usize == n,
            "{recipients} of {n} readers in the audience"
        );
        let waves = app.store.waves(id).await?;
        let now = crate::store::now_ms();
        anyhow::ensure!(
            if schedule == "local" {
                waves.len() == ZONES.len() && waves.iter().all(|w| w.at <= now)
            } else {
                waves.is_empty()
            },
            "{schedule}: not the waves expected: {waves:?}"
        );
        let db0 = database.and_then(db_backends_cpu);
        let send = measure_send(&app, id, recipients).await?;
        let db1 = database.and_then(db_backends_cpu);
        runs.push(Run {
            schedule,
            create_secs,
            waves: waves.len(),
            send,
            db: db0.zip(db1).map(|(a, b)| b.saturating_sub(a)),
        });
    }
    drop(sink);

    let per_msg = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "nashra bench (local hour): {n} subscribers over {} zones on {}, {} sessions, smtp-sink on 127.0.0.1:{port}",
        ZONES.len(),
        app.store.engine(),
        args.sessions
    );
    println!(
        "  import            {n} subscribers in {import_secs:.2} s ({:.0}/s)",
        n as f64 / import_secs
    );
    for (i, r) in runs.iter().enumerate() {
        let how = if r.waves > 0 {
            format!("local, {} waves all passed", r.waves)
        } else {
            "at once".into()
        };
        let db =
            r.db.map(|d| format!("; database {:.3} ms", per_msg(d)))
                .unwrap_or_default();
        println!(
            "  send {}            {how}: made in {:.3} s, sent in {:.2} s  {:.0} msg/s; CPU per message {:.3} ms{db}; peak RSS {:.1} MB",
            i + 1,
            r.create_secs,
            r.send.secs,
            n as f64 / r.send.secs,
            per_msg(r.send.user + r.send.sys),
            r.send.peak_kb as f64 / 1024.0
        );
    }
    // Means of the two sends of each kind: the sender's CPU, and the database's beside it.
    let mean = |schedule: &str, of: &dyn Fn(&Run) -> Option<Duration>| {
        let v: Option<Vec<Duration>> = runs
            .iter()
            .filter(|r| r.schedule == schedule)
            .map(of)
            .collect();
        v.map(|v| per_msg(v.iter().sum::<Duration>()) / v.len().max(1) as f64)
    };
    let sender = |r: &Run| Some(r.send.user + r.send.sys);
    let (Some(at_once), Some(local)) = (mean("at_once", &sender), mean("local", &sender)) else {
        bail!("no sends measured");
    };
    println!(
        "  at once           CPU per message {at_once:.3} ms (the sender's CPU during the send / N, mean of 2)"
    );
    println!("  local hour        CPU per message {local:.3} ms (mean of 2)");
    println!(
        "  local vs at once  {:.2} × (target ≤ 1.10: {})",
        local / at_once,
        if local <= at_once * 1.10 {
            "met"
        } else {
            "missed"
        }
    );
    if let (Some(a), Some(l)) = (mean("at_once", &|r| r.db), mean("local", &|r| r.db)) {
        println!(
            "  with the database {:.3} ms against {:.3} ms a message, sender and backends: {:.2} ×",
            local + l,
            at_once + a,
            (local + l) / (at_once + a)
        );
    }
    Ok(())
}
