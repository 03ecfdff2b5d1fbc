//! `nashra ingest` and `bounces ingest`: what normally arrives on its own (feed articles, mail
//! in the bounce mailbox), taken in now by hand.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::{app::App, config::Settings};

/// Polls every configured feed once; fails only when every feed failed.
pub(super) async fn feeds(settings: Settings) -> anyhow::Result<()> {
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

/// Processes saved messages as if they had arrived in the bounce mailbox.
pub(super) async fn bounce_files(settings: Settings, files: Vec<PathBuf>) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    let mut failed = 0;
    for f in &files {
        let raw = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
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
