//! A send that pauses itself, watched in Chromium (issue 19, part 3): the page open on the
//! send turns to «متوقّف مؤقتاً» and shows the guard's reason without a reload, and the
//! resume button takes over from pause. Screenshot: `send-guard-paused.png`.

use std::time::Duration;

use nashra::store::Role;

use super::{Browser, ONE_BROWSER, readers};
use crate::helpers::{smtp::Fault, *};

both_engines!(
    multi_thread,
    the_page_of_a_send_that_pauses_itself_says_why_as_it_happens,
    |engine| async move {
        let _one = ONE_BROWSER.lock().await;
        // A small minimum and a slow relay, so the page is open before the limit is crossed.
        let t = spawn_at_home(
            engine,
            "[delivery]\nconcurrency = 1\n[delivery.guard]\nmin_delivered = 20\n",
        )
        .await;
        t.smtp.set_delay(Duration::from_millis(120));
        readers(&t, 60).await;
        // One reader in four of the first 24 is refused for good: 25 %, far over 5 %; the
        // rest of the list is sound, so a resumed send finishes.
        for i in (0..24).filter(|i| i % 4 == 1) {
            t.smtp.fault(
                &format!("reader{i}@example.net"),
                Fault::Code(550),
                usize::MAX,
            );
        }
        add_account(&t, "desk@example.org", Role::Editor).await;
        let b = Browser::start().await;
        b.sign_in(&t, "desk@example.org").await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        b.client
            .goto(&t.url(&format!("/admin/sends/{id}")))
            .await
            .unwrap();
        b.wait_text("[data-field=status_label]", Duration::from_secs(10), |s| {
            s == "جارٍ الإرسال"
        })
        .await;
        assert_eq!(
            b.js("return document.querySelector('#guard-stop').hidden")
                .await,
            true
        );
        b.js("window.nashraMark = 'same page'; return null").await;
        b.wait_text("[data-field=status_label]", Duration::from_secs(30), |s| {
            s == "متوقّف مؤقتاً"
        })
        .await;
        let why = b
            .wait_text("#guard-stop", Duration::from_secs(10), |s| {
                s.contains("أوقف الإرسال نفسه: الارتدادات الدائمة")
            })
            .await;
        assert!(why.contains("فوق حد 5٪"), "{why}");
        assert_eq!(b.js("return window.nashraMark || null").await, "same page");
        assert_eq!(
            b.js("return [document.querySelector('form[action$=\"/pause\"]').hidden, document.querySelector('form[action$=\"/resume\"]').hidden]")
                .await,
            serde_json::json!([true, false])
        );
        b.screenshot("send-guard-paused").await;
        // Resumed from the page, the banner goes and the send finishes.
        b.click("form[action$='/resume'] button").await;
        b.wait_text("[data-field=status_label]", Duration::from_secs(60), |s| {
            s == "اكتمل"
        })
        .await;
        assert_eq!(
            b.js("return document.querySelector('#guard-stop').hidden")
                .await,
            true
        );
        assert_eq!(t.smtp.count(), 54, "every reader not refused, once");
    }
);
