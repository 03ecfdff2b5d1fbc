//! `nashra bench`: one real-sized digest to N subscribers through the smtp transport into
//! Postfix's `smtp-sink` on 127.0.0.1, then Postfix's `smtp-source` pushing messages of the
//! same size through the same sink with as many sessions, as the wire-speed reference.
//!
//! Everything runs on this machine in one command, so the figures that matter are the ratios:
//! our rate against `smtp-source`'s, CPU per message, and peak RSS of the sending phase.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;
use tokio::sync::watch;

use crate::{
    app::App,
    config::Settings,
    delivery::message::Personal,
    domain::{SubscriberEmail, SubscriberName},
    feeds,
    store::{DigestKind, DigestOutcome, NewArticle},
};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// How many subscribers receive the digest.
    #[arg(long, default_value_t = 100_000)]
    pub subscribers: usize,
    /// SMTP sessions in flight (delivery.concurrency; also smtp-source's -s).
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Messages smtp-source sends for the reference rate (default: min(N, 50000)).
    #[arg(long)]
    pub reference_messages: Option<usize>,
    /// Keep the benchmark's database and print where it is.
    #[arg(long)]
    pub keep: bool,
}

fn find_tool(name: &str) -> anyhow::Result<PathBuf> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/lib/postfix/sbin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "`{name}` not found: install Postfix's tools without starting a mail system:\n  \
         echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections\n  \
         DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
    )
}

/// (user, system) CPU time of this process so far.
fn cpu_times() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
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

