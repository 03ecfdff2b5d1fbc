//! The news clock and the reader's clock (issue 17): breaking-news alerts within each
//! reader's budget and quiet hours, never the same article twice, alerts through a closed
//! sending window, and digests at each reader's local hour.

use std::time::Duration;

use chrono::{Timelike, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, check_eml, header, parse, smtp::Received, spawn_app_with};

/// A fixed-offset zone where the local hour is `hour` now (minutes as UTC's).
pub fn zone_at_hour(hour: i64) -> String {
    let utc = Utc::now().hour() as i64;
    let mut offset = (hour - utc).rem_euclid(24);
    if offset > 14 {
        offset -= 24;
    }
    match offset {
        0 => "Etc/UTC".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

impl TestApp {
    /// A confirmed reader who takes alerts, in `zone`, with `per_day` alerts at most (the
    /// configured default when `None`).
    async fn alert_reader(&self, email: &str, zone: &str, per_day: Option<i64>) {
        self.subscribe_and_confirm(email).await;
        let per_day = per_day.map_or("NULL".into(), |n| n.to_string());
        self.dir
            .exec(&format!(
                "UPDATE subscribers SET alerts = 1, timezone = '{zone}', alerts_per_day = {per_day}
                 WHERE email = '{email}'"
            ))
            .await;
    }

    async fn push_urgent(&self, n: u32, title: &str) -> Value {
        let r = self
            .admin_post(
                "/api/articles",
                json!({"url": format!("https://example.org/urgent/{n}/"), "title": title,
                       "summary": "التفاصيل الأولى", "urgent": true}),
            )
            .await;
        assert!(r.status().is_success(), "{}", r.status());
        let alerts: Value = self.admin_get("/api/alerts").await;
        let a = alerts["alerts"][0].clone();
        assert_eq!(a["title"], title, "{alerts}");
        a
    }

    /// «أرسل» through the API, then waits for the alert's send to finish.
    async fn send_alert_and_wait(&self, alert: &Value) -> i64 {
        let id = alert["id"].as_i64().unwrap();
        let r = self
            .admin_post(&format!("/api/alerts/{id}/send"), json!({}))
            .await;
        assert_eq!(r.status(), 200);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let digest = loop {
            let alerts: Value = self.admin_get("/api/alerts").await;
            let a = alerts["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["id"] == id)
                .unwrap()
                .clone();
            if let Some(d) = a["digest_id"].as_i64() {
                break d;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "alert {id} never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let done = self.wait_send(digest).await;
        assert_eq!(done.status, "done", "{done:?}");
        digest
    }

    /// Messages to `email` whose subject starts with «عاجل».
    fn alerts_to(&self, email: &str) -> Vec<Received> {
        self.smtp
            .messages_to(email)
            .into_iter()
            .filter(|m| subject(m).starts_with("عاجل"))
            .collect()
    }

    /// Digests to `email` (not the confirmation, not alerts).
    fn digests_to(&self, email: &str) -> Vec<Received> {
        self.smtp
            .messages_to(email)
            .into_iter()
            .filter(|m| subject(m).starts_with("نشرة"))
            .collect()
    }
}

fn subject(m: &Received) -> String {
    parse(m).subject().unwrap_or_default().to_owned()
}

fn text(m: &Received) -> String {
    parse(m).body_text(0).unwrap().into_owned()
}

fn reach(alert: &Value) -> (i64, i64, i64, i64) {
    let r = &alert["reach"];
    let n = |k: &str| r[k].as_i64().unwrap_or(-1);
    (n("now"), n("later"), n("over_budget"), n("held"))
}

both_engines!(
    alerts_reach_readers_within_their_budget_and_digests_leave_them_out,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[alerts]\nundo = \"1s\"\nmax_per_day = 3\nquiet_hours = \"23:00-07:00\"\nmax_delay = \"3h\"\n",
        )
        .await;
        let day = zone_at_hour(12);
        // 02:xx there: quiet until 07:00, more than max_delay away.
        let night = zone_at_hour(2);
        let (a, c, q, b) = (
            "awake@example.com",
            "one-a-day@example.com",
            "asleep@example.com",
            "no-alerts@example.com",
        );
        t.alert_reader(a, &day, None).await;
        t.alert_reader(c, &day, Some(1)).await;
        t.alert_reader(q, &night, None).await;
        t.subscribe_and_confirm(b).await;

        // An urgent article waits for an editor, who sees whom it reaches.
        let u1 = t.push_urgent(1, "زلزال في الشمال").await;
        assert_eq!(u1["status"], "waiting");
        assert_eq!(reach(&u1), (2, 0, 0, 1), "{u1}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(t.alerts_to(a).is_empty(), "nothing before «أرسل»");
        t.send_alert_and_wait(&u1).await;
        for r in [a, c] {
            let got = t.alerts_to(r);
            assert_eq!(got.len(), 1, "{r}");
            assert_eq!(subject(&got[0]), "عاجل: زلزال في الشمال");
            assert!(text(&got[0]).contains("زلزال في الشمال"));
        }
        let report = check_eml(&t.alerts_to(a)[0]);
        assert!(
            report.contains("PASS") || !report.contains("FAIL"),
            "{report}"
        );
        assert!(header(&t.alerts_to(a)[0], "List-Unsubscribe-Post").contains("One-Click"));
        assert!(t.alerts_to(q).is_empty(), "quiet hours");
        assert!(t.alerts_to(b).is_empty(), "not opted in");

        // The second: one reader has had their one alert today.
        let u2 = t.push_urgent(2, "فيضان في الجنوب").await;
        assert_eq!(reach(&u2), (1, 0, 1, 1), "{u2}");
        t.send_alert_and_wait(&u2).await;
        assert_eq!(t.alerts_to(a).len(), 2);
        assert_eq!(t.alerts_to(c).len(), 1, "over budget");

        // «تراجع» within the undo window: nothing to anyone.
        let u3 = t.push_urgent(3, "إعصار في الغرب").await;
        let id3 = u3["id"].as_i64().unwrap();
        assert_eq!(
            t.admin_post(&format!("/api/alerts/{id3}/send"), json!({}))
                .await
                .status(),
            200
        );
        let r = t
            .admin_post(&format!("/api/alerts/{id3}/cancel"), json!({}))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "cancelled");
        let again = t
            .admin_post(&format!("/api/alerts/{id3}/send"), json!({}))
            .await;
        assert_eq!(again.status(), 409, "a cancelled alert stays cancelled");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(t.alerts_to(a).len(), 2, "cancelled within the undo window");

        // The next digest leaves out what each reader had as an alert.
        t.add_article("https://example.org/festival/", "مهرجان الربيع", "فنون")
            .await;
        let d1 = t.send_now().await;
        assert_eq!(t.wait_send(d1).await.status, "done");
        let carries = |m: &Received, title: &str| text(m).contains(title);
        let all = [
            "زلزال في الشمال",
            "فيضان في الجنوب",
            "إعصار في الغرب",
            "مهرجان الربيع",
        ];
        for (reader, without) in [
            (a, &["زلزال في الشمال", "فيضان في الجنوب"][..]),
            (c, &["زلزال في الشمال"][..]),
            (q, &[][..]),
            (b, &[][..]),
        ] {
            let got = t.digests_to(reader);
            assert_eq!(got.len(), 1, "{reader}");
            for title in all {
                assert_eq!(
                    carries(&got[0], title),
                    !without.contains(&title),
                    "{reader}: {title}"
                );
            }
        }

        // A digest with nothing left for a reader is not sent to them.
        let u4 = t.push_urgent(4, "انفجار في الميناء").await;
        t.send_alert_and_wait(&u4).await;
        assert_eq!(t.alerts_to(a).len(), 3);
        assert_eq!(t.alerts_to(c).len(), 1);
        let d2 = t.send_now().await;
        assert_eq!(t.wait_send(d2).await.status, "done");
        assert_eq!(t.digests_to(a).len(), 1, "nothing new for them: no digest");
        for r in [b, c, q] {
            let got = t.digests_to(r);
            assert_eq!(got.len(), 2, "{r}");
            assert!(carries(&got[1], "انفجار في الميناء"), "{r}");
        }
    }
);

both_engines!(
    with_auto_approval_an_alert_leaves_at_once_even_outside_the_sending_window,
    |engine| async move {
        // A window that is closed now: digests wait for it, alerts do not.
        let h = Utc::now().hour();
        let window = format!("{:02}:00-{:02}:00", (h + 2) % 24, (h + 3) % 24);
        let t = spawn_app_with(
            engine,
            &format!(
                "[delivery]\nwindow = \"{window}\"\nwindow_timezone = \"UTC\"\n[alerts]\napproval = \"auto\"\nquiet_hours = \"\"\n"
            ),
        )
        .await;
        let r = "reader@example.com";
        t.alert_reader(r, "Asia/Baghdad", None).await;
        let pushed = tokio::time::Instant::now();
        let u = t.push_urgent(1, "عاجل من العاصمة").await;
        assert_eq!(u["status"], "sent", "{u}");
        let m = t.wait_for_mail_to(r, 2).await;
        assert_eq!(subject(&m), "عاجل: عاجل من العاصمة");
        assert!(pushed.elapsed() < Duration::from_secs(10));
        t.add_article("https://example.org/later/", "خبر للنشرة", "نص")
            .await;
        let d = t.send_now().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = t.send(d).await;
        assert_eq!(
            (s.status.as_str(), s.sent, s.total),
            ("sending", 0, 1),
            "the digest waits for the window"
        );
    }
);

both_engines!(
    an_alert_goes_ahead_of_a_digest_already_sending,
    |engine| async move {
        const READERS: usize = 200;
        let t = spawn_app_with(
            engine,
            "[delivery]\nconcurrency = 2\n[alerts]\napproval = \"auto\"\nquiet_hours = \"\"\n",
        )
        .await;
        let emails: Vec<String> = (0..READERS).map(|i| format!("r{i}@example.com")).collect();
        let rows: Vec<_> = emails
            .iter()
            .map(|e| {
                (
                    nashra::domain::SubscriberEmail::parse(e).unwrap(),
                    nashra::domain::SubscriberName::default(),
                )
            })
            .collect();
        t.app.store.import(&rows, true, "test").await.unwrap();
        t.dir.exec("UPDATE subscribers SET alerts = 1").await;
        t.add_article("https://example.org/slow/", "خبر هادئ", "نص")
            .await;
        t.smtp.set_delay(Duration::from_millis(10));
        let digest = t.send_now().await;
        t.smtp.wait_for(20, Duration::from_secs(30)).await;
        t.push_urgent(1, "خبر يسبق النشرة").await;
        assert_eq!(t.wait_send(digest).await.status, "done");
        let msgs = t.smtp.wait_for(2 * READERS, Duration::from_secs(60)).await;
        let last = |alert: bool| {
            msgs.iter()
                .filter(|m| subject(m).starts_with("عاجل") == alert)
                .map(|m| m.at)
                .max()
                .unwrap()
        };
        assert!(
            last(true) < last(false),
            "the alert waited for the digest to finish"
        );
        let per = t.smtp.per_recipient();
        for e in &emails {
            assert_eq!(per.get(e), Some(&2), "{e}: one digest, one alert");
        }
    }
);

both_engines!(
    a_reader_of_some_sections_gets_their_edition_without_what_they_had_as_an_alert,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[alerts]\nundo = \"0s\"\nquiet_hours = \"\"\n[[sections]]\nslug = \"politics\"\nname = \"سياسة\"\n[[sections]]\nslug = \"culture\"\nname = \"ثقافة\"\n",
        )
        .await;
        let (alerted, plain) = ("politics-alerts@example.com", "politics@example.com");
        t.alert_reader(alerted, "Asia/Baghdad", None).await;
        t.subscribe_and_confirm(plain).await;
        t.dir
            .exec("UPDATE subscribers SET sections = 'politics'")
            .await;
        let push = |n: u32, title: &'static str, section: &'static str, urgent: bool| {
            let t = &t;
            async move {
                let r = t
                    .admin_post(
                        "/api/articles",
                        json!({"url": format!("https://example.org/s/{n}/"), "title": title,
                               "section": section, "urgent": urgent}),
                    )
                    .await;
                assert!(r.status().is_success());
            }
        };
        push(1, "قرار الحكومة", "politics", true).await;
        let alert: Value = t.admin_get("/api/alerts").await;
        t.send_alert_and_wait(&alert["alerts"][0]).await;
        assert_eq!(t.alerts_to(alerted).len(), 1);
        push(2, "جلسة البرلمان", "politics", false).await;
        push(3, "معرض الكتاب", "culture", false).await;
        let d = t.send_now().await;
        assert_eq!(t.wait_send(d).await.status, "done");
        let of = |r: &str| text(&t.digests_to(r)[0]);
        let (a, p) = (of(alerted), of(plain));
        assert!(
            !a.contains("قرار الحكومة") && a.contains("جلسة البرلمان"),
            "{a}"
        );
        assert!(
            p.contains("قرار الحكومة") && p.contains("جلسة البرلمان"),
            "{p}"
        );
        assert!(!a.contains("معرض الكتاب") && !p.contains("معرض الكتاب"));
    }
);

both_engines!(
    an_alert_held_by_quiet_hours_goes_out_when_they_end,
    |engine| async move {
        // Quiet hours in the reader's zone (UTC) that end at the next whole minute at least
        // 20 s away.
        let now = Utc::now();
        let end = (now + chrono::Duration::seconds(80))
            .with_second(0)
            .unwrap()
            .with_nanosecond(0)
            .unwrap();
        let start = now - chrono::Duration::hours(1);
        let quiet = format!(
            "{:02}:{:02}-{:02}:{:02}",
            start.hour(),
            start.minute(),
            end.hour(),
            end.minute()
        );
        let t = spawn_app_with(
            engine,
            &format!(
                "[alerts]\napproval = \"auto\"\nquiet_hours = \"{quiet}\"\nmax_delay = \"3h\"\n"
            ),
        )
        .await;
        let (asleep, awake) = ("asleep@example.com", "awake@example.com");
        t.alert_reader(asleep, "Etc/UTC", None).await;
        t.alert_reader(awake, &zone_at_hour((now.hour() as i64 + 6) % 24), None)
            .await;
        t.push_urgent(1, "خبر في ساعات الهدوء").await;
        t.wait_for_mail_to(awake, 2).await;
        while Utc::now() < end - chrono::Duration::milliseconds(500) {
            assert!(t.alerts_to(asleep).is_empty(), "during their quiet hours");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let m = t
            .wait_for_mail_to_within(asleep, 2, Duration::from_secs(30))
            .await;
        let arrived = Utc::now() - chrono::Duration::from_std(m.at.elapsed()).unwrap();
        assert!(arrived >= end, "at {arrived}, before {end}");
        assert_eq!(subject(&m), "عاجل: خبر في ساعات الهدوء");
    }
);
