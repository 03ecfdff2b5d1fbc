//! «السمعة» in Chromium: the DMARC reports of Google, Outlook.com and Yahoo as the page shows
//! them, right to left, at desktop width and on a phone without sideways scrolling.
//! Screenshot: `reputation.png`.

use nashra::{bounces::feedback_from_mail, store::Role};

use super::{Browser, ONE_BROWSER};
use crate::{
    dmarc::{google, microsoft, yahoo},
    helpers::*,
};

both_engines!(
    multi_thread,
    the_reputation_page_reads_right_to_left_on_a_phone_too,
    |engine| async move {
        let _one = ONE_BROWSER.lock().await;
        let t = spawn_at_home(engine, "").await;
        for mail in [google("10572418493827163540", 2), microsoft(), yahoo()] {
            feedback_from_mail(&t.app, &mail, "file").await.unwrap();
        }
        add_account(&t, "desk@example.org", Role::Viewer).await;
        let b = Browser::start().await;
        b.sign_in(&t, "desk@example.org").await;
        b.click("a[href='/admin/reputation']").await;
        assert_eq!(b.text("main h1").await, "السمعة");
        assert_eq!(b.text("#pass-rate").await, "91.5%");
        b.assert_rtl().await;
        b.screenshot("reputation").await;
        b.client.set_window_size(390, 844).await.unwrap();
        b.client.refresh().await.unwrap();
        let overflow = b
            .js("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_f64().unwrap() <= 1.0,
            "no sideways scrolling on a phone: {overflow}"
        );
        b.assert_rtl().await;
        b.client.close().await.unwrap();
    }
);