fn status_kb(field: &str) -> u64 {
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
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Ten articles of realistic length, from the seed article's paragraphs.
fn bench_articles() -> Vec<NewArticle> {
    let seed = include_str!("../samples/feed.xml");
    let base = feeds::parse_feed(seed.as_bytes(), "bench").unwrap_or_default();
    let longest = base
        .iter()
        .map(|a| &a.content_html)
        .max_by_key(|c| c.len())
        .cloned()
        .unwrap_or_default();
    (0..10)
        .map(|i| {
            let b = &base[i % base.len().max(1)];
            NewArticle {
                guid: Some(format!("bench-{i}")),
                url: format!("{}?bench={i}", b.url),
                title: format!("{} ({})", b.title, i + 1),
                image: format!("https://example.org/wp-content/uploads/2020/06/bench-{i}.jpg"),
                // The seed article's full text, so excerpts can run to `excerpt_chars`.
                summary: String::new(),
                content_html: longest.clone(),
                source: "bench".into(),
                ..b.clone()
            }
        })
        .collect()
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let n = args.subscribers;
    anyhow::ensure!(n > 0, "--subscribers must be positive");
    let sink_bin = find_tool("smtp-sink")?;
    let source_bin = find_tool("smtp-source")?;
    let port = free_port()?;
    let sink = Sink(
        Command::new(&sink_bin)
            .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "1024"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start smtp-sink")?,
    );
    let dir = tempfile::Builder::new().prefix("nashra-bench-").tempdir()?;
    let toml = format!(
        r#"
[server]
public_url = "https://news.example.org"
[database]
url = "sqlite://{db}"
[delivery]
transport = "smtp"
concurrency = {sessions}
lease = "10m"
[smtp]
host = "127.0.0.1"
port = {port}
[newsletter]
# Longer excerpts than the default so the digest is "real-sized": about 50 KB of HTML.
excerpt_chars = 1400
[security]
secret = "bench-secret-0123456789-0123456789-0123456789"
admin_token = "bench-admin-token-0123456789"
"#,
        db = dir.path().join("bench.db").display(),
        sessions = args.sessions,
    );
    let settings = Settings::from_toml_layers(&[&toml])?;
    let app = App::new(settings).await?;
    for a in bench_articles() {
        app.add_article(a).await?;
    }

    // Subscribers, in chunks so the benchmark's own memory stays flat too.
    let t = Instant::now();
    let chunk = 50_000;
    let mut made = 0;
    while made < n {
        let rows: Vec<(SubscriberEmail, SubscriberName)> = (made..(made + chunk).min(n))
            .map(|i| {
                (
                    SubscriberEmail::parse(&format!("reader{i}@bench.example.com")).expect("valid"),
                    SubscriberName::default(),
                )
            })
            .collect();
        made += rows.len();
        app.store.import(&rows, true, "bench").await?;
    }
    let import_secs = t.elapsed().as_secs_f64();

    let sched = app.settings.schedule(None)?.clone();
    let t = Instant::now();
    let DigestOutcome::Created { id, recipients } = app
        .create_digest(&sched, DigestKind::Manual, None, None)
        .await?
    else {
        bail!("no digest created");
    };
    let create_secs = t.elapsed().as_secs_f64();
    let digest = app.store.digest(id).await?.context("digest")?;
    // One message exactly as the dispatcher will build it, for smtp-source's size.
    let sample = {
        let prepared = app.dispatcher.prepared(id).await?;
        let url = app
            .settings
            .public_url(&format!("/unsubscribe/{}", app.tokens.unsubscribe(1)));
        let personal = Personal {
            to: "reader1@bench.example.com",
            unsubscribe_url: Some(&url),
            name: "",
            date: Utc::now(),
        };
        prepared
            .template
            .build(&personal, &prepared.template.new_message_id())
    };

    // The send: only this phase counts for rate, CPU and peak RSS.
    reset_peak_rss();
    let (user0, sys0) = cpu_times();
    let t = Instant::now();
    let (tx, rx) = watch::channel(false);
    let worker = tokio::spawn(app.dispatcher.clone().run(rx));
    let metrics = app.metrics.clone();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if metrics.sent.load(Ordering::Relaxed) as usize >= recipients as usize {
            break;
        }
        if worker.is_finished() {
            bail!("dispatcher stopped early");
        }
    }
    let send_secs = t.elapsed().as_secs_f64();
    let (user1, sys1) = cpu_times();
    let (user, sys) = (user1 - user0, sys1 - sys0);
    let cpu = user + sys;
    let _ = tx.send(true);
    worker.await??;
    let peak_kb = status_kb("VmHWM:");
    let p = app.store.progress(id).await?.context("progress")?;
    anyhow::ensure!(
        p.sent as usize == n && p.failed == 0,
        "not all delivered: {p:?}"
    );

    // Reference: smtp-source, same size, same sessions, same sink. This machine is shared and
    // noisy, so it runs twice and the faster run counts (the ratio is then a lower bound).
    let m = args.reference_messages.unwrap_or(n.min(50_000));
    let mut ref_secs = f64::MAX;
    for _ in 0..2 {
        let t = Instant::now();
        let out = Command::new(&source_bin)
            .args([
                "-s",
                &args.sessions.to_string(),
                "-l",
                &sample.len().to_string(),
                "-m",
                &m.to_string(),
                "-f",
                "newsletter@example.org",
                "-t",
                "reader@bench.example.com",
                &format!("127.0.0.1:{port}"),
            ])
            .output()
            .context("cannot run smtp-source")?;
        ref_secs = ref_secs.min(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            out.status.success(),
            "smtp-source failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(sink);

    let rate = n as f64 / send_secs;
    let ref_rate = m as f64 / ref_secs;
    let cpu_ms = cpu.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "nashra bench: {n} subscribers, {} sessions, smtp-sink on 127.0.0.1:{port}",
        args.sessions
    );
    println!(
        "  digest            10 articles, {:.1} KB HTML, {:.1} KB per message",
        digest.html.len() as f64 / 1024.0,
        sample.len() as f64 / 1024.0
    );
    println!(
        "  import            {n} subscribers in {import_secs:.2} s ({:.0}/s)",
        n as f64 / import_secs
    );
    println!(
        "  create digest     {create_secs:.3} s (audience of {recipients} fixed in the ledger)"
    );
    println!("  send              {send_secs:.2} s  {rate:.0} msg/s");
    println!(
        "  smtp-source       {m} msgs in {ref_secs:.2} s  {ref_rate:.0} msg/s (same size, same sessions, same sink; faster of 2 runs)"
    );
    println!("  ratio             {:.2} × smtp-source", rate / ref_rate);
    println!(
        "  CPU per message   {cpu_ms:.3} ms (user {:.3} + sys {:.3}; the sender's CPU during the send / N)",
        user.as_secs_f64() * 1000.0 / n as f64,
        sys.as_secs_f64() * 1000.0 / n as f64
    );
    println!("  peak RSS (send)   {:.1} MB", peak_kb as f64 / 1024.0);
    if args.keep {
        println!("  database kept at  {}", dir.keep().display());
    }
    Ok(())
}
