//! What this process knows of the digests it sends: each edition's message template, built
//! once and shared by every message of it, and each digest's status, read at most every
//! [`STATUS_TTL`] so that a pause or a cancel (from another process too) is seen within it.
//! A digest that stops sending is forgotten, its templates with it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::{
    delivery::{
        mailer::Mailer,
        message::{MessageSpec, MessageTemplate},
    },
    render::SlotMarkers,
    store::{ALERT_SCHEDULE, Digest, DigestKind, DigestStatus, Store},
};

/// How stale a digest's status may be when deciding to send one of its rows: the most a pause
/// or a cancel can lag in another process.
const STATUS_TTL: Duration = Duration::from_millis(200);

/// A digest made ready to send: headers and bodies encoded once.
pub(crate) struct Prepared {
    pub(crate) template: MessageTemplate,
    pub(crate) digest_id: i64,
    /// When the send began (made, for one that has not started): a warm-up's `max_wait`
    /// counts from it.
    pub(crate) began: i64,
    /// A test send (to editors) is not held by a warm-up.
    pub(crate) test: bool,
    /// An alert's: a warm-up gives it up rather than hold it for tomorrow.
    pub(crate) urgent: bool,
}

pub(super) struct Templates {
    store: Store,
    mailer: Mailer,
    /// By (digest, edition, subject-test variant or -1).
    prepared: Mutex<HashMap<(i64, i64, i64), Arc<Prepared>>>,
    /// Recently read digest statuses: (still sending, when read).
    status: Mutex<HashMap<i64, (bool, Instant)>>,
}

impl Templates {
    pub(super) fn new(store: Store, mailer: Mailer) -> Templates {
        Templates {
            store,
            mailer,
            prepared: Mutex::default(),
            status: Mutex::default(),
        }
    }

    /// The message template of one edition of a digest (0: the digest itself; others: the
    /// renderings for readers who chose sections), built once per process and cached while
    /// it sends.
    pub(super) async fn prepared(
        &self,
        digest_id: i64,
        edition: i64,
        variant: Option<i64>,
    ) -> anyhow::Result<Arc<Prepared>> {
        let key = (digest_id, edition, variant.unwrap_or(-1));
        if let Some(p) = self.prepared.lock().expect("not poisoned").get(&key) {
            return Ok(p.clone());
        }
        let p = Arc::new(self.build(digest_id, edition, variant).await?);
        self.prepared
            .lock()
            .expect("not poisoned")
            .insert(key, p.clone());
        Ok(p)
    }

    /// Builds an edition's template from the stored digest.
    #[tracing::instrument(name = "digest_template", skip(self))]
    async fn build(
        &self,
        digest_id: i64,
        edition: i64,
        variant: Option<i64>,
    ) -> anyhow::Result<Prepared> {
        let mut d: Digest = self
            .store
            .digest(digest_id)
            .await?
            .context("digest vanished")?;
        if edition != 0 {
            let e = self
                .store
                .digest_edition(digest_id, edition)
                .await?
                .context("digest edition vanished")?;
            (d.subject, d.html, d.text) = (e.subject, e.html, e.text);
        }
        // A subject test's sample row carries its own subject; the rest get the winner's,
        // which deciding wrote into the digest and its editions.
        if let Some(v) = variant {
            let subjects: Vec<String> =
                serde_json::from_str(d.test_subjects.as_deref().unwrap_or("[]"))?;
            d.subject = subjects
                .get(v as usize)
                .cloned()
                .context("a row's subject is not among the test's")?;
        }
        let s = &self.mailer.settings;
        let feedback = format!(
            "{}:{}:{}:nashra",
            d.id,
            sanitize_fbl(&d.schedule),
            sanitize_fbl(&s.newsletter.list_id)
        );
        let slots = SlotMarkers::from_key(&d.slot_key);
        // A test send is not in the public archive; its link carries a key that opens it.
        let web_url = if d.kind == DigestKind::Test {
            s.public_url(&format!(
                "/archive/{}?key={}",
                d.id,
                self.mailer.tokens.archive(d.id)
            ))
        } else {
            s.public_url(&format!("/archive/{}", d.id))
        };
        let template = MessageTemplate::new(MessageSpec {
            from: &self.mailer.from,
            reply_to: self.mailer.reply_to(),
            subject: &d.subject,
            html: &d.html,
            text: &d.text,
            list: Some((&s.newsletter.name, &s.newsletter.list_id)),
            feedback_id: Some(feedback),
            slots: Some((&slots, &web_url)),
        });
        tracing::debug!("digest template built");
        Ok(Prepared {
            template,
            digest_id,
            began: d.started_at.unwrap_or(d.created_at),
            test: d.kind == DigestKind::Test,
            urgent: d.schedule == ALERT_SCHEDULE,
        })
    }

    /// Remembers a digest's status as just read; one no longer sending is forgotten here
    /// (its template too: this process may never send it again).
    pub(super) fn forget_status(&self, digest: i64, sending: bool) {
        let mut status = self.status.lock().expect("not poisoned");
        status.insert(digest, (sending, Instant::now()));
        // Old entries go: a process runs for months.
        if status.len() > 1_000 {
            status.retain(|_, (_, at)| at.elapsed() < Duration::from_secs(60));
        }
        drop(status);
        if !sending {
            self.prepared
                .lock()
                .expect("not poisoned")
                .retain(|(d, _, _), _| *d != digest);
        }
    }

    /// Whether `digest` is still sending, as of at most [`STATUS_TTL`] ago (another process
    /// or the admin API may have paused or cancelled it).
    pub(super) async fn active(&self, digest: i64) -> bool {
        if let Some((active, at)) = self.status.lock().expect("not poisoned").get(&digest)
            && at.elapsed() < STATUS_TTL
        {
            return *active;
        }
        let active = match self.store.digest_status(digest).await {
            Ok(s) => s == Some(DigestStatus::Sending),
            Err(_) => true,
        };
        self.forget_status(digest, active);
        active
    }
}

/// A Feedback-ID field: a few safe characters, short.
fn sanitize_fbl(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect()
}
