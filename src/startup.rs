//! The composition root: which parts a process runs, wired to one `App`, until shutdown.
//!
//! A site runs `nashra serve` (everything) on one machine, or N web processes
//! (`serve --no-delivery --no-scheduler --no-feeds`) and M workers (`nashra worker`) on one
//! PostgreSQL. Whatever runs where, the database decides who does what: a schedule slot makes
//! one digest (its unique key, under the schedule's lock), a feed is polled by whichever
//! process takes its turn, a delivery is claimed by one worker, the sending rate is reserved
//! from one row.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{app::App, shutdown::Shutdown, store::now_ms};

/// The parts of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The web server: sign-up, links, archive, admin API.
    pub web: bool,
    /// The delivery dispatcher and the confirmation queue.
    pub delivery: bool,
    /// Firing schedules.
    pub scheduler: bool,
    /// Polling feeds.
    pub feeds: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        web: true,
        delivery: true,
        scheduler: true,
        feeds: true,
    };

    /// `nashra worker`: delivery only, no port.
    pub const WORKER: Roles = Roles {
        web: false,
        delivery: true,
        scheduler: false,
        feeds: false,
    };
}

/// How often a feed poller asks whether it is its process's turn.
const FEED_TURN_EVERY: Duration = Duration::from_secs(5);

/// Runs `roles` until `shutdown` turns true; then lets each part finish cleanly. `listener`
/// is needed when `roles.web`. (`shutdown` may be the raw `watch` receiver a caller holds the
/// sender of, as tests do.)
pub async fn run(
    app: Arc<App>,
    roles: Roles,
    listener: Option<TcpListener>,
    shutdown: impl Into<Shutdown>,
) -> anyhow::Result<()> {
    let shutdown: Shutdown = shutdown.into();
    let mut parts: JoinSet<anyhow::Result<()>> = JoinSet::new();
    if roles.web {
        let listener = listener.context("the web role needs a listener")?;
        tracing::info!(addr = %listener.local_addr()?, "listening");
        let router = crate::web::router(app.clone());
        let (app, sd) = (app.clone(), shutdown.clone());
        parts.spawn(async move {
            crate::web::serve(listener, router, &app.settings.server, sd)
                .await
                .context("web server failed")
        });
    }
    if roles.web || roles.delivery {
        // Learn the relay's extensions (SMTPUTF8) before the first reader needs them: a
        // sign-up with a non-ASCII address is refused when the relay cannot deliver it.
        parts.spawn(app.mailer.clone().learn_relay(shutdown.clone()));
    }
    if roles.delivery {
        app.mailer.warn_about_alignment();
        parts.spawn(app.dispatcher.clone().run(shutdown.clone()));
        parts.spawn(app.mail_queue.clone().run(shutdown.clone()));
        if app.settings.bounces.has_mailbox() {
            parts.spawn(crate::bounces::imap::run(app.clone(), shutdown.clone()));
        }
    }
    if roles.scheduler {
        parts.spawn(crate::schedule::run(app.clone(), shutdown.clone()));
    }
    if roles.feeds {
        for f in app.settings.feeds.clone() {
            let (app, mut sd) = (app.clone(), shutdown.clone());
            parts.spawn(async move {
                loop {
                    match app.store.take_feed_turn(&f.url, f.poll_every, now_ms()).await {
                        Ok(true) => {
                            if let Err(e) = app.ingest_feed(&f.url).await {
                                tracing::warn!(feed = %f.url, error = %format!("{e:#}"), "feed poll failed; will retry next time");
                            }
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "cannot take a feed's turn")
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(FEED_TURN_EVERY.min(f.poll_every)) => {}
                        _ = sd.recv() => return Ok(()),
                    }
                }
            });
        }
    }
    let mut first_error = None;
    while let Some(done) = parts.join_next().await {
        let r = done
            .context("a part of the process panicked")
            .and_then(|r| r);
        if let Err(e) = r {
            tracing::error!(error = %format!("{e:#}"), "a part of the process stopped");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A shutdown that comes on SIGINT or SIGTERM.
pub fn shutdown_signal() -> Shutdown {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutting down: finishing in-flight messages");
        let _ = tx.send(true);
    });
    Shutdown::from(rx)
}
