//! Reads the bounce mailbox over IMAP (implicit TLS): every unseen message is handed to
//! `mail::feedback_from_mail`, then flagged `\Seen` and moved to `bounces.processed_folder`.
//! Then the same for `bounces.dmarc_folder`, if DMARC reports are filed apart.
//!
//! Once and only once: a message is flagged only after its event is committed, and the
//! store records each report (and each delivery's bounce) once, so a pass cut short and
//! read again changes nothing. One process reads per turn (the feed-turn row), so several
//! processes on one PostgreSQL do not fetch the same mail at once.

use secrecy::ExposeSecret;
use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use futures::StreamExt;
use percent_encoding::percent_decode_str;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::{Instrument, field};

use super::{
    dmarc::DmarcOutcome,
    mail::{MailOutcome, feedback_from_mail},
    parse::MAX_MAIL_BYTES,
};
use crate::{app::App, shutdown::Shutdown, store::now_ms};

/// Each IMAP exchange must answer within this.
const STEP: Duration = Duration::from_secs(30);
/// Messages handled per pass; the rest wait for the next.
const PER_PASS: usize = 500;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub read: usize,
    pub recorded: usize,
    pub ignored: usize,
    /// Mails that could not be handled: flagged and left in the mailbox, the pass went on.
    pub set_aside: usize,
    /// DMARC aggregate reports stored, and refused (unreadable: read, moved, not retried).
    pub dmarc: usize,
    pub dmarc_refused: usize,
}

struct Target {
    host: String,
    port: u16,
    user: String,
    password: String,
    mailbox: String,
}

fn target(url: &str) -> anyhow::Result<Target> {
    let u = url::Url::parse(url).context("bounces.imap_url is not a URL")?;
    if u.scheme() != "imaps" {
        bail!("bounces.imap_url: only imaps:// (TLS from the first byte) is supported");
    }
    let dec = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mailbox = dec(u.path().trim_start_matches('/'));
    Ok(Target {
        host: u
            .host_str()
            .context("bounces.imap_url: no host")?
            .to_owned(),
        port: u.port().unwrap_or(993),
        user: dec(u.username()),
        password: dec(u.password().unwrap_or("")),
        mailbox: if mailbox.is_empty() {
            "INBOX".into()
        } else {
            mailbox
        },
    })
}

fn tls(ca_file: &str) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_file.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        use rustls_pki_types::{CertificateDer, pem::PemObject};
        for c in CertificateDer::pem_file_iter(ca_file)
            .with_context(|| format!("bounces.ca_file: cannot read {ca_file}"))?
        {
            roots
                .add(c.context("bounces.ca_file: bad certificate")?)
                .context("bounces.ca_file: certificate refused")?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn step<T, E: Into<anyhow::Error>>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(STEP, f).await {
        Ok(r) => r
            .map_err(Into::into)
            .with_context(|| format!("IMAP {what}")),
        Err(_) => bail!("IMAP {what}: no answer within {STEP:?}"),
    }
}

/// One pass over the mailbox, in a span that ends with the pass's counts (never an address),
/// so the lines about each mail can be followed back to their pass.
pub async fn poll_once(app: &App) -> anyhow::Result<Pass> {
    let span = tracing::info_span!(
        "bounce_mailbox_pass",
        read = field::Empty,
        recorded = field::Empty,
        ignored = field::Empty,
        set_aside = field::Empty,
        dmarc = field::Empty,
    );
    let mut pass = Pass::default();
    let done = read_mailbox(app, &mut pass).instrument(span.clone()).await;
    // Counted so far even when the pass broke off: what it did before is done.
    span.record("read", pass.read)
        .record("recorded", pass.recorded)
        .record("ignored", pass.ignored)
        .record("set_aside", pass.set_aside)
        .record("dmarc", pass.dmarc);
    done.map(|()| pass)
}

