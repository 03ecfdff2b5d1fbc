//! The command line: `serve`, `worker`, `demo`, `migrate`, `ingest`, `send`, `preview`,
//! `sends`, `subscribers import|export`, `admin add|password|totp-reset`, `bench`. What the console and
//! the API also do goes through the same operations (`App::control`, `App::import_csv`, …),
//! as the `cli` actor, an owner.
//!
//! Long (about 720 lines) because every command's argument types and its few lines of work are
//! here, one after another. Issue 16 turns it into a `cli/` folder by command.

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
    app::{Actor, App, OpError, SendControl},
    config::Settings,
    domain::{SubscriberEmail, SubscriberName},
    feeds,
    render::LinkItem,
    startup::{self, Roles},
    store::{DigestKind, DigestOutcome, DigestStatus, Role, SubscriberStatus},
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
    /// Web server, scheduler, feed pollers and delivery in one process (or some of them:
    /// a site runs N web processes and M workers on one PostgreSQL).
    Serve {
        /// No delivery (leave it to `nashra worker` processes).
        #[arg(long)]
        no_delivery: bool,
        /// No schedules fired here.
        #[arg(long)]
        no_scheduler: bool,
        /// No feeds polled here.
        #[arg(long)]
        no_feeds: bool,
    },
    /// Delivery only (the ledger and confirmation emails), no HTTP port: any number of
    /// workers and `serve` processes share one PostgreSQL.
    Worker,
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
    /// Console accounts.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Delivery benchmark against Postfix's smtp-sink, with smtp-source as the reference
    /// (built with `--features bench`).
    #[cfg(feature = "bench")]
    Bench(crate::bench::BenchArgs),
    /// DKIM keys.
    Dkim {
        #[command(subcommand)]
        action: DkimAction,
    },
    /// Bounces, complaints and mailed unsubscribes.
    Bounces {
        #[command(subcommand)]
        action: BounceAction,
    },
    /// What the sending domain's DNS needs, and whether the configuration meets what Gmail,
    /// Yahoo and Outlook.com ask of bulk senders.
    Doctor,
}

