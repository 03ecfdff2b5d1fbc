//! Where messages go: `.eml` files in an outbox, or an SMTP relay.
//!
//! Both take bytes we built ourselves (see `message`), so what lands in the outbox is exactly
//! what a relay would receive.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    address::Envelope,
    transport::smtp::{
        PoolConfig,
        authentication::Credentials,
        client::{Tls, TlsParameters},
        extension::ClientId,
    },
};

use crate::config::{self, Settings};

/// Why a send did not go through, sorted by what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The server answered 4xx: try again later.
    Transient(String),
    /// The server answered 5xx: this address will not take it.
    Permanent(String),
    /// No answer at all (connection refused, dropped, timed out): the relay is the problem,
    /// not the recipient.
    Connection(String),
}

impl SendError {
    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Transient(_) => "transient",
            SendError::Permanent(_) => "permanent",
            SendError::Connection(_) => "connection",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            SendError::Transient(m) | SendError::Permanent(m) | SendError::Connection(m) => m,
        }
    }
}

#[derive(Clone)]
pub enum Transport {
    Outbox(PathBuf),
    Smtp(Arc<AsyncSmtpTransport<Tokio1Executor>>),
}

impl Transport {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Transport> {
        match settings.delivery.transport {
            config::Transport::Outbox => {
                let dir = settings.delivery.outbox_dir.clone();
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create outbox {}", dir.display()))?;
                Ok(Transport::Outbox(dir))
            }
            config::Transport::Smtp => {
                let s = &settings.smtp;
                let tls =
                    || TlsParameters::new(s.host.clone()).context("smtp.host: TLS parameters");
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    .port(s.port)
                    .timeout(Some(s.timeout))
                    .hello_name(ClientId::Domain(s.helo_name.clone()))
                    // Idle connections kept for reuse; how many are *in flight* is bounded by
                    // the dispatcher's semaphore, not by this.
                    .pool_config(
                        PoolConfig::new()
                            .max_size(settings.delivery.concurrency as u32)
                            .idle_timeout(Duration::from_secs(60)),
                    );
                b = match s.tls {
                    config::Tls::None => b.tls(Tls::None),
                    config::Tls::Starttls => b.tls(Tls::Required(tls()?)),
                    config::Tls::Tls => b.tls(Tls::Wrapper(tls()?)),
                };
                if !s.username.is_empty() {
                    b = b.credentials(Credentials::new(s.username.clone(), s.password.clone()));
                }
                Ok(Transport::Smtp(Arc::new(b.build())))
            }
        }
    }

    /// Sends one message. `name` names the outbox file (no path separators).
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        bytes: &[u8],
        name: &str,
    ) -> Result<(), SendError> {
        match self {
            Transport::Outbox(dir) => {
                let path = dir.join(format!("{name}.eml"));
                let tmp = dir.join(format!(".{name}.tmp"));
                let write = async {
                    tokio::fs::write(&tmp, bytes).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                write
                    .await
                    .map_err(|e| SendError::Transient(format!("outbox write failed: {e}")))
            }
            Transport::Smtp(t) => {
                let env = Envelope::new(
                    Some(
                        from.parse()
                            .map_err(|e| SendError::Permanent(format!("bad sender: {e}")))?,
                    ),
                    vec![
                        to.parse()
                            .map_err(|e| SendError::Permanent(format!("bad recipient: {e}")))?,
                    ],
                )
                .map_err(|e| SendError::Permanent(format!("bad envelope: {e}")))?;
                match t.send_raw(&env, bytes).await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(classify(&e)),
                }
            }
        }
    }

    pub fn is_outbox(&self) -> bool {
        matches!(self, Transport::Outbox(_))
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let msg = error_text(e);
    if e.is_permanent() {
        SendError::Permanent(msg)
    } else if e.is_transient() {
        SendError::Transient(msg)
    } else {
        SendError::Connection(msg)
    }
}

/// The server's reply ("550 5.1.1 no such user") when there was one, else the error chain.
fn error_text(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    // Replies can echo the address; keep the log-safe length bounded.
    s.chars().take(500).collect()
}
