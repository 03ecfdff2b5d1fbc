//! A reader's part of a story: subscribing and confirming through the public pages, being
//! sent a digest, and where the store says a reader stands.

use super::{app::TestApp, mail::confirm_link, smtp::Received};

impl TestApp {
    /// Subscribes and confirms `email` through the public pages, returning its confirmation.
    pub async fn subscribe_and_confirm(&self, email: &str) {
        let before = self.smtp.messages_to(email).len();
        let r = self
            .post_json("/subscribe", serde_json::json!({"email": email}))
            .await;
        assert_eq!(r.status(), 200);
        let msg = self.wait_for_mail_to(email, before + 1).await;
        self.confirm(&confirm_link(&msg)).await;
    }

    /// Opens a confirm link as a reader does: the page, then its button (a POST).
    pub async fn confirm(&self, link: &str) {
        let r = self.http.get(self.local(link)).send().await.unwrap();
        assert_eq!(r.status(), 200, "confirm page {link}");
        let page = r.text().await.unwrap();
        assert!(page.contains("method=\"post\""), "{page}");
        let r = self.http.post(self.local(link)).send().await.unwrap();
        assert_eq!(r.status(), 200, "confirm {link}");
    }

    /// Confirms each reader, sends one digest to all and waits for it: the send's id and
    /// each reader's digest, in order.
    pub async fn send_digest_to(&self, readers: &[&str]) -> (i64, Vec<Received>) {
        for r in readers {
            self.subscribe_and_confirm(r).await;
        }
        self.add_article("https://example.org/1/", "خبر", "نص")
            .await;
        let id = self.send_now().await;
        self.wait_send(id).await;
        let mut msgs = Vec::new();
        for r in readers {
            msgs.push(self.wait_for_mail_to(r, 2).await);
        }
        (id, msgs)
    }

    pub async fn reader_id(&self, email: &str) -> i64 {
        let e = nashra::domain::SubscriberEmail::parse(email).unwrap();
        let id = self.app.store.subscriber_id_by_email(&e).await.unwrap();
        id.unwrap_or_else(|| panic!("no reader {email}"))
    }

    pub async fn status_of(&self, email: &str) -> nashra::store::SubscriberStatus {
        let id = self.reader_id(email).await;
        self.app.store.subscriber(id).await.unwrap().unwrap().status
    }

    /// Imports `emails` as confirmed readers straight into the store (many at once).
    pub async fn import_confirmed(&self, emails: &[String]) {
        let rows: Vec<_> = emails
            .iter()
            .map(|e| {
                (
                    nashra::domain::SubscriberEmail::parse(e).unwrap(),
                    nashra::domain::SubscriberName::default(),
                )
            })
            .collect();
        self.app.store.import(&rows, true, "test").await.unwrap();
    }
}
