//! Where messages go: `.eml` files in an outbox, or an SMTP relay.
//!
//! Both take bytes we built ourselves (see `message`), so what lands in the outbox is exactly
//! what a relay would receive.

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use lettre::address::Envelope;

use super::{
    relays::{Relays, Route},
    send_error::SendError,
};
use crate::config::{self, Settings};

#[derive(Clone)]
pub enum Transport {
    Outbox(PathBuf),
    Smtp(Arc<Relays>),
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
            config::Transport::Smtp => Ok(Transport::Smtp(Arc::new(Relays::new(settings)))),
        }
    }

    /// Sends one message through `route`'s relays (the outbox takes every route). `name`
    /// names the outbox file (no path separators). With it, the relay that answered.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        bytes: Vec<u8>,
        name: &str,
        route: Route,
    ) -> (Result<(), SendError>, Option<Arc<str>>) {
        match self {
            Transport::Outbox(_) => (self.write_outbox(bytes, name).await, None),
            Transport::Smtp(relays) => match envelope(from, to) {
                Ok(env) => relays.send(&env, bytes, route).await,
                Err(e) => (Err(e), None),
            },
        }
    }

    async fn write_outbox(&self, bytes: Vec<u8>, name: &str) -> Result<(), SendError> {
        match self {
            Transport::Outbox(dir) => {
                let path = dir.join(format!("{name}.eml"));
                let tmp = dir.join(format!(".{name}.tmp"));
                let write = async {
                    tokio::fs::write(&tmp, &bytes).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                write
                    .await
                    .map_err(|e| SendError::Transient(format!("outbox write failed: {e}")))
            }
            Transport::Smtp(_) => Err(SendError::Permanent("not an outbox".into())),
        }
    }

    /// The relays, when sending over SMTP.
    pub fn relays(&self) -> Option<&Relays> {
        match self {
            Transport::Outbox(_) => None,
            Transport::Smtp(r) => Some(r),
        }
    }

    pub fn is_outbox(&self) -> bool {
        matches!(self, Transport::Outbox(_))
    }

    /// Whether non-ASCII addresses can be delivered: the outbox takes anything; a relay must
    /// have offered SMTPUTF8 at its last greeting. `None` while the relay has not been heard
    /// from (see [`Transport::probe`]). Only reads what is known: it never connects.
    pub fn smtputf8(&self) -> Option<bool> {
        match self {
            Transport::Outbox(_) => Some(true),
            Transport::Smtp(p) => p.smtputf8(),
        }
    }

    /// Greets the relay once, so what it offers (SMTPUTF8) is known before a reader needs
    /// it; the connection is kept for the first message. Whether it is known now.
    pub async fn probe(&self) -> bool {
        match self {
            Transport::Outbox(_) => true,
            Transport::Smtp(p) => p.probe().await,
        }
    }
}

fn envelope(from: &str, to: &str) -> Result<Envelope, SendError> {
    Envelope::new(
        Some(
            from.parse()
                .map_err(|e| SendError::Permanent(format!("bad sender: {e}")))?,
        ),
        vec![
            to.parse()
                .map_err(|e| SendError::Permanent(format!("bad recipient: {e}")))?,
        ],
    )
    .map_err(|e| SendError::Permanent(format!("bad envelope: {e}")))
}
