//! The welcome (issue 18, `newsletter.welcome`): a reader who confirms gets one welcome
//! message, whatever they click afterwards and however often they leave and come back; a
//! reader an import brought gets none; a relay outage delays it and never loses it.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{smtp::Received, *};

const WELCOME: &str = "[newsletter]\nwelcome = true\n";

/// Messages to `email` that are welcomes.
fn welcomes_to(t: &TestApp, email: &str) -> Vec<Received> {
    t.smtp
        .messages_to(email)
        .into_iter()
        .filter(|m| parse(m).subject().is_some_and(|s| s.starts_with("أهلاً بك")))
        .collect()
}

/// Waits for `email`'s first welcome.
async fn first_welcome(t: &TestApp, email: &str) -> Received {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(m) = welcomes_to(t, email).into_iter().next() {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no welcome to {email}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn html(m: &Received) -> String {
    parse(m).body_html(0).unwrap().into_owned()
}

fn text(m: &Received) -> String {
    parse(m).body_text(0).unwrap().into_owned()
}

both_engines!(
    a_reader_who_confirms_is_welcomed_once_whatever_they_click_later,
    |engine| async move {
        let t = spawn_app_with(engine, WELCOME).await;
        // The first reader confirms before any digest was sent: their welcome says the first
        // one comes in time.
        t.subscribe_and_confirm("first@example.com").await;
        let m = first_welcome(&t, "first@example.com").await;
        assert!(
            text(&m).contains("ستصلك أول نشرة في موعدها"),
            "{}",
            text(&m)
        );
        t.add_article("https://example.org/1/", "خبر اليوم", "نص")
            .await;
        let digest = t.send_now().await;
        t.wait_send(digest).await;

        t.subscribe_and_confirm("sara@example.com").await;
        let m = first_welcome(&t, "sara@example.com").await;
        // List mail, right to left, with what the reader chose and when it comes.
        let report = check_eml(&m);
        assert!(report.contains(" 0 failed"), "{report}");
        for rtl in ["R6", "R7", "R17", "T4"] {
            assert!(report.contains(&format!("PASS {rtl} ")), "{rtl}: {report}");
        }
        assert_eq!(
            header(&m, "List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click"
        );
        assert!(header(&m, "List-Id").contains("<digest.example.org>"));
        let unsubscribe = unsubscribe_link(&m);
        assert!(unsubscribe.starts_with(&format!("{PUBLIC}/unsubscribe/")));
        let h = html(&m);
        assert!(h.contains("<html lang=\"ar\" dir=\"rtl\">"), "{h}");
        assert!(h.contains("يومية"), "{h}");
        assert!(h.contains("كل يوم 7:00 صباحاً بتوقيت بغداد"), "{h}");
        assert!(h.contains(&format!("{PUBLIC}/preferences/")), "{h}");
        assert!(h.contains(&format!("{PUBLIC}/archive/{digest}")), "{h}");
        assert!(h.contains(&unsubscribe), "{h}");
        let x = text(&m);
        assert!(x.contains("كل يوم 7:00 صباحاً بتوقيت بغداد"), "{x}");
        assert!(x.contains(&format!("{PUBLIC}/preferences/")), "{x}");
        assert!(x.contains(&unsubscribe), "{x}");

        // The confirm link again, opened and its button pressed: already confirmed.
        let link = t.local(&confirm_link(&t.smtp.messages_to("sara@example.com")[0]));
        assert_eq!(t.http.get(&link).send().await.unwrap().status(), 200);
        assert_eq!(t.http.post(&link).send().await.unwrap().status(), 200);
        // Leaving by the welcome's own one-click link, then coming back and confirming again.
        let r = t
            .http
            .post(t.local(&unsubscribe))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let before = t.smtp.messages_to("sara@example.com").len();
        t.post_json("/subscribe", json!({"email": "sara@example.com"}))
            .await;
        let again = t.wait_for_mail_to("sara@example.com", before + 1).await;
        t.confirm(&confirm_link(&again)).await;
        assert_eq!(
            t.status_of("sara@example.com").await,
            nashra::store::SubscriberStatus::Confirmed
        );
        // Give a second welcome every chance to arrive: none does.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(welcomes_to(&t, "sara@example.com").len(), 1);
        assert_eq!(welcomes_to(&t, "first@example.com").len(), 1);
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM mail_queue WHERE kind = 'welcome'")
                .await,
            2
        );
    }
);

both_engines!(
    a_reader_an_import_brought_is_never_welcomed,
    |engine| async move {
        let t = spawn_app_with(engine, WELCOME).await;
        let actor = nashra::app::Actor::cli();
        let csv = "email,name\nsaved@example.com,سارة\n";
        let r = t
            .app
            .import_csv(&actor, std::io::Cursor::new(csv), true, "")
            .await
            .unwrap();
        assert_eq!(r.added, 1);
        // Imported as waiting for confirmation, then signing up and confirming themselves:
        // still a reader the newsroom brought over, not a new one.
        let csv = "email,name\nmoved@example.com,عمر\n";
        let r = t
            .app
            .import_csv(&actor, std::io::Cursor::new(csv), false, "old-list")
            .await
            .unwrap();
        assert_eq!(r.added, 1);
        t.subscribe_and_confirm("moved@example.com").await;
        // A reader from the form, confirmed last: once their welcome is in, the queue has
        // passed over the others.
        t.subscribe_and_confirm("new@example.com").await;
        first_welcome(&t, "new@example.com").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(t.smtp.messages_to("saved@example.com").is_empty());
        assert_eq!(
            t.status_of("moved@example.com").await,
            nashra::store::SubscriberStatus::Confirmed
        );
        assert!(welcomes_to(&t, "moved@example.com").is_empty());
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM mail_queue WHERE kind = 'welcome'")
                .await,
            1
        );
    }
);

both_engines!(
    a_welcome_outlives_a_relay_outage_and_a_restart,
    |engine| async move {
        let t = spawn_app_with(engine, WELCOME).await;
        t.post_json("/subscribe", json!({"email": "patient@example.com"}))
            .await;
        let confirmation = t.wait_for_mail_to("patient@example.com", 1).await;
        // The relay goes down before the reader confirms: the welcome waits in the queue.
        t.smtp.go_down();
        t.confirm(&confirm_link(&confirmation)).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(t.smtp.messages_to("patient@example.com").len(), 1);
        assert_eq!(
            t.dir
                .scalar(
                    "SELECT COUNT(*) FROM mail_queue WHERE kind = 'welcome' AND state IN ('pending', 'sending')"
                )
                .await,
            1
        );
        // The process restarts before the relay is back; then it is.
        let (smtp, dir) = t.stop().await;
        smtp.come_back().await;
        let t = spawn_on(smtp, dir, WELCOME).await;
        let m = first_welcome(&t, "patient@example.com").await;
        assert!(check_eml(&m).contains(" 0 failed"));
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(welcomes_to(&t, "patient@example.com").len(), 1);
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM mail_queue WHERE kind = 'welcome' AND state = 'sent'")
                .await,
            1
        );
    }
);
