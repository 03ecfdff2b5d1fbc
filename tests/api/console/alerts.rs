//! The news clock and the reader's clock in the console (issue 17): an urgent article waits on
//! «عاجل» with whom it reaches; «أرسل» counts down beside «تراجع»; a viewer sees it all and
//! decides nothing; a local-hour send's page shows its waves.

use std::time::Duration;

use chrono::{Timelike, Utc};
use nashra::store::{DigestOutcome, Role};
use reqwest::StatusCode;
use serde_json::json;

use crate::{clock::zone_at_hour, helpers::*};

/// A confirmed reader who takes alerts, in `zone`.
async fn alert_reader(t: &TestApp, email: &str, zone: &str) {
    t.subscribe_and_confirm(email).await;
    t.dir
        .exec(&format!(
            "UPDATE subscribers SET alerts = 1, timezone = '{zone}' WHERE email = '{email}'"
        ))
        .await;
}

/// Pushes an urgent article; its alert's id.
async fn push_urgent(t: &TestApp, n: u32, title: &str) -> i64 {
    let r = t
        .admin_post(
            "/api/articles",
            json!({"url": format!("https://example.org/urgent/{n}/"), "title": title,
                   "summary": "التفاصيل الأولى", "urgent": true}),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    t.dir.scalar("SELECT MAX(id) FROM alerts").await
}

/// Alert messages to `email`.
fn alerts_to(t: &TestApp, email: &str) -> usize {
    t.smtp
        .messages_to(email)
        .iter()
        .filter(|m| parse(m).subject().unwrap_or_default().starts_with("عاجل"))
        .count()
}

/// Reloads «عاجل» until `ok` holds of it.
async fn wait_page(s: &Session<'_>, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = s.get("/admin/alerts").await;
        assert_eq!(status, StatusCode::OK);
        if ok(&page) {
            return page;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_engines!(
    an_editor_sends_an_alert_from_the_console_and_takes_another_back,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[alerts]\nundo = \"3s\"\nquiet_hours = \"23:00-07:00\"\nmax_delay = \"3h\"\n",
        )
        .await;
        let (day, night) = (zone_at_hour(12), zone_at_hour(2));
        let (a, b, q, n) = (
            "awake@example.com",
            "also-awake@example.com",
            "asleep@example.com",
            "no-alerts@example.com",
        );
        alert_reader(&t, a, &day).await;
        alert_reader(&t, b, &day).await;
        alert_reader(&t, q, &night).await;
        t.subscribe_and_confirm(n).await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        let s = sign_in(&t, "desk@example.org").await;

        // The first waits for the desk, with whom it reaches.
        let first = push_urgent(&t, 1, "إعصار في الغرب").await;
        let (_, dashboard) = s.get("/admin").await;
        assert!(
            dashboard.contains("أخبار عاجلة تنتظر قرارك: 1"),
            "{dashboard}"
        );
        let (status, page) = s.get("/admin/alerts").await;
        assert_eq!(status, StatusCode::OK);
        for text in [
            "إعصار في الغرب",
            "href=\"https://example.org/urgent/1/\"",
            "بانتظار القرار",
            "يصل الآن إلى قارئين",
            "بعد ساعات الهدوء: 0",
            "تجاوزوا حدّهم اليومي: 0",
            "ينتظرون النشرة: 1",
            "aria-current=\"page\">عاجل<",
            "تجاهل",
        ] {
            assert!(page.contains(text), "{text}: {page}");
        }

        // «أرسل»: a countdown and «تراجع» until the undo window ends…
        let back = s.post_to(&format!("/admin/alerts/{first}/send"), &[]).await;
        assert_eq!(back, "/admin/alerts?done=alert_sent");
        let (_, page) = s.get(&back).await;
        assert!(page.contains("يُرسل بعد"), "{page}");
        assert!(page.contains("data-countdown=\""), "{page}");
        assert!(
            page.contains(&format!("action=\"/admin/alerts/{first}/cancel\""))
                && page.contains(">تراجع<"),
            "{page}"
        );
        assert!(page.contains("<span dir=\"ltr\">desk@example.org</span>"));
        // …and «تراجع» within it sends nothing to anyone.
        let back = s
            .post_to(&format!("/admin/alerts/{first}/cancel"), &[])
            .await;
        assert_eq!(back, "/admin/alerts?done=alert_cancelled");
        let (_, page) = s.get(&back).await;
        assert!(page.contains("أُلغي التنبيه: لن يصل إلى أحد."), "{page}");
        assert!(page.contains("أُلغي<"), "{page}");
        assert!(!page.contains("data-countdown"), "{page}");
        tokio::time::sleep(Duration::from_secs(4)).await;
        for r in [a, b, q, n] {
            assert_eq!(alerts_to(&t, r), 0, "{r}");
        }
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM digests WHERE schedule = '!alert'")
                .await,
            0
        );
        // A cancelled alert stays cancelled: the console says so in Arabic.
        let r = s.post(&format!("/admin/alerts/{first}/send"), &[]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("أُلغي هذا التنبيه من قبل."));

        // The second goes: the readers awake get it, its send has a page of its own.
        let second = push_urgent(&t, 2, "زلزال في الشمال").await;
        s.post_to(&format!("/admin/alerts/{second}/send"), &[])
            .await;
        let page = wait_page(&s, |p| {
            p.contains(&format!("<tr id=\"alert-{second}\" class=\"alert-sent\">"))
        })
        .await;
        let digest = t
            .dir
            .scalar(&format!("SELECT digest_id FROM alerts WHERE id = {second}"))
            .await;
        assert!(
            page.contains(&format!("href=\"/admin/sends/{digest}\"")),
            "{page}"
        );
        assert_eq!(t.wait_send(digest).await.status, "done");
        assert_eq!((alerts_to(&t, a), alerts_to(&t, b)), (1, 1));
        assert_eq!((alerts_to(&t, q), alerts_to(&t, n)), (0, 0));
        let (_, send) = s.get(&format!("/admin/sends/{digest}")).await;
        assert!(send.contains("<h1>عاجل: زلزال في الشمال</h1>"), "{send}");
        assert!(send.contains("تنبيه عاجل"), "{send}");
        for path in ["/admin/sends", "/admin", "/admin/audit"] {
            let (_, p) = s.get(path).await;
            assert!(!p.contains("!alert"), "{path} names the schedule raw: {p}");
        }
        let (_, sends) = s.get("/admin/sends").await;
        assert!(sends.contains("<td>تنبيه عاجل</td>"), "{sends}");
        let (_, audit) = s.get("/admin/audit").await;
        for text in [
            "إرسال تنبيه عاجل",
            "إلغاء تنبيه عاجل",
            &format!("التنبيه رقم {first}"),
        ] {
            assert!(audit.contains(text), "{text}: {audit}");
        }
    }
);

