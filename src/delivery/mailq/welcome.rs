//! The welcome (`newsletter.welcome`), as the mail queue sends it: rendered when it goes out,
//! from the reader as they are then (their name, what they chose, their zone) and the latest
//! published digest. List mail like a digest: List-Id, the reader's own one-click
//! List-Unsubscribe, their preferences link; a bounce of it counts against the reader.

use chrono::Utc;

use super::MailQueue;
use crate::{
    delivery::{
        message::{MessageSpec, MessageTemplate, Personal},
        send_error::SendError,
    },
    domain::{SubscriberName, VerpTarget},
    render::WelcomeReader,
    store::QueuedMail,
};

impl MailQueue {
    /// Sends `m`, a welcome, to `to`. `Err(None)`: nobody to welcome any more.
    pub(super) async fn welcome(&self, m: &QueuedMail, to: &str) -> Result<(), Option<SendError>> {
        let transient = |e: anyhow::Error| Some(SendError::Transient(format!("{e:#}")));
        let id = m.subscriber_id;
        let (Some(row), Some((_, choice)), Some(clock)) = (
            self.store.subscriber(id).await.map_err(transient)?,
            self.store.reader_choice(id).await.map_err(transient)?,
            self.store.reader_clock(id).await.map_err(transient)?,
        ) else {
            return Err(None);
        };
        let latest = self.store.archive(1, 0).await.map_err(transient)?;
        let settings = &self.mailer.settings;
        let tokens = &self.mailer.tokens;
        let token = tokens.unsubscribe(id);
        let unsubscribe = settings.public_url(&format!("/unsubscribe/{token}"));
        let preferences = settings.public_url(&format!("/preferences/{}", tokens.preferences(id)));
        // Names stored before names were checked get the same check here.
        let name = SubscriberName::sanitize(&row.name);
        let reader = WelcomeReader {
            name: &name,
            choice: &choice,
            zone: clock
                .zone
                .map_or_else(|| settings.newsroom_tz(), |z| z.tz()),
            latest: latest.first().map(|d| {
                (
                    d.subject.as_str(),
                    settings.public_url(&format!("/archive/{}", d.id)),
                )
            }),
            preferences_url: &preferences,
            unsubscribe_url: &unsubscribe,
        };
        let (subject, html, text) = self
            .renderer
            .welcome(settings, &reader)
            .map_err(|e| Some(SendError::Transient(format!("render failed: {e:#}"))))?;
        let n = &settings.newsletter;
        let template = MessageTemplate::new(MessageSpec {
            from: &self.mailer.from,
            reply_to: self.mailer.reply_to(),
            subject: &subject,
            html: &html,
            text: &text,
            list: Some((&n.name, &n.list_id)),
            // `list_id` is checked to be letters, digits, dots and dashes.
            feedback_id: Some(format!("welcome:{}:nashra", n.list_id)),
            slots: None,
        });
        let mailto = self.mailer.unsubscribe_mailto(&token);
        let personal = Personal {
            to,
            unsubscribe_url: Some(&unsubscribe),
            unsubscribe_mailto: mailto.as_deref(),
            name: "",
            preferences_url: Some(&preferences),
            click: "",
            date: Utc::now(),
        };
        self.mailer
            .send(
                &template,
                &personal,
                VerpTarget::Subscriber(id),
                &format!("welcome-{}", m.id),
            )
            .await
            .map(drop)
            .map_err(Some)
    }
}
