//! `nashra bench`: one real-sized digest to N subscribers through the smtp transport into
//! Postfix's `smtp-sink` on 127.0.0.1, then Postfix's `smtp-source` pushing messages of the
//! same size through the same sink with as many sessions, as the wire-speed reference. On the
//! way it times what a newsroom of that size waits for: the import, the digest's creation,
//! a send's progress read while it runs, the console's reader searches.
//!
//! `--database postgres://…` runs it on a fresh PostgreSQL database on that server (dropped
//! afterwards unless `--keep`). `--workers K --relay-delay 20ms` measures scale-out instead:
//! against a sink that answers each message after the delay (`sink`), the rate of one
//! `nashra worker` process, then of K, on the same database.
//!
//! Everything runs on this machine in one command, so the figures that matter are the ratios:
//! our rate against `smtp-source`'s (or K workers' against one), CPU per message, and peak
//! RSS of the sending phase.
//!
//! Long (about 800 lines): one command that sets up, times and reports several measurements
//! (send, reference, reads, scale-out, sections, DKIM); the sink is apart (`sink`). It is built
//! only with `--features bench`.

mod sink;

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
    /// Run on a fresh database on this PostgreSQL server (`postgres://…`) instead of a
    /// temporary SQLite file.
    #[arg(long)]
    pub database: Option<String>,
    /// Scale-out: measure one worker process, then this many, against a sink that answers
    /// each message after `--relay-delay`.
    #[arg(long)]
    pub workers: Option<usize>,
    /// How long the scale-out sink takes to answer each message.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub relay_delay: Duration,
    /// Import the readers and time the reads (search, console), without sending.
    #[arg(long)]
    pub reads_only: bool,
    /// Sign every message with a fresh RSA-2048 DKIM key (and an Ed25519 one beside it with
    /// `--dkim-ed25519`), and time one signature alone for comparison.
    #[arg(long)]
    pub dkim: bool,
    #[arg(long, requires = "dkim")]
    pub dkim_ed25519: bool,
    /// After the usual send, a second digest with this many sections, each reader choosing
    /// one, ten new articles in each: CPU per message against the first (one edition).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=12))]
    pub sections: Option<u32>,
}

/// The benchmark's own database: a temporary SQLite file, or a fresh database on a
/// PostgreSQL server, dropped when this is (unless kept).
struct BenchDb {
    url: String,
    dir: tempfile::TempDir,
    pg: Option<(String, String)>,
    keep: bool,
}

impl BenchDb {
    async fn new(server: Option<&str>, keep: bool) -> anyhow::Result<BenchDb> {
        let dir = tempfile::Builder::new().prefix("nashra-bench-").tempdir()?;
        let Some(server) = server.filter(|s| s.starts_with("postgres")) else {
            return Ok(BenchDb {
                url: format!("sqlite://{}", dir.path().join("bench.db").display()),
                dir,
                pg: None,
                keep,
            });
        };
        use sqlx::Connection;
        let name = format!("nashra_bench_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(server)
            .await
            .context("cannot connect to --database")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut c)
            .await
            .context("cannot create the benchmark's database")?;
        let mut url = url::Url::parse(server).context("--database is not a URL")?;
        url.set_path(&format!("/{name}"));
        Ok(BenchDb {
            url: url.to_string(),
            dir,
            pg: Some((server.to_owned(), name)),
            keep,
        })
    }

    async fn drop_database(&mut self) {
        if self.keep {
            return;
        }
        if let Some((server, name)) = self.pg.take() {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&server).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        }
    }
}

/// The benchmark's configuration over `db`, sending to 127.0.0.1:`port`.
fn bench_toml(db: &str, port: u16, sessions: usize) -> String {
    format!(
        r#"
[server]
public_url = "https://news.example.org"
[database]
url = "{db}"
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
"#
    )
}