both_engines!(
    a_viewer_sees_the_alerts_and_their_reach_but_cannot_decide,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[alerts]\ncategories = [\"عاجل\"]\nquiet_hours = \"\"\n",
        )
        .await;
        alert_reader(&t, "reader@example.com", "Asia/Baghdad").await;
        add_account(&t, "viewer@example.org", Role::Viewer).await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        let v = sign_in(&t, "viewer@example.org").await;
        // Nothing urgent yet: the page says how an article becomes so.
        let (_, empty) = v.get("/admin/alerts").await;
        for text in [
            "لا أخبار عاجلة بعد",
            "<code dir=\"ltr\">\"urgent\": true</code>",
            "alerts.categories",
            "«عاجل»",
        ] {
            assert!(empty.contains(text), "{text}: {empty}");
        }

        let id = push_urgent(&t, 1, "انفجار في الميناء").await;
        let (_, page) = v.get("/admin/alerts").await;
        assert!(page.contains("انفجار في الميناء"), "{page}");
        assert!(page.contains("يصل الآن إلى قارئ واحد"), "{page}");
        assert!(!page.contains("action=\"/admin/alerts/"), "{page}");
        for action in ["send", "cancel"] {
            let r = v.post(&format!("/admin/alerts/{id}/{action}"), &[]).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{action}");
            assert!(r.text().await.unwrap().contains("ليست لديك الصلاحية"));
        }
        // An editor's session, but a request from another site: refused too.
        let e = sign_in(&t, "desk@example.org").await;
        let r = t
            .http
            .post(t.url(&format!("/admin/alerts/{id}/send")))
            .header(reqwest::header::COOKIE, format!("{COOKIE}={}", e.cookie))
            .header("Origin", "https://elsewhere.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let (_, page) = e.get("/admin/alerts").await;
        assert!(page.contains("بانتظار القرار"), "{page}");
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM alerts WHERE status = 'waiting'")
                .await,
            1
        );
        let log = audit_actions(&t).await;
        assert!(
            !log.iter()
                .any(|(_, action, _, _)| action.starts_with("alert_"))
        );
    }
);