async fn read_mailbox(app: &App, pass: &mut Pass) -> anyhow::Result<()> {
    let b = &app.settings.bounces;
    let t = target(b.imap_url.expose_secret())?;
    let connector = tls(&b.ca_file)?;
    let tcp = step("connect", TcpStream::connect((t.host.as_str(), t.port))).await?;
    let name = rustls_pki_types::ServerName::try_from(t.host.clone())
        .context("bounces.imap_url: bad host name")?;
    let stream = step("TLS handshake", connector.connect(name, tcp)).await?;
    let mut client = async_imap::Client::new(stream);
    step("greeting", client.read_response())
        .await?
        .context("IMAP server closed the connection before greeting")?;
    let mut session = step("login", async {
        client.login(&t.user, &t.password).await.map_err(|(e, _)| e)
    })
    .await?;
    let folder = b.processed_folder.trim();
    if !folder.is_empty() {
        // Creating a folder that exists fails harmlessly.
        let _ = step("create", session.create(folder)).await;
    }
    read_folder(app, &mut session, &t.mailbox, folder, pass).await?;
    let dmarc = b.dmarc_folder.trim();
    if !dmarc.is_empty() && dmarc != t.mailbox && dmarc != folder {
        read_folder(app, &mut session, dmarc, folder, pass).await?;
    }
    let _ = step("logout", session.logout()).await;
    Ok(())
}

type Session = async_imap::Session<tokio_rustls::client::TlsStream<TcpStream>>;

/// Reads the unseen messages of `mailbox`, moving each handled one to `processed` (if set).
async fn read_folder(
    app: &App,
    session: &mut Session,
    mailbox: &str,
    processed: &str,
    pass: &mut Pass,
) -> anyhow::Result<()> {
    step("select", session.select(mailbox)).await?;
    let mut uids: Vec<u32> = step("search", session.uid_search("UNSEEN"))
        .await?
        .into_iter()
        .collect();
    uids.sort_unstable();
    uids.truncate(PER_PASS);
    for uid in uids {
        let fetched = step("fetch", async {
            let mut s = session
                .uid_fetch(uid.to_string(), "(UID RFC822.SIZE BODY.PEEK[])")
                .await?;
            let mut body = None;
            while let Some(f) = s.next().await {
                let f = f?;
                if f.uid == Some(uid) {
                    let size = f.size.unwrap_or(0) as usize;
                    body = Some(if size > MAX_MAIL_BYTES {
                        Vec::new()
                    } else {
                        f.body().unwrap_or_default().to_vec()
                    });
                }
            }
            Ok::<_, async_imap::error::Error>(body)
        })
        .await?;
        let Some(raw) = fetched else { continue };
        pass.read += 1;
        let flags = match feedback_from_mail(app, &raw, "imap").await {
            Ok(outcome) => {
                match outcome {
                    MailOutcome::Recorded(..) => pass.recorded += 1,
                    MailOutcome::Dmarc(DmarcOutcome::Stored(_)) => pass.dmarc += 1,
                    MailOutcome::Dmarc(DmarcOutcome::Refused(_)) => pass.dmarc_refused += 1,
                    _ => pass.ignored += 1,
                }
                tracing::debug!(uid, %outcome, "bounce mailbox");
                "+FLAGS (\\Seen)"
            }
            Err(e) => {
                // The database away: the message stays unseen for the next pass. Otherwise
                // this one mail cannot be handled, and must not hold up every report behind
                // it: it is flagged for a person and left where it is.
                if app.store.health().await.is_err() {
                    return Err(e);
                }
                tracing::warn!(uid, error = %format!("{e:#}"), "a mail in the bounce mailbox cannot be handled; flagged and set aside");
                app.metrics
                    .bounce_mail_set_aside
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                pass.set_aside += 1;
                "+FLAGS (\\Seen \\Flagged)"
            }
        };
        step("flag", async {
            let mut s = session.uid_store(uid.to_string(), flags).await?;
            while let Some(r) = s.next().await {
                r?;
            }
            Ok::<_, async_imap::error::Error>(())
        })
        .await?;
        if !processed.is_empty() && !flags.contains("Flagged") {
            step("move", session.uid_mv(uid.to_string(), processed)).await?;
        }
    }
    Ok(())
}

/// Reads the mailbox every `bounces.poll_every`, one process per turn.
pub async fn run(app: Arc<App>, mut shutdown: Shutdown) -> anyhow::Result<()> {
    let every = app.settings.bounces.poll_every;
    loop {
        match app
            .store
            .take_feed_turn("imap:bounces", every, now_ms())
            .await
        {
            Ok(true) => match poll_once(&app).await {
                Ok(p) if p.read > 0 => {
                    tracing::info!(
                        read = p.read,
                        recorded = p.recorded,
                        ignored = p.ignored,
                        dmarc = p.dmarc,
                        dmarc_refused = p.dmarc_refused,
                        "bounce mailbox read"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read the bounce mailbox; will retry")
                }
            },
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot take the bounce mailbox's turn")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every.min(Duration::from_secs(5))) => {}
            _ = shutdown.recv() => return Ok(()),
        }
    }
}
