//! The command line: `serve`, `demo`, `migrate`, `ingest`, `send`, `preview`,
//! `subscribers import|export`, `bench`.

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::{
    app::{self, App},
    config::Settings,
    domain::SubscriberEmail,
    feeds,
    render::LinkItem,
    store::{DigestKind, DigestOutcome},
};

#[derive(Parser, Debug)]
#[command(
    name = "nashra",
    version,
    about = "Email newsletter publisher for Arabic news sites"
)]
pub struct Cli {
    /// A TOML file layered over config/default.toml.
    #[arg(long, global = true, env = "NASHRA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Web server, scheduler, feed pollers and delivery workers in one process.
    Serve,
    /// Zero-setup showcase: sample articles, a demo subscriber, a digest in the outbox, then serve.
    Demo {
        /// Deliver the digest and exit instead of serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Apply database migrations.
    Migrate,
    /// Poll the configured feeds now.
    Ingest,
    /// Build a digest now and send it, waiting until it is delivered.
    Send {
        #[arg(long)]
        schedule: Option<String>,
        /// Send to this one address only (not recorded as the schedule's digest).
        #[arg(long)]
        test_to: Option<String>,
        /// Show what would be sent and to how many, without sending.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the next digest (HTML, or its plain-text part).
    Preview {
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long)]
        text: bool,
    },
    /// Control a send: pause, resume, cancel, retry its failures, or show its status.
    Sends {
        #[command(subcommand)]
        action: SendAction,
    },
    /// Import or export subscribers as CSV (header `email,name`).
    Subscribers {
        #[command(subcommand)]
        action: SubscriberAction,
    },
    /// Delivery benchmark against Postfix's smtp-sink, with smtp-source as the reference.
    Bench(crate::bench::BenchArgs),
}

#[derive(Subcommand, Debug)]
pub enum SendAction {
    Status { id: i64 },
    Pause { id: i64 },
    Resume { id: i64 },
    Cancel { id: i64 },
    Retry { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum SubscriberAction {
    /// Add subscribers from a CSV file; `--confirmed` when consent was given elsewhere.
    Import {
        file: PathBuf,
        #[arg(long)]
        confirmed: bool,
    },
    /// Write every subscriber as CSV on stdout.
    Export,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Bench(args) = cli.command {
        return crate::bench::run(args).await;
    }
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let app = App::new(settings).await?;
            let listener = tokio::net::TcpListener::bind(app.settings.server.bind)
                .await
                .with_context(|| {
                    format!("server.bind: cannot listen on {}", app.settings.server.bind)
                })?;
            app::serve(app, listener, app::shutdown_signal()).await
        }
        Command::Demo { no_serve } => demo(settings, no_serve).await,
        Command::Migrate => {
            App::new(settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Ingest => {
            let app = App::new(settings).await?;
            let r = app.ingest_all().await;
            println!(
                "{} new articles ({} updated) from {} feeds, {} failed",
                r.new, r.updated, r.feeds, r.failed
            );
            if r.failed > 0 && r.failed == r.feeds {
                bail!("every feed failed");
            }
            Ok(())
        }
        Command::Send {
            schedule,
            test_to,
            dry_run,
        } => send(settings, schedule, test_to, dry_run).await,
        Command::Preview { schedule, text } => {
            let app = App::new(settings).await?;
            let sched = app.settings.schedule(schedule.as_deref())?;
            match app.preview(sched).await? {
                Some(d) => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(if text {
                        d.text.as_bytes()
                    } else {
                        d.html.as_bytes()
                    })?;
                    Ok(())
                }
                None => {
                    eprintln!("nothing new for schedule `{}`", sched.name);
                    Ok(())
                }
            }
        }
        Command::Sends { action } => sends(settings, action).await,
        Command::Subscribers { action } => subscribers(settings, action).await,
        Command::Bench(_) => unreachable!("handled before loading the configuration"),
    }
}

async fn sends(settings: Settings, action: SendAction) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    let (id, ok) = match action {
        SendAction::Status { id } => (id, true),
        SendAction::Pause { id } => (id, app.store.set_digest_status(id, "paused").await?),
        SendAction::Resume { id } => (id, app.store.set_digest_status(id, "sending").await?),
        SendAction::Cancel { id } => (id, app.store.set_digest_status(id, "cancelled").await?),
        SendAction::Retry { id } => (id, app.store.retry_failed(id).await? > 0),
    };
    let p = app
        .store
        .progress(id)
        .await?
        .with_context(|| format!("no send {id}"))?;
    println!("{}", serde_json::to_string_pretty(&p)?);
    if !ok {
        bail!("send {id} is {}; nothing changed", p.status);
    }
    Ok(())
}