both_engines!(
    a_local_hour_send_page_shows_its_waves,
    |engine| async move {
        // The slot is now in Kolkata, furthest ahead of the readers' zones: its readers get
        // the digest at once, the others at the same hour of their own day.
        let slot = Utc::now()
            .with_second(0)
            .unwrap()
            .with_nanosecond(0)
            .unwrap();
        let kolkata: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        let local = slot.with_timezone(&kolkata);
        let (h, m) = (local.hour(), local.minute());
        let t = spawn_app_with(
            engine,
            &format!(
                "[[schedules]]\nname = \"morning\"\nlabel = \"الصباحية\"\ncron = \"{m} {h} * * *\"\n\
                 timezone = \"Asia/Kolkata\"\ndeliver = \"local\"\nsubject = \"نشرة الصباح\"\n"
            ),
        )
        .await;
        let readers = [
            ("kolkata@example.com", "Asia/Kolkata"),
            ("dubai@example.com", "Asia/Dubai"),
            ("tbilisi@example.com", "Asia/Tbilisi"),
            ("baghdad@example.com", "Asia/Baghdad"),
            ("baghdad2@example.com", "Asia/Baghdad"),
            ("casablanca@example.com", "Africa/Casablanca"),
        ];
        for (email, zone) in readers {
            t.subscribe_and_confirm(email).await;
            t.dir
                .exec(&format!(
                    "UPDATE subscribers SET timezone = '{zone}' WHERE email = '{email}'"
                ))
                .await;
        }
        t.add_article("https://example.org/a/1", "خبر الصباح", "ملخص")
            .await;
        let out = t
            .app
            .fire_schedule("morning", slot.timestamp_millis())
            .await
            .unwrap();
        // The scheduler may have fired the slot itself; either way it is one send.
        let (DigestOutcome::Created { id, .. } | DigestOutcome::Exists(id)) = out else {
            panic!("{out:?}")
        };
        t.wait_for_mail_to("kolkata@example.com", 2).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while t
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state = 'sent'"
            ))
            .await
            < 1
        {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(t.smtp.messages_to("dubai@example.com").len(), 1, "not yet");

        add_account(&t, "viewer@example.org", Role::Viewer).await;
        let s = sign_in(&t, "viewer@example.org").await;
        let (status, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let waves = &page[page.find("id=\"waves\"").expect("a table of waves")..];
        let hour = format!("<td>{h:02}:{m:02}</td>");
        assert_eq!(waves.matches(&hour).count(), 5, "one local hour: {waves}");
        // Earliest first; cities by their Arabic names, other zones by their IANA name.
        let order: Vec<usize> = [
            "<span title=\"Asia/Kolkata\">كلكتا</span>",
            "<span title=\"Asia/Dubai\">دبي</span>",
            "<span dir=\"ltr\">Asia/Tbilisi</span>",
            "<span title=\"Asia/Baghdad\">بغداد</span>",
            "<span title=\"Africa/Casablanca\">الدار البيضاء</span>",
        ]
        .iter()
        .map(|z| waves.find(z).unwrap_or_else(|| panic!("{z}: {waves}")))
        .collect();
        assert!(order.is_sorted(), "{order:?}");
        let baghdad = &waves[order[3]..order[4]];
        assert!(baghdad.contains("<td>2</td>"), "two readers: {baghdad}");
        assert!(waves[..order[1]].contains("اكتملت"), "{waves}");
        assert_eq!(waves.matches("تنتظر ساعتها").count(), 4, "{waves}");
        assert!(page.contains("الصباحية"), "{page}");
        assert!(
            page.contains("مع آخر موجة"),
            "it ends with the last wave: {page}"
        );
        // A send of the same schedule started by hand goes at once, in no waves.
        t.add_article("https://example.org/a/2", "خبر آخر", "ملخص")
            .await;
        let once = t.send_now().await;
        let (_, page) = s.get(&format!("/admin/sends/{once}")).await;
        assert!(!page.contains("id=\"waves\""), "{page}");
    }
);
