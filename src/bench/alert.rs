//! Breaking news at size (`--alert`): N readers who take alerts, quiet hours off, approval
//! `auto`, and one urgent article pushed as `POST /api/articles` pushes it. Timed from the
//! push to the first message the relay accepts (the bound: 10 s at 100,000 readers)
//! and to the last. The relay is the bench's own sink, which notes when each message arrives
//! (Postfix's `smtp-sink` cannot say when); it answers at once and runs in this process, so
//! the rate is a floor and no CPU figure is given here.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::{
    args::BenchArgs,
    setup::{BenchDb, bench_articles, bench_toml, dkim_config, import_readers, spread_zones},
    sink::DelaySink,
};
use crate::{
    app::{Actor, App},
    config::Settings,
    store::NewArticle,
};

/// Every reader gets it now: no quiet hours, no editor to wait for, no undo window.
const ALERTS_TOML: &str = "[alerts]\napproval = \"auto\"\nundo = \"0s\"\nquiet_hours = \"\"\n";

/// How long the send may take before the bench gives up.
const GIVE_UP: Duration = Duration::from_secs(3600);

pub(super) async fn alert(args: &BenchArgs, db: &BenchDb) -> anyhow::Result<()> {
    let n = args.subscribers;
    let sink = DelaySink::start(Duration::ZERO).await?;
    let toml = bench_toml(&db.url, sink.addr.port(), args.sessions);
    let dkim_toml = if args.dkim {
        dkim_config(db.dir.path(), args.dkim_ed25519)?
    } else {
        String::new()
    };
    let settings = Settings::from_toml_layers(&[&toml, ALERTS_TOML, &dkim_toml])?;
    let app = App::new(settings).await?;
    let import_secs = import_readers(&app, n).await?;
    let spread_secs = spread_zones(db, true).await?;

    // What starting the alert reads and plans, timed apart beforehand (the start itself
    // runs inside the push): the readers who take alerts, then the same read with their
    // recent alerts and the plan of who gets it when.
    let t = Instant::now();
    let readers = app.store.alert_readers().await?.len();
    let read_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let reach = app.alert_reach().await?;
    let reach_ms = t.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        readers == n && reach.now == n,
        "{readers} of {n} readers take alerts, {} would get it now",
        reach.now
    );

    // The dispatcher waits, idle, as in a running server.
    let (tx, rx) = watch::channel(false);
    let worker = tokio::spawn(app.dispatcher.clone().run(rx));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pushed_at = Instant::now();
    let article = App::normalize_article(urgent_article()).await?;
    app.push_article(&Actor::cli(), article).await?;
    let push_secs = pushed_at.elapsed().as_secs_f64();
    let alert = app
        .store
        .alerts(1)
        .await?
        .into_iter()
        .next()
        .context("the push made no alert")?;
    let digest = alert
        .digest_id
        .with_context(|| format!("the alert did not start ({:?}); see the log", alert.status))?;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if sink.received.load(Ordering::Acquire) as usize >= n {
            break;
        }
        if worker.is_finished() {
            bail!("the dispatcher stopped early");
        }
        if pushed_at.elapsed() > GIVE_UP {
            bail!("the alert did not reach every reader within {GIVE_UP:?}");
        }
    }
    let (first, last) = (sink.first_at(), sink.last_at());
    let _ = tx.send(true);
    worker.await??;
    let p = app.store.progress(digest).await?.context("progress")?;
    anyhow::ensure!(
        p.sent as usize == n && p.failed == 0,
        "not all delivered: {p:?}"
    );
    let after = |t: Option<Instant>| {
        t.map(|t| t.saturating_duration_since(pushed_at).as_secs_f64())
            .context("the sink took nothing")
    };
    let (first, last) = (after(first)?, after(last)?);
    let size = app
        .store
        .digest(digest)
        .await?
        .map_or(0, |d| d.html.len() + d.text.len());

    println!(
        "nashra bench (alert): {n} readers who take alerts on {}, {} sessions, the bench's own sink on {}",
        app.store.engine(),
        args.sessions,
        sink.addr
    );
    println!(
        "  import            {n} subscribers in {import_secs:.2} s ({:.0}/s); opted in, over {} zones, in {spread_secs:.2} s",
        n as f64 / import_secs,
        super::setup::ZONES.len()
    );
    println!(
        "  alert             one article, {:.1} KB of HTML and text; approval auto, no undo window, no quiet hours",
        size as f64 / 1024.0
    );
    println!(
        "  its readers       read in {read_ms:.1} ms; with their recent alerts and the plan {reach_ms:.1} ms (apart, before the push)"
    );
    println!(
        "  push → started    {push_secs:.3} s (the push returns once the alert is rendered and its {n} ledger rows are written)"
    );
    println!(
        "  push → first      {first:.3} s (the first message the relay accepted; target ≤ 10 s: {})",
        if first <= 10.0 { "met" } else { "missed" }
    );
    println!("  push → last       {last:.3} s");
    println!(
        "  rate              {:.0} msg/s from the first to the last ({:.0} msg/s from the push)",
        n as f64 / (last - first).max(f64::EPSILON),
        n as f64 / last
    );
    Ok(())
}

/// The urgent article, as a newsroom's script pushes it: one of the bench's articles.
fn urgent_article() -> NewArticle {
    let b = bench_articles().remove(0);
    NewArticle {
        guid: Some("bench-urgent".into()),
        url: format!("{}&urgent=1", b.url),
        canonical_url: String::new(),
        title: format!("عاجل: {}", b.title),
        source: "api".into(),
        urgent: true,
        ..b
    }
}
