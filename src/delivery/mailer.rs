//! What every part of the process shares to send mail, and the one path a message takes to
//! the wire: built for its reader, signed (DKIM), given an envelope whose return path names
//! what it is about, handed to the transport. The dispatcher (digests) and the mail queue
//! (confirmations) both send through here, so the two cannot drift apart.

use std::{borrow::Cow, sync::Arc, time::Duration};

use anyhow::Context;

use super::{
    message::{MessageTemplate, Personal},
    relays::Route,
    send_error::SendError,
    signing::Signing,
    transport::Transport,
};
use crate::{
    config::Settings,
    dkim,
    domain::{Mailbox, Tokens, VerpTarget},
    shutdown::Shutdown,
};

/// How often a relay that did not answer is greeted again, until it does.
const PROBE_AGAIN_EVERY: Duration = Duration::from_secs(30);

/// What every part of the process shares to send mail.
#[derive(Clone)]
pub struct Mailer {
    pub transport: Transport,
    pub from: Mailbox,
    pub settings: Arc<Settings>,
    /// The `[[dkim]]` keys, if any.
    pub signer: Option<Arc<dkim::Signer>>,
    /// The threads that sign with them.
    signing: Option<Signing>,
    /// The process's one token signer (made by `App`): return paths here, the links inside
    /// messages in the dispatcher and the mail queue.
    pub tokens: Arc<Tokens>,
    return_path: Option<(String, String)>,
    unsubscribe_mail: Option<(String, String)>,
}

/// One message for one reader, built, signed and addressed: all that is left is the wire.
pub struct Sealed<'a> {
    pub message_id: String,
    envelope_from: Cow<'a, str>,
    to: &'a str,
    bytes: Vec<u8>,
}

impl Mailer {
    pub fn new(settings: Arc<Settings>, tokens: Arc<Tokens>) -> anyhow::Result<Mailer> {
        let transport = Transport::from_settings(&settings)?;
        let from = Mailbox::parse(&settings.newsletter.from).context("newsletter.from")?;
        let signer = dkim::Signer::from_config(&settings.dkim)?.map(Arc::new);
        let signing = signer.clone().map(Signing::start).transpose()?;
        Ok(Mailer {
            transport,
            from,
            signer,
            signing,
            tokens,
            return_path: settings.return_path_base(),
            unsubscribe_mail: settings.unsubscribe_mail_base(),
            settings,
        })
    }

    /// Says at start-up what receivers will see of the signing: a From domain that no key
    /// aligns with fails DMARC at Gmail, Yahoo and Outlook.com however well the mail is signed.
    pub fn warn_about_alignment(&self) {
        let domain = self.from.email.domain();
        match &self.signer {
            None if self.transport.is_outbox() => {}
            None => tracing::warn!(
                "no [[dkim]] key: the relay must sign with d={domain}, or bulk mail will be refused or junked"
            ),
            Some(s) if !s.aligned(domain) => tracing::warn!(
                from_domain = domain,
                dkim_domains = %s.keys().iter().map(|k| k.domain.as_str()).collect::<Vec<_>>().join(","),
                "the From domain is not aligned with any DKIM domain: DMARC will fail"
            ),
            Some(s) => tracing::info!(
                keys = %s.keys().iter().map(|k| format!("{:?}", k)).collect::<Vec<_>>().join(", "),
                "DKIM signing"
            ),
        }
    }

    /// The Reply-To every message carries, if configured.
    pub fn reply_to(&self) -> Option<&str> {
        let r = &self.settings.newsletter.reply_to;
        (!r.is_empty()).then_some(r.as_str())
    }

    /// The local part bounces come back to (`bounces` unless configured otherwise).
    pub fn return_local(&self) -> &str {
        self.return_path.as_ref().map_or("bounces", |(l, _)| l)
    }