/// Imports `n` confirmed readers in chunks (the benchmark's own memory stays flat too).
async fn import_readers(app: &App, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let chunk = 50_000;
    let mut made = 0;
    while made < n {
        let rows: Vec<(SubscriberEmail, SubscriberName)> = (made..(made + chunk).min(n))
            .map(|i| {
                (
                    SubscriberEmail::parse(&format!("reader{i}@bench.example.com")).expect("valid"),
                    SubscriberName::parse(NAMES[i % NAMES.len()]).expect("a valid name"),
                )
            })
            .collect();
        made += rows.len();
        app.store.import(&rows, true, "bench").await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Readers' names, in turn.
const NAMES: [&str; 8] = ["سارة", "عمر", "ليلى", "أحمد", "مريم", "علي", "نور", "يوسف"];

/// The console's dashboard reads at this size: readers by status, a month of sign-ups and
/// departures.
/// The console's reads at this size: its dashboard (milliseconds), and who a send made now
/// would reach by edition, as the preview's «أرسل الآن» counts it (milliseconds).
async fn console_ms(app: &App) -> anyhow::Result<(f64, f64)> {
    let t = Instant::now();
    app.store.status_counts().await?;
    let statuses = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    app.store
        .consent_counts(crate::store::now_ms() - 30 * 86_400_000, 15 * 60 * 1000)
        .await?;
    let chart = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "  (dashboard: readers by status {statuses:.1} ms, a month of sign-ups {chart:.1} ms)"
    );
    let schedule = app.settings.schedule(None)?;
    let t = Instant::now();
    app.send_audience(schedule).await?;
    let audience = t.elapsed().as_secs_f64() * 1000.0;
    Ok((statuses + chart, audience))
}

/// One page of the console's reader list for `q`, as the console asks for it (50 rows and
/// the total up to 10,001): milliseconds.
async fn list_ms(app: &App, q: Option<&str>) -> anyhow::Result<f64> {
    let filter = crate::store::ReaderFilter {
        q: q.map(str::to_owned),
        ..Default::default()
    };
    let t = Instant::now();
    app.store.list_subscribers(&filter, 1, 50).await?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// Reader searches, each timed once and printed: the start of an address (the one reader, a
/// ninth of them, all of them, two characters, the first page without a search), then part
/// of an address or a name (every reader's domain, one reader's digits, an eighth's name,
/// texts nobody has). Returns the slowest of each group.
async fn search_ms(app: &App, n: usize) -> anyhow::Result<(f64, f64)> {
    let one = format!("reader{}@", n / 2);
    let prefix = [
        Some(one.as_str()),
        Some("reader1"),
        Some("reader"),
        Some("re"),
        None,
    ];
    let digits = format!("{}@", n / 2);
    let part = [
        "bench",
        "@bench.example.com",
        digits.as_str(),
        "عمر",
        "zeinab",
        "زينب الكاظمي",
    ];
    let mut line = String::new();
    let mut worst_prefix: f64 = 0.0;
    for q in prefix {
        let ms = list_ms(app, q).await?;
        worst_prefix = worst_prefix.max(ms);
        line.push_str(&format!(" `{}` {ms:.1},", q.unwrap_or("")));
    }
    println!("  (start of an address, ms:{})", line.trim_end_matches(','));
    line.clear();
    let mut worst_part: f64 = 0.0;
    for q in part {
        let ms = list_ms(app, Some(q)).await?;
        worst_part = worst_part.max(ms);
        line.push_str(&format!(" `{q}` {ms:.1},"));
    }
    println!(
        "  (part of an address or a name, ms:{})",
        line.trim_end_matches(',')
    );
    Ok((worst_prefix, worst_part))
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
    let seed = include_str!("../../samples/feed.xml");
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
    anyhow::ensure!(args.subscribers > 0, "--subscribers must be positive");
    let mut db = BenchDb::new(args.database.as_deref(), args.keep).await?;
    let out = match args.workers {
        Some(k) => scale_out(&args, &db, k).await,
        None => wire(&args, &db).await,
    };
    db.drop_database().await;
    if args.keep {
        println!("  database kept at  {}", db.url);
        let _ = db.dir.keep();
    }
    out
}

async fn wire(args: &BenchArgs, db: &BenchDb) -> anyhow::Result<()> {
    let n = args.subscribers;
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
    let toml = bench_toml(&db.url, port, args.sessions);
    let dkim_toml = if args.dkim {
        dkim_config(db.dir.path(), args.dkim_ed25519)?
    } else {
        String::new()
    };
    let sections_toml = args.sections.map(sections_config).unwrap_or_default();
    let settings = Settings::from_toml_layers(&[&toml, &dkim_toml, &sections_toml])?;
    let app = App::new(settings).await?;
    for a in bench_articles() {
        app.add_article(a).await?;
    }
    let import_secs = import_readers(&app, n).await?;
    let (search_worst, part_worst) = search_ms(&app, n).await?;
    let (dashboard_ms, audience_ms) = console_ms(&app).await?;
    if args.reads_only {
        println!(
            "nashra bench (reads only): {n} subscribers on {}",
            app.store.engine()
        );
        println!(
            "  import            {n} subscribers in {import_secs:.2} s ({:.0}/s)",
            n as f64 / import_secs
        );
        println!(
            "  address search    {search_worst:.1} ms, the slowest of 5 (start of an address)"
        );
        println!(
            "  reader search     {part_worst:.1} ms, the slowest of 6 (part of an address or a name)"
        );
        println!("  console           dashboard counts {dashboard_ms:.1} ms");
        println!("  send audience     {audience_ms:.1} ms (who «أرسل الآن» reaches, by edition)");
        return Ok(());
    }

    let (id, recipients, create_secs) = make_digest(&app).await?;
    let digest = app.store.digest(id).await?.context("digest")?;
    // One message exactly as the dispatcher will build it, for smtp-source's size.
    let sample = {
        let prepared = app.dispatcher.prepared(id, 0).await?;
        let url = app
            .settings
            .public_url(&format!("/unsubscribe/{}", app.tokens.unsubscribe(1)));
        let personal = Personal {
            to: "reader1@bench.example.com",
            unsubscribe_url: Some(&url),
            unsubscribe_mailto: None,
            name: "",
            preferences_url: None,
            click: "",
            date: Utc::now(),
        };
        prepared
            .template
            .build(&personal, &prepared.template.new_message_id())
    };

    // The send: only this phase counts for rate, CPU and peak RSS.
    let SendRun {
        secs: send_secs,
        user,
        sys,
        mut progress_ms,
        peak_kb,
    } = measure_send(&app, id, recipients).await?;
    let cpu = user + sys;
    // Sections: every reader chooses one; a second digest, rendered once per section.
    let sectioned = match args.sections {
        Some(k) => Some(sectioned_send(&app, k, n).await?),
        None => None,
    };

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
        "nashra bench: {n} subscribers on {}, {} sessions, smtp-sink on 127.0.0.1:{port}",
        app.store.engine(),
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
    println!("  address search    {search_worst:.1} ms, the slowest of 5 (start of an address)");
    println!(
        "  reader search     {part_worst:.1} ms, the slowest of 6 (part of an address or a name)"
    );
    println!("  console           dashboard counts {dashboard_ms:.1} ms");
    println!("  send audience     {audience_ms:.1} ms (who «أرسل الآن» reaches, by edition)");
    progress_ms.sort_by(f64::total_cmp);
    if let (Some(mid), Some(max)) = (progress_ms.get(progress_ms.len() / 2), progress_ms.last()) {
        println!(
            "  progress read     {mid:.1} ms median, {max:.1} ms max, over {} reads during the send (GET /api/sends/{{id}})",
            progress_ms.len()
        );
    }
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
    if let Some(signer) = app.mailer.signer.clone() {
        // One signature alone, on the same message: what DKIM adds per message at best.
        let (u0, s0) = cpu_times();
        let rounds = 2000;
        for _ in 0..rounds {
            std::hint::black_box(signer.sign(&sample, 0));
        }
        let (u1, s1) = cpu_times();
        let one = ((u1 - u0) + (s1 - s0)).as_secs_f64() * 1000.0 / rounds as f64;
        // The signature itself: the same keys over a message with no body to hash.
        let tiny = b"From: a@example.org\r\nTo: b@example.org\r\n\r\n";
        let (u0, s0) = cpu_times();
        for _ in 0..rounds {
            std::hint::black_box(signer.sign(tiny, 0));
        }
        let (u1, s1) = cpu_times();
        let bare = ((u1 - u0) + (s1 - s0)).as_secs_f64() * 1000.0 / rounds as f64;
        println!(
            "  DKIM              {} signature(s) a message; signing alone {one:.3} ms CPU a message (mean of {rounds}), of which the signature operation {bare:.3} ms; the rest of the message {:.3} ms",
            signer.keys().len(),
            cpu_ms - one
        );
        println!(
            "  DKIM vs target    {cpu_ms:.3} ms ≤ 0.25 ms + {bare:.3} ms (one signature) = {:.3} ms: {}",
            0.25 + bare,
            if cpu_ms <= 0.25 + bare {
                "met"
            } else {
                "missed"
            }
        );
    }
    println!("  peak RSS (send)   {:.1} MB", peak_kb as f64 / 1024.0);
    if let Some((k, create, run)) = sectioned {
        let ms = (run.user + run.sys).as_secs_f64() * 1000.0 / n as f64;
        println!(
            "  sections          {k} sections, each reader in one, 10 new articles each: digest and {k} editions made in {create:.3} s; sent in {:.2} s  {:.0} msg/s",
            run.secs,
            n as f64 / run.secs
        );
        println!(
            "  sections vs one   CPU per message {ms:.3} ms against {cpu_ms:.3} ms: {:.2} × (target ≤ 1.10: {})",
            ms / cpu_ms,
            if ms <= cpu_ms * 1.10 { "met" } else { "missed" }
        );
    }
    Ok(())
}

/// `k` sections, `s1` … `sk`, each with its own category; ten articles a digest.
fn sections_config(k: u32) -> String {
    let mut toml = String::from(
        "[[schedules]]\nname = \"daily\"\ncron = \"0 7 * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة الحل نت — {{ date }}\"\nmax_articles = 10\n",
    );
    for i in 1..=k {
        toml.push_str(&format!(
            "[[sections]]\nslug = \"s{i}\"\nname = \"قسم {i}\"\ncategories = [\"s{i}\"]\n"
        ));
    }
    toml
}

/// Spreads the readers over `k` sections, adds ten articles to each, and sends a digest:
/// (k, seconds to make it, the send).
async fn sectioned_send(app: &App, k: u32, n: usize) -> anyhow::Result<(u32, f64, SendRun)> {
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

/// Makes a digest of what is new, as a manual send does: (id, recipients, seconds taken).
async fn make_digest(app: &App) -> anyhow::Result<(i64, i64, f64)> {
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
struct SendRun {
    secs: f64,
    user: Duration,
    sys: Duration,
    /// Progress reads during the send, each in ms.
    progress_ms: Vec<f64>,
    peak_kb: u64,
}

/// Runs the dispatcher until digest `id` is delivered, timing it, its CPU and peak RSS, and
/// an editor watching its progress (read every 200 ms).
async fn measure_send(app: &App, id: i64, recipients: i64) -> anyhow::Result<SendRun> {
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

/// A fresh RSA-2048 key (and an Ed25519 one) for the benchmark's sends.
fn dkim_config(dir: &std::path::Path, ed25519: bool) -> anyhow::Result<String> {
    let mut toml = String::new();
    let mut algs = vec![(crate::dkim::Algorithm::RsaSha256, "rsa")];
    if ed25519 {
        algs.push((crate::dkim::Algorithm::Ed25519Sha256, "ed"));
    }
    for (alg, name) in algs {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, crate::dkim::generate(alg)?)?;
        toml.push_str(&format!(
            "[[dkim]]\ndomain = \"example.org\"\nselector = \"{name}\"\nprivate_key_file = \"{}\"\n",
            path.display()
        ));
    }
    Ok(toml)
}

/// One worker process, then `k`, each sending a digest to every reader through a sink that
/// takes `--relay-delay` over each message; prints both rates and their ratio.
async fn scale_out(args: &BenchArgs, db: &BenchDb, k: usize) -> anyhow::Result<()> {
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
    fn worker(config: &Path) -> anyhow::Result<Proc> {
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
