//! Scale-out: the rate of one `nashra worker` process, then of K, on one database against a
//! sink that answers each message after a delay.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::{
    args::BenchArgs,
    setup::{BenchDb, bench_articles, bench_toml, import_readers},
    sink,
};
use crate::{
    app::App,
    config::Settings,
    store::{DigestKind, DigestOutcome},
};

/// One worker process, then `k`, each sending a digest to every reader through a sink that
/// takes `--relay-delay` over each message; prints both rates and their ratio.
pub(super) async fn scale_out(args: &BenchArgs, db: &BenchDb, k: usize) -> anyhow::Result<()> {
    let n = args.subscribers;
    let sink = sink::DelaySink::start(args.relay_delay).await?;
    let toml = bench_toml(&db.url, sink.addr.port(), args.sessions);
    let config = db.dir.path().join("bench.toml");
    std::fs::write(&config, &toml)?;
    let app = App::new(Settings::from_toml_layers(&[&toml])?).await?;
    for a in bench_articles() {
        app.add_article(a).await?;
    }
    import_readers(&app, n).await?;
    let sched = app.settings.schedule(None)?.clone();
    let mut rates = Vec::new();
    for (round, workers) in [1, k].into_iter().enumerate() {
        if round > 0 {
            // Something new for the next digest.
            let mut a = bench_articles().remove(0);
            a.guid = Some("bench-scale-out".into());
            a.url = format!("{}&round={round}", a.url);
            app.add_article(a).await?;
        }
        let DigestOutcome::Created { id, .. } = app
            .create_digest(&sched, DigestKind::Manual, None, None)
            .await?
        else {
            bail!("no digest created");
        };
        // The digest waits (paused) until every worker runs, so they start together.
        app.store
            .set_digest_status(id, crate::store::DigestStatus::Paused)
            .await?;
        let procs: Vec<Proc> = (0..workers)
            .map(|_| Proc::worker(&config))
            .collect::<anyhow::Result<_>>()?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = sink.received.load(Ordering::Relaxed);
        let t = Instant::now();
        app.store
            .set_digest_status(id, crate::store::DigestStatus::Sending)
            .await?;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let p = app.store.progress(id).await?.context("progress")?;
            if p.sent as usize >= n {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(3600),
                "the send did not finish: {p:?}"
            );
        }
        let secs = t.elapsed().as_secs_f64();
        let got = sink.received.load(Ordering::Relaxed) - before;
        drop(procs);
        rates.push((workers, n as f64 / secs, got));
    }
    println!(
        "nashra bench (scale-out): {n} subscribers on {}, relay answers after {:?}, {} sessions per worker",
        app.store.engine(),
        args.relay_delay,
        args.sessions
    );
    for (workers, rate, got) in &rates {
        println!("  {workers} worker process(es)   {rate:.0} msg/s ({got} messages at the sink)");
    }
    println!(
        "  ratio                  {:.2} × one worker",
        rates[1].1 / rates[0].1
    );
    Ok(())
}

/// A `nashra worker` process, killed when dropped.
struct Proc(Child);

impl Proc {
    pub(super) fn worker(config: &Path) -> anyhow::Result<Proc> {
        Ok(Proc(
            Command::new(std::env::current_exe()?)
                .arg("--config")
                .arg(config)
                .arg("worker")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .context("cannot start a worker")?,
        ))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