    /// The local part mailed unsubscribes come to (`unsubscribe` unless configured otherwise).
    pub fn unsubscribe_local(&self) -> &str {
        self.unsubscribe_mail
            .as_ref()
            .map_or("unsubscribe", |(l, _)| l)
    }

    /// The envelope sender of a message about `target`: `bounces+<tag>@domain`, so that its
    /// bounce names it; the From address when no bounce mailbox is configured.
    fn envelope_from(&self, target: VerpTarget) -> Cow<'_, str> {
        match &self.return_path {
            Some((local, domain)) => {
                Cow::Owned(format!("{local}+{}@{domain}", self.tokens.verp_tag(target)))
            }
            None => Cow::Borrowed(self.from.email.as_str()),
        }
    }

    /// The `mailto:` unsubscribe address for a reader's unsubscribe token, if offered.
    pub fn unsubscribe_mailto(&self, token: &str) -> Option<String> {
        self.unsubscribe_mail
            .as_ref()
            .map(|(local, domain)| format!("{local}+{token}@{domain}"))
    }

    /// `message` with its DKIM signatures, signed on the signing threads (an RSA signature is
    /// about half a millisecond of CPU, too long for an async worker thread).
    async fn sign(&self, message: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let Some(signing) = &self.signing else {
            return Ok(message);
        };
        signing.sign(message, chrono::Utc::now().timestamp()).await
    }

    /// Builds `template` for one reader, signs it and addresses it; a bounce of it comes back
    /// naming `about`. Fails only if it cannot be signed.
    pub async fn seal<'a>(
        &'a self,
        template: &MessageTemplate,
        reader: &Personal<'a>,
        about: VerpTarget,
    ) -> anyhow::Result<Sealed<'a>> {
        let message_id = template.new_message_id();
        let bytes = self.sign(template.build(reader, &message_id)).await?;
        Ok(Sealed {
            message_id,
            envelope_from: self.envelope_from(about),
            to: reader.to,
            bytes,
        })
    }

    /// Puts a sealed message on the wire through `route`'s relays; `file` names it in an
    /// outbox (no path separators). With it, the relay that answered.
    pub async fn post(
        &self,
        message: Sealed<'_>,
        file: &str,
        route: Route,
    ) -> (Result<(), SendError>, Option<Arc<str>>) {
        self.transport
            .send(
                &message.envelope_from,
                message.to,
                message.bytes,
                file,
                route,
            )
            .await
    }

    /// [`seal`](Self::seal) then [`post`](Self::post), for a message with nothing to check in
    /// between (the dispatcher checks its claim and the reader there). A message that cannot
    /// be signed is a transient failure. Returns the Message-ID sent.
    pub async fn send(
        &self,
        template: &MessageTemplate,
        reader: &Personal<'_>,
        about: VerpTarget,
        file: &str,
    ) -> Result<String, SendError> {
        let sealed = self
            .seal(template, reader, about)
            .await
            .map_err(|e| SendError::Transient(format!("signing failed: {e:#}")))?;
        let message_id = sealed.message_id.clone();
        self.post(sealed, file, Route::Any).await.0?;
        Ok(message_id)
    }

    /// Whether a non-ASCII address can be delivered, as far as is known (see
    /// `Transport::smtputf8`): it never connects.
    pub fn smtputf8(&self) -> Option<bool> {
        self.transport.smtputf8()
    }

    /// Learns what the relay offers (SMTPUTF8) before the first reader needs it: greets it
    /// at start, and again every [`PROBE_AGAIN_EVERY`] while it does not answer, until it does
    /// or the process shuts down.
    pub async fn learn_relay(self, mut shutdown: Shutdown) -> anyhow::Result<()> {
        while !shutdown.is_shutdown() && !self.transport.probe().await {
            tokio::select! {
                _ = tokio::time::sleep(PROBE_AGAIN_EVERY) => {}
                _ = shutdown.recv() => {}
            }
        }
        Ok(())
    }
}