async fn subscribers(settings: Settings, action: SubscriberAction) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    match action {
        SubscriberAction::Import { file, confirmed } => {
            use std::io::BufRead;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut lines = std::io::BufReader::new(f).lines();
            let header = lines.next().context("empty CSV")??;
            let cols = CsvColumns::from_header(&header)?;
            // Streamed in chunks, so a million rows need no more memory than fifty thousand;
            // re-running an interrupted import is safe (known addresses are left alone).
            const CHUNK: usize = 50_000;
            let (mut added, mut known, mut bad) = (0, 0, Vec::new());
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut line_no = 1;
            loop {
                let line = lines.next().transpose().context("cannot read the CSV")?;
                line_no += 1;
                if let Some(line) = &line
                    && !line.trim().is_empty()
                {
                    match cols.row(line) {
                        Ok(r) => chunk.push(r),
                        Err(why) => bad.push((line_no, why)),
                    }
                }
                if chunk.len() >= CHUNK || (line.is_none() && !chunk.is_empty()) {
                    let (a, k) = app.store.import(&chunk, confirmed, "import").await?;
                    added += a;
                    known += k;
                    chunk.clear();
                }
                if line.is_none() {
                    break;
                }
            }
            println!(
                "{added} added, {known} already known, {} rejected",
                bad.len()
            );
            for (line, why) in bad.iter().take(20) {
                eprintln!("line {line}: {why}");
            }
            Ok(())
        }
        SubscriberAction::Export => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            writeln!(out, "email,name,status,source,created_at,confirmed_at")?;
            let mut after = 0;
            loop {
                let page = app.store.subscribers_after(after, 10_000).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for s in &page {
                    writeln!(
                        out,
                        "{},{},{},{},{},{}",
                        csv_field(&s.email),
                        csv_field(&s.name),
                        s.status,
                        csv_field(&s.source),
                        s.created_at,
                        s.confirmed_at.map(|t| t.to_string()).unwrap_or_default()
                    )?;
                }
            }
            out.flush()?;
            Ok(())
        }
    }
}

/// An address to import and the name that came with it.
pub type ImportRow = (SubscriberEmail, String);
/// Good rows, and the line numbers of bad ones with the reason.
pub type ParsedCsv = (Vec<ImportRow>, Vec<(usize, String)>);

/// Reads `email,name` CSV (header required; name optional and may be quoted). Returns the
/// good rows and, for the rest, line numbers with the reason.
pub fn parse_csv(text: &str) -> anyhow::Result<ParsedCsv> {
    let mut lines = text.lines();
    let cols = CsvColumns::from_header(lines.next().context("empty CSV")?)?;
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match cols.row(line) {
            Ok(r) => {
                if seen.insert(r.0.normalized()) {
                    rows.push(r);
                }
            }
            Err(why) => bad.push((i + 2, why)),
        }
    }
    Ok((rows, bad))
}

/// Where `email` and `name` sit in a CSV's columns.
struct CsvColumns {
    email: usize,
    name: Option<usize>,
}

impl CsvColumns {
    fn from_header(header: &str) -> anyhow::Result<CsvColumns> {
        let cols: Vec<String> = split_csv_line(header.trim_start_matches('\u{feff}'))
            .iter()
            .map(|c| c.trim().to_lowercase())
            .collect();
        let email = cols
            .iter()
            .position(|c| c == "email")
            .context("CSV header must have an `email` column")?;
        Ok(CsvColumns {
            email,
            name: cols.iter().position(|c| c == "name"),
        })
    }

    fn row(&self, line: &str) -> Result<ImportRow, String> {
        let f = split_csv_line(line);
        let email = f.get(self.email).map(|s| s.trim()).unwrap_or("");
        let email = SubscriberEmail::parse(email).map_err(|e| e.to_string())?;
        let name = self
            .name
            .and_then(|c| f.get(c))
            .map(|s| {
                s.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(100)
                    .collect()
            })
            .unwrap_or_default();
        Ok((email, name))
    }
}

fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("non-empty").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().expect("non-empty").push(c),
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Runs the dispatcher in this process until digest `id` has no pending deliveries, showing
/// progress on a terminal.
pub async fn deliver_until_done(app: &Arc<App>, id: i64) -> anyhow::Result<crate::store::Progress> {
    let (tx, rx) = watch::channel(false);
    let worker = tokio::spawn(app.dispatcher.clone().run(rx));
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} sent ({per_sec}, ETA {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let progress = loop {
        let p = app.store.progress(id).await?.context("digest vanished")?;
        if let Some(b) = &bar {
            b.set_length(p.total as u64);
            b.set_position(p.sent as u64);
            b.set_message(if p.failed > 0 {
                format!("{} failed", p.failed)
            } else {
                String::new()
            });
        }
        if p.status != "sending" && p.status != "queued" {
            break p;
        }
        // Counting a large ledger is not free: poll less often the larger the send.
        tokio::time::sleep(Duration::from_millis(
            (200 + p.total / 1000).min(1000) as u64
        ))
        .await;
    };
    if let Some(b) = bar {
        b.finish();
    }
    let _ = tx.send(true);
    worker.await.context("dispatcher panicked")??;
    Ok(progress)
}

async fn send(
    settings: Settings,
    schedule: Option<String>,
    test_to: Option<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    let sched = app.settings.schedule(schedule.as_deref())?.clone();
    let test_to = test_to
        .map(|t| SubscriberEmail::parse(&t).map_err(|e| anyhow::anyhow!("--test-to: {e}")))
        .transpose()?;
    if dry_run {
        match app.preview(&sched).await? {
            Some(d) => {
                let n = if test_to.is_some() {
                    1
                } else {
                    app.store.count_subscribers("confirmed").await?
                };
                println!(
                    "would send «{}» to {n} recipients ({} bytes of HTML)",
                    d.subject,
                    d.html.len()
                );
            }
            None => println!("nothing new for schedule `{}`", sched.name),
        }
        return Ok(());
    }
    let kind = if test_to.is_some() {
        DigestKind::Test
    } else {
        DigestKind::Manual
    };
    let id = match app
        .create_digest(&sched, kind, None, test_to.as_ref())
        .await?
    {
        DigestOutcome::Created { id, recipients } => {
            println!("digest {id}: sending to {recipients} recipients");
            id
        }
        DigestOutcome::NothingNew | DigestOutcome::Exists(_) => {
            println!("nothing new for schedule `{}`; no digest sent", sched.name);
            return Ok(());
        }
    };
    let p = deliver_until_done(&app, id).await?;
    println!(
        "digest {id}: {} sent, {} failed, {} skipped, status {}",
        p.sent, p.failed, p.skipped, p.status
    );
    if p.failed > 0 || p.status == "failed" {
        bail!(
            "{} deliveries failed (see `nashra sends status {id}`)",
            p.failed
        );
    }
    Ok(())
}

/// Sample articles and most-read links shipped with the binary.
const SAMPLE_FEED: &str = include_str!("../samples/feed.xml");
const SAMPLE_MOST_READ: &str = include_str!("../samples/most-read.xml");
const DEMO_SUBSCRIBER: &str = "qari@example.com";

async fn demo(settings: Settings, no_serve: bool) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    let (new, _) = app
        .ingest_bytes(SAMPLE_FEED.as_bytes(), "samples/feed.xml")
        .await?;
    println!("sample articles: {new} new");
    let most_read: Vec<LinkItem> =
        feeds::parse_feed(SAMPLE_MOST_READ.as_bytes(), "samples/most-read.xml")?
            .into_iter()
            .map(|a| LinkItem {
                title: a.title,
                url: a.url,
            })
            .collect();
    *app.most_read_override.lock().expect("not poisoned") = Some(most_read);
    let demo_reader = SubscriberEmail::parse(DEMO_SUBSCRIBER).expect("valid demo address");
    app.store
        .import(&[(demo_reader, "قارئ تجريبي".into())], true, "demo")
        .await?;
    // The demo always shows a digest: it sends the sample articles as a fresh "demo" issue.
    let mut sched = app.settings.schedule(None)?.clone();
    sched.name = "demo".into();
    app.store.reset_schedule("demo").await?;
    match app
        .create_digest(&sched, DigestKind::Manual, None, None)
        .await?
    {
        DigestOutcome::Created { id, recipients } => {
            let p = deliver_until_done(&app, id).await?;
            println!("digest {id}: {} of {recipients} delivered", p.sent);
            if app.mailer.transport.is_outbox() {
                let dir = &app.settings.delivery.outbox_dir;
                let newest = std::fs::read_dir(dir)?
                    .filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("digest-{id}-"))
                    })
                    .map(|e| e.path())
                    .next();
                if let Some(path) = newest {
                    println!("digest written to {}", path.display());
                }
            }
            println!(
                "web version: {}",
                app.settings.public_url(&format!("/archive/{id}"))
            );
        }
        other => println!("no digest: {other:?}"),
    }
    if no_serve {
        return Ok(());
    }
    println!("sign-up page: {}", app.settings.public_url("/subscribe"));
    let listener = tokio::net::TcpListener::bind(app.settings.server.bind)
        .await
        .with_context(|| format!("server.bind: cannot listen on {}", app.settings.server.bind))?;
    app::serve(app, listener, app::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_import_reads_quotes_and_rejects_bad_rows() {
        let (rows, bad) = parse_csv("email,name\na@example.com,\"Last, First\"\nnot-an-email,x\nA@example.com,dup\n\nb@example.org\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, "Last, First");
        assert_eq!(bad, vec![(3, "not a plain address".into())]);
    }

    #[test]
    fn csv_export_neutralises_formulas() {
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
