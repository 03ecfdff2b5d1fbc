//! `nashra send`, `preview` and `sends`: a digest built and delivered from the command line
//! (this process runs the dispatcher until it is done), the next digest printed, and the
//! controls of a send (the same operations as the console's, as the `cli` actor).

use std::{
    io::{IsTerminal, Write},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::args::SendAction;
use crate::{
    app::{Actor, App, OpError, SendControl},
    config::Settings,
    domain::SubscriberEmail,
    store::{DigestOutcome, DigestStatus, SubscriberStatus},
};

/// Prints the next digest of `schedule`: its HTML, or with `text` its plain-text part.
pub(super) async fn preview(
    settings: Settings,
    schedule: Option<String>,
    text: bool,
) -> anyhow::Result<()> {
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

pub(super) async fn sends(settings: Settings, action: SendAction) -> anyhow::Result<()> {
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

pub(super) async fn send(
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
    if let Some(why) = p
        .guard
        .english()
        .filter(|_| p.status == DigestStatus::Paused)
    {
        bail!("digest {id} {why}: resume it with `nashra sends resume {id}` or cancel it");
    }
    if p.failed > 0 || p.status == DigestStatus::Failed {
        bail!(
            "{} deliveries failed (see `nashra sends status {id}`)",
            p.failed
        );
    }
    Ok(())
}