#[derive(Subcommand, Debug)]
pub enum DkimAction {
    /// Make a key, write it (PEM, mode 0600) and print the DNS TXT record to publish.
    Keygen {
        /// The signing domain (d=), aligned with From's; From's domain by default.
        #[arg(long)]
        domain: Option<String>,
        #[arg(long, default_value = "nashra1")]
        selector: String,
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: KeyAlgorithm,
        /// Where to write the private key; `<selector>.pem` by default. Never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KeyAlgorithm {
    Rsa,
    Ed25519,
}

#[derive(Subcommand, Debug)]
pub enum BounceAction {
    /// Process saved messages (a DSN, an ARF complaint, an unsubscribe mail) as if they had
    /// arrived in the bounce mailbox.
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Add a console account. The password is prompted for on a terminal, else read from
    /// the first line of stdin.
    Add {
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Set an account's password (and end its sessions, and lift a lock-out).
    Password { email: String },
    /// Take away an account's second factor (its owner lost the authenticator): it signs
    /// in with its password alone until it sets a new one; its sessions end. Audited.
    TotpReset { email: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    Owner,
    Editor,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Owner => Role::Owner,
            RoleArg::Editor => Role::Editor,
            RoleArg::Viewer => Role::Viewer,
        }
    }
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
    #[cfg(feature = "bench")]
    if let Command::Bench(args) = cli.command {
        return crate::bench::run(args).await;
    }
    if let Command::Dkim {
        action:
            DkimAction::Keygen {
                domain,
                selector,
                algorithm,
                out,
            },
    } = &cli.command
    {
        let domain = match domain {
            Some(d) => d.clone(),
            None => {
                let s = Settings::load(cli.config.as_deref())?;
                crate::domain::Mailbox::parse(&s.newsletter.from)
                    .context("newsletter.from")?
                    .email
                    .domain()
                    .to_owned()
            }
        };
        return dkim_keygen(&domain, selector, *algorithm, out.clone());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve {
            no_delivery,
            no_scheduler,
            no_feeds,
        } => {
            let roles = Roles {
                web: true,
                delivery: !no_delivery,
                scheduler: !no_scheduler,
                feeds: !no_feeds,
            };
            let app = App::new(settings).await?;
            let listener = bind(&app).await?;
            startup::run(app, roles, Some(listener), startup::shutdown_signal()).await
        }
        Command::Worker => {
            let app = App::new(settings).await?;
            tracing::info!(engine = app.store.engine(), "worker: delivery only");
            startup::run(app, Roles::WORKER, None, startup::shutdown_signal()).await
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
        Command::Admin { action } => admin(settings, action).await,
        #[cfg(feature = "bench")]
        Command::Bench(_) => unreachable!("handled before loading the configuration"),
        Command::Dkim { .. } => unreachable!("handled before loading the configuration"),
        Command::Bounces {
            action: BounceAction::Ingest { files },
        } => {
            let app = App::new(settings).await?;
            let mut failed = 0;
            for f in &files {
                let raw =
                    std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
                match crate::bounces::feedback_from_mail(&app, &raw, "file").await {
                    Ok(r) => println!("{}: {r}", f.display()),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: {e:#}", f.display());
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} files could not be processed", files.len());
            }
            Ok(())
        }
        Command::Doctor => crate::bounces::doctor::run(&settings).await,
    }
}

fn dkim_keygen(
    domain: &str,
    selector: &str,
    algorithm: KeyAlgorithm,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let alg = match algorithm {
        KeyAlgorithm::Rsa => crate::dkim::Algorithm::RsaSha256,
        KeyAlgorithm::Ed25519 => crate::dkim::Algorithm::Ed25519Sha256,
    };
    let pem = crate::dkim::generate(alg)?;
    let key = crate::dkim::Key::from_pem(domain, selector, pem.as_bytes())?;
    let path = out.unwrap_or_else(|| PathBuf::from(format!("{selector}.pem")));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    f.write_all(pem.as_bytes())?;
    eprintln!("private key written to {} (keep it secret)", path.display());
    eprintln!("publish this TXT record, then add to your configuration:");
    eprintln!(
        "  [[dkim]]\n  domain = \"{}\"\n  selector = \"{selector}\"\n  private_key_file = \"{}\"\n",
        key.domain,
        path.display()
    );
    let txt = key.txt_record();
    // DNS strings hold 255 bytes at most: a 2048-bit key is published as several.
    let quoted: Vec<String> = txt
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).expect("ASCII")))
        .collect();
    println!("{}. IN TXT ( {} )", key.record_name(), quoted.join(" "));
    Ok(())
}

async fn bind(app: &App) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(app.settings.server.bind)
        .await
        .with_context(|| format!("server.bind: cannot listen on {}", app.settings.server.bind))
}

async fn sends(settings: Settings, action: SendAction) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    let (id, control) = match action {
        SendAction::Status { id } => (id, None),
        SendAction::Pause { id } => (id, Some(SendControl::Pause)),
        SendAction::Resume { id } => (id, Some(SendControl::Resume)),
        SendAction::Cancel { id } => (id, Some(SendControl::Cancel)),
        SendAction::Retry { id } => (id, Some(SendControl::Retry)),
    };
    let progress = match control {
        None => app
            .store
            .progress(id)
            .await?
            .with_context(|| format!("no send {id}"))?,
        Some(c) => match app.control(&Actor::cli(), id, c).await {
            Ok((p, requeued)) if c == SendControl::Retry && requeued == 0 => {
                println!("{}", serde_json::to_string_pretty(&p)?);
                bail!("send {id} has no failed deliveries to retry");
            }
            Ok((p, _)) => p,
            Err(OpError::NotFound(_)) => bail!("no send {id}"),
            Err(OpError::InvalidState(s)) => bail!("send {id} is {s}; nothing changed"),
            Err(e) => return Err(e.into()),
        },
    };
    println!("{}", serde_json::to_string_pretty(&progress)?);
    Ok(())
}

