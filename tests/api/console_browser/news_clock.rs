//! «عاجل» and a local-hour send's waves in Chromium (issue 17): the desk dismisses one
//! alert, sends another and watches it count down and go, leaves a third waiting; the page of
//! a digest that reaches each reader at the slot's hour in their own zone. Screenshots:
//! `alerts.png`, `send-waves.png`.

use std::time::Duration;

use chrono::{Timelike, Utc};
use fantoccini::Locator;
use nashra::store::{DigestOutcome, Role};
use serde_json::json;

use super::{Browser, ONE_BROWSER, readers, screenshots};
use crate::{clock::zone_at_hour, helpers::*};

/// Pushes an urgent article; its alert's id.
async fn push_urgent(t: &TestApp, n: u32, title: &str) -> i64 {
    let r = t
        .admin_post(
            "/api/articles",
            json!({"url": format!("https://example.org/2026/12/{n}/"), "title": title,
                   "summary": "الخبر كما وصل إلى غرفة الأخبار، في سطرين.", "urgent": true}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    t.dir.scalar("SELECT MAX(id) FROM alerts").await
}

/// The page's main column as a PNG in `target/screenshots/`.
async fn shoot_main(b: &Browser, name: &str) {
    let png = b
        .client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .screenshot()
        .await
        .unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Readers' zones, by their id's last digit: where an Arabic newsroom's readers live.
const ZONES: [(&str, &str); 7] = [
    ("0, 1, 2, 3", "Asia/Baghdad"),
    ("4", "Africa/Cairo"),
    ("5", "Asia/Dubai"),
    ("6", "Africa/Casablanca"),
    ("7", "Europe/Berlin"),
    ("8", "America/Detroit"),
    ("9", "Asia/Kolkata"),
];

both_engines!(
    multi_thread,
    the_desk_decides_alerts_and_a_local_hour_send_goes_in_waves,
    |engine| async move {
        let _one = ONE_BROWSER.lock().await;
        // The slot: the last time Kolkata's clock read a whole hour (Kolkata is furthest
        // ahead of the readers' zones, so every other zone's hour is still to come).
        let kolkata: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        let now = Utc::now().with_timezone(&kolkata);
        let slot = now
            .with_minute(0)
            .unwrap()
            .with_second(0)
            .unwrap()
            .with_nanosecond(0)
            .unwrap();
        let t = spawn_at_home(
            engine,
            &format!(
                "[newsletter]\ntimezone = \"Asia/Baghdad\"\n[alerts]\nundo = \"20s\"\n\
                 [[schedules]]\nname = \"morning\"\nlabel = \"نشرة الصباح\"\ncron = \"0 {} * * *\"\n\
                 timezone = \"Asia/Kolkata\"\ndeliver = \"local\"\nsubject = \"نشرة الصباح\"\n",
                slot.hour()
            ),
        )
        .await;
        readers(&t, 300).await;
        for (digits, zone) in ZONES {
            t.dir
                .exec(&format!(
                    "UPDATE subscribers SET timezone = '{zone}' WHERE id % 10 IN ({digits})"
                ))
                .await;
        }
        t.dir
            .exec("UPDATE subscribers SET alerts = 1 WHERE id % 3 <> 0")
            .await;
        for (i, title) in [
            "الحكومة العراقية تعلن خطة جديدة للكهرباء قبل الصيف",
            "معرض بغداد الدولي للكتاب يفتح أبوابه بمشاركة 300 دار نشر",
        ]
        .iter()
        .enumerate()
        {
            t.add_article(&format!("https://example.org/news/{i}"), title, "ملخص")
                .await;
        }
        let out = t
            .app
            .fire_schedule("morning", slot.timestamp_millis())
            .await
            .unwrap();
        let (DigestOutcome::Created { id: digest, .. } | DigestOutcome::Exists(digest)) = out
        else {
            panic!("{out:?}")
        };
        // Readers who joined after it was made: one at dawn (quiet hours end within
        // max_delay), one at night (they do not: the digest brings it).
        for (email, zone) in [
            ("dawn@example.net", zone_at_hour(5)),
            ("dawn2@example.net", zone_at_hour(5)),
            ("night@example.net", zone_at_hour(2)),
        ] {
            t.subscribe_and_confirm(email).await;
            t.dir
                .exec(&format!(
                    "UPDATE subscribers SET alerts = 1, timezone = '{zone}' WHERE email = '{email}'"
                ))
                .await;
        }

        let dismissed = push_urgent(&t, 1, "مصدر: اجتماع طارئ لمجلس الوزراء مساء اليوم").await;
        let sent = push_urgent(&t, 2, "زلزال بقوة 5.8 درجات يضرب شمال العراق").await;
        let waiting = push_urgent(&t, 3, "البرلمان يصوّت الليلة على قانون الموازنة العامة").await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        let b = Browser::start().await;
        b.client.set_window_size(1200, 1400).await.unwrap();
        b.sign_in(&t, "desk@example.org").await;
        assert!(b.text("main").await.contains("أخبار عاجلة تنتظر قرارك: 3"));
        b.click("a[href='/admin/alerts']").await;
        b.assert_rtl().await;
        assert_eq!(b.text("main h1").await, "عاجل");
        let reach = b.text(&format!("#alert-{waiting} .reach")).await;
        for line in [
            "يصل الآن إلى",
            "بعد ساعات الهدوء:",
            "تجاوزوا حدّهم اليومي:",
            "ينتظرون النشرة:",
        ] {
            assert!(reach.contains(line), "{line}: {reach}");
        }

        // «تجاهل» one; «أرسل» another, which counts down beside «تراجع».
        b.click(&format!(
            "form[action='/admin/alerts/{dismissed}/cancel'] button"
        ))
        .await;
        b.wait_text(
            &format!("#alert-{dismissed} .badge"),
            Duration::from_secs(10),
            |s| s == "أُلغي",
        )
        .await;
        b.click(&format!("form[action='/admin/alerts/{sent}/send'] button"))
            .await;
        let counting = format!("#alert-{sent} [data-countdown]");
        let first = b
            .wait_text(&counting, Duration::from_secs(10), |s| s.contains("ثانية"))
            .await;
        shoot_main(&b, "alerts").await;
        let seconds = |s: &str| -> i64 { s.split(' ').next().unwrap().parse().unwrap_or(0) };
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let later = b.text(&counting).await;
        assert!(
            seconds(&later) < seconds(&first),
            "the countdown moves: {first} then {later}"
        );
        assert!(
            b.text(&format!("#alert-{sent}")).await.contains("تراجع"),
            "«تراجع» while it counts down"
        );
        // At zero the page looks again by itself, and shows the alert gone.
        b.wait_text(
            &format!("#alert-{sent} .badge"),
            Duration::from_secs(40),
            |s| s == "أُرسل",
        )
        .await;
        assert_eq!(b.path().await, "/admin/alerts");
        assert_eq!(
            b.text(&format!("#alert-{waiting} .badge")).await,
            "بانتظار القرار"
        );
        let alert_send = t
            .dir
            .scalar(&format!("SELECT digest_id FROM alerts WHERE id = {sent}"))
            .await;
        // Those in their quiet hours get it when those end: the send stays open for them.
        assert!(t.send(alert_send).await.total > 0);
        b.click(&format!(
            "#alert-{sent} a[href='/admin/sends/{alert_send}']"
        ))
        .await;
        assert_eq!(
            b.text("main h1").await,
            "عاجل: زلزال بقوة 5.8 درجات يضرب شمال العراق"
        );
        assert!(b.text("main").await.contains("تنبيه عاجل"));

        // The local-hour send: Kolkata's wave has gone, the others wait for their hour.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while t
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id = {digest} AND state = 'sent'"
            ))
            .await
            < 30
        {
            assert!(tokio::time::Instant::now() < deadline, "Kolkata's wave");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.client
            .goto(&t.url(&format!("/admin/sends/{digest}")))
            .await
            .unwrap();
        let waves = b.text("#waves").await;
        let local_hours = b
            .js("return [...document.querySelectorAll('#waves tbody tr')].map(r => r.children[1].textContent)")
            .await;
        let hour = format!("{:02}:00", slot.hour());
        assert_eq!(local_hours, json!(vec![hour; 7]), "one local hour: {waves}");
        for city in [
            "كلكتا",
            "دبي",
            "بغداد",
            "القاهرة",
            "الدار البيضاء",
            "برلين",
            "ديترويت",
        ] {
            assert!(waves.contains(city), "{city}: {waves}");
        }
        assert_eq!(waves.matches("تنتظر ساعتها").count(), 6, "{waves}");
        shoot_main(&b, "send-waves").await;
        b.client.close().await.unwrap();
    }
);