async fn subscribers(settings: Settings, action: SubscriberAction) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    match action {
        SubscriberAction::Import { file, confirmed } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let label = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let r = app
                .import_csv(&Actor::cli(), std::io::BufReader::new(f), confirmed, &label)
                .await?;
            let unnamed = match r.unnamed {
                0 => String::new(),
                1 => "; 1 imported without a name".into(),
                n => format!("; {n} imported without a name"),
            };
            println!(
                "{} added, {} already known, {} rejected{unnamed}",
                r.added, r.known, r.rejected
            );
            // Both kinds of note in the file's order, so the editor can work down it.
            let mut notes: Vec<(u64, String)> = r
                .errors
                .iter()
                .map(|(line, why)| (*line, why.to_string()))
                .chain(r.names.iter().map(|(line, n)| (*line, n.to_string())))
                .collect();
            notes.sort_by_key(|(line, _)| *line);
            const SHOWN: usize = 50;
            for (line, note) in notes.iter().take(SHOWN) {
                eprintln!("line {line}: {note}");
            }
            let more = (r.rejected + r.unnamed).saturating_sub(SHOWN as u64);
            if more > 0 {
                eprintln!("… and {more} more");
            }
            let rejected = match r.rejected {
                0 => None,
                1 => Some("1 row was not imported".to_owned()),
                n => Some(format!("{n} rows were not imported")),
            };
            if let Some(why) = r.stopped {
                bail!(
                    "the import stopped: {why} (the rows before it were imported{})",
                    rejected.map(|r| format!("; {r}")).unwrap_or_default()
                );
            }
            if let Some(rejected) = rejected {
                bail!(
                    "{rejected}: correct those lines and import the file again (readers already imported are left as they are)"
                );
            }
            Ok(())
        }
        SubscriberAction::Export => {
            use futures::StreamExt;
            let stream = app.export_csv(&Actor::cli()).await?;
            futures::pin_mut!(stream);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
            }
            out.flush()?;
            Ok(())
        }
    }
}

async fn admin(settings: Settings, action: AdminAction) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    match action {
        AdminAction::Add { email, role } => {
            let password = read_password("password for the new account: ")?;
            let id = app
                .add_admin(&Actor::cli(), &email, role.into(), &password)
                .await?;
            println!(
                "account {id} added; sign in at {}",
                app.settings.public_url("/admin")
            );
        }
        AdminAction::Password { email } => {
            let password = read_password("new password: ")?;
            app.set_password(&Actor::cli(), &email, None, &password)
                .await?;
            println!("password set; the account's sessions have ended");
        }
        AdminAction::TotpReset { email } => {
            if app.reset_totp(&Actor::cli(), &email).await? {
                println!(
                    "second factor removed; the account signs in with its password and sets a new one under «حسابي»"
                );
            } else {
                println!("the account had no second factor; its sessions have ended");
            }
        }
    }
    Ok(())
}

/// A password from the terminal (not echoed, typed twice) or the first line of stdin.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = prompt_hidden(prompt)?;
    let again = prompt_hidden("again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// Reads a line with the terminal's echo off (rpassword: no `unsafe` of our own).
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(prompt).context("cannot read the password")
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
        if !p.status.is_open() {
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
                    app.store
                        .count_subscribers(SubscriberStatus::Confirmed)
                        .await?
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
    let id = match app
        .start_send(&Actor::cli(), Some(&sched.name), test_to.as_slice())
        .await?
    {
        DigestOutcome::Created { id, recipients } => {
            println!("digest {id}: sending to {recipients} recipients");
            id
        }
        DigestOutcome::NothingNew
        | DigestOutcome::Exists(_)
        | DigestOutcome::Stale
        | DigestOutcome::Paused => {
            println!("nothing new for schedule `{}`; no digest sent", sched.name);
            return Ok(());
        }
    };
    let p = deliver_until_done(&app, id).await?;
    println!(
        "digest {id}: {} sent, {} failed, {} skipped, status {}",
        p.sent, p.failed, p.skipped, p.status
    );
    if p.failed > 0 || p.status == DigestStatus::Failed {
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
        .import(
            &[(
                demo_reader,
                SubscriberName::parse("قارئ تجريبي").expect("a valid name"),
            )],
            true,
            "demo",
        )
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
    let console = app.settings.public_url("/admin");
    if app.store.admins().await?.is_empty() {
        println!(
            "console: {console} (first add an account: nashra admin add you@example.org --role owner)"
        );
    } else {
        println!("console: {console}");
    }
    let listener = bind(&app).await?;
    startup::run(app, Roles::ALL, Some(listener), startup::shutdown_signal()).await
}
