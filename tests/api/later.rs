//! One-off sends for later (issue 18): a send planned for a time waits as `scheduled`, is
//! moved, retitled or cancelled until then, and starts once however many processes run —
//! with two real `serve` processes on one database, on both engines; and the API's answers
//! and refusals, a send that finds nothing new, and one at each reader's own hour.

use std::{
    collections::HashMap,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use nashra::{
    app::{Actor, App},
    config::Settings,
    domain::{SubscriberEmail, SubscriberName},
    store::DigestStatus,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestPlace, parse,
    serve::{article, serve_with},
    smtp::TestSmtp,
    spawn_app_with, test_toml,
};

/// Two schedules (each its own articles' watermark) that never fire during a test.
const SCHEDULES: &str = r#"
[[schedules]]
name = "daily"
cron = "0 7 1 1 *"
timezone = "Asia/Baghdad"
subject = "يومية"
[[schedules]]
name = "weekly"
cron = "0 7 1 1 *"
timezone = "Asia/Baghdad"
subject = "أسبوعية"
"#;

/// A `nashra serve` process, killed when dropped.
struct Serve(Child);

impl Serve {
    fn start(config: &Path) -> Serve {
        Serve(serve_with(config, &["--no-feeds"], &[]))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_secs(s: i64) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(s)
}

/// When a message arrived, on the wall clock.
fn arrived(at: Instant) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::from_std(at.elapsed()).unwrap()
}

both_engines!(
    multi_thread,
    two_serve_processes_start_a_send_planned_two_minutes_ahead_once_and_a_cancelled_one_sends_nothing,
    |engine| async move {
        let smtp = TestSmtp::start().await;
        let dir = TestPlace::new(engine).await;
        let toml = test_toml(&dir, smtp.addr);
        let config = dir.path().join("nashra.toml");
        std::fs::write(&config, format!("{toml}{SCHEDULES}")).unwrap();
        let app = App::new(Settings::from_toml_layers(&[&toml, SCHEDULES]).unwrap())
            .await
            .unwrap();
        let readers: Vec<String> = (0..20).map(|i| format!("r{i}@example.com")).collect();
        let rows: Vec<_> = readers
            .iter()
            .map(|e| (SubscriberEmail::parse(e).unwrap(), SubscriberName::default()))
            .collect();
        app.store.import(&rows, true, "test").await.unwrap();
        article(&app, "a").await;
        let procs = [Serve::start(&config), Serve::start(&config)];
        let cli = Actor::cli();
        let plan = |schedule: &'static str, at: DateTime<Utc>, subject: &'static str| {
            let (app, cli) = (&app, &cli);
            async move {
                app.plan_send(cli, Some(schedule), at, Some(subject), false)
                    .await
                    .unwrap()
            }
        };
        // A: two minutes ahead. B: cancelled before its time. C: planned for later, moved to
        // before A. D: moved to tomorrow. E: after A, on A's schedule: nothing new by then.
        let a = plan("daily", in_secs(120), "إرسال أ").await;
        let b = plan("daily", in_secs(90), "إرسال ب").await;
        let c = plan("weekly", in_secs(600), "إرسال ج").await;
        let d = plan("weekly", in_secs(60), "إرسال د").await;
        let e = plan("daily", in_secs(135), "إرسال هـ").await;
        assert_eq!(a.status, DigestStatus::Queued);
        app.control(&cli, b.id, nashra::app::SendControl::Cancel)
            .await
            .unwrap();
        let c = app
            .edit_plan(&cli, c.id, Some(in_secs(100)), None)
            .await
            .unwrap();
        app.edit_plan(&cli, d.id, Some(in_secs(86_400)), None)
            .await
            .unwrap();
        let waiting: Vec<i64> = app
            .waiting_plans(&cli)
            .await
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(waiting, [c.id, a.id, e.id, d.id], "soonest first");

        // Every reader gets C, then A; E starts after A and finds nothing new. A third
        // starter (this test's own app) tries every 100 ms beside the two processes'.
        let deadline = Instant::now() + Duration::from_secs(200);
        loop {
            app.start_due_plans().await.unwrap();
            let per = smtp.per_recipient();
            let e_now = app.store.plan(e.id).await.unwrap().unwrap();
            if readers.iter().all(|r| per.get(r) == Some(&2)) && e_now.status == DigestStatus::Done
            {
                break;
            }
            assert!(Instant::now() < deadline, "not all sent: {per:?} {e_now:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(procs);

        let mut got: HashMap<(String, String), Vec<DateTime<Utc>>> = HashMap::new();
        for m in smtp.messages() {
            let subject = parse(&m).subject().unwrap_or_default().to_owned();
            got.entry((m.to[0].clone(), subject))
                .or_default()
                .push(arrived(m.at));
        }
        assert_eq!(got.len(), 2 * readers.len(), "{:?}", got.keys());
        for r in &readers {
            for (plan, subject) in [(&a, "إرسال أ"), (&c, "إرسال ج")] {
                let at = &got[&(r.clone(), subject.to_owned())];
                assert_eq!(at.len(), 1, "{r} got «{subject}» once");
                assert!(
                    at[0].timestamp_millis() >= plan.starts_at,
                    "{r} got «{subject}» at {}, before its time",
                    at[0]
                );
            }
        }
        let status = |id| {
            let app = &app;
            async move { app.store.plan(id).await.unwrap().unwrap() }
        };
        assert_eq!(status(a.id).await.status, DigestStatus::Done);
        assert_eq!(status(b.id).await.status, DigestStatus::Cancelled);
        assert_eq!(status(d.id).await.status, DigestStatus::Queued);
        let e = status(e.id).await;
        assert_eq!(e.reason.as_deref(), Some("nothing_new"), "{e:?}");
        // One row each, however many processes: nothing made twice, nothing but these.
        assert_eq!(dir.scalar("SELECT COUNT(*) FROM digests").await, 5);
        assert_eq!(
            dir.scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id IN ({}, {}, {})",
                b.id, d.id, e.id
            ))
            .await,
            0
        );
        // The archive has what was sent, not what waits or found nothing.
        let archive: Vec<i64> = app
            .store
            .archive(10, 0)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(archive, [c.id, a.id]);
    }
);

both_engines!(
    multi_thread,
    the_api_plans_moves_and_refuses_a_send_for_later_and_one_finds_nothing_new,
    |engine| async move {
        let t = spawn_app_with(engine, SCHEDULES).await;
        t.subscribe_and_confirm("reader@example.net").await;
        let post = |body: Value| {
            let t = &t;
            async move {
                let r = t.admin_post("/api/sends", body).await;
                (r.status(), r.json::<Value>().await.unwrap())
            }
        };
        let refused = |status: StatusCode, v: &Value, code: &str| {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
            assert_eq!(v["error"], code, "{v}");
        };
        let (s, v) = post(json!({"at": in_secs(-60).to_rfc3339()})).await;
        refused(s, &v, "invalid_at");
        assert!(v["message"].as_str().unwrap().contains("past"), "{v}");
        let (s, v) = post(json!({"at": "tomorrow at seven"})).await;
        refused(s, &v, "invalid_at");
        assert!(v["message"].as_str().unwrap().contains("RFC 3339"), "{v}");
        let (s, v) = post(json!({"at": "2027-01-05T07:00:00"})).await;
        refused(s, &v, "invalid_at");
        let (s, v) = post(json!({"at": in_secs(91 * 86_400).to_rfc3339()})).await;
        refused(s, &v, "invalid_at");
        let (s, v) = post(json!({"local": true})).await;
        refused(s, &v, "invalid_at");
        let in_an_hour = in_secs(3600);
        let hour = in_an_hour.to_rfc3339();
        let (s, v) = post(json!({"at": hour, "test_to": "desk@example.org"})).await;
        refused(s, &v, "invalid_request");
        let (s, v) =
            post(json!({"at": hour, "subject": "{% for i in range(end=9) %}x{% endfor %}"})).await;
        refused(s, &v, "invalid_subject");
        let (s, v) = post(json!({"at": hour, "schedule": "nope"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

        // Planned: 202, `scheduled`, listed; moved and retitled; no pause while it waits.
        let (s, v) = post(json!({"at": hour, "schedule": "weekly"})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["status"], "scheduled");
        let id = v["id"].as_i64().unwrap();
        let starts = |v: &Value| {
            DateTime::parse_from_rfc3339(v["starts_at"].as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(starts(&v).timestamp(), in_an_hour.timestamp(), "{v}");
        let got: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(
            (&got["status"], &got["subject"]),
            (&json!("scheduled"), &json!("أسبوعية"))
        );
        let list: Value = t.admin_get("/api/sends?status=scheduled").await;
        assert_eq!(list["sends"][0]["id"], id, "{list}");
        let put = |id: i64, body: Value| {
            let t = &t;
            async move {
                let r = t
                    .http
                    .put(t.url(&format!("/api/sends/{id}")))
                    .bearer_auth(crate::helpers::ADMIN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (r.status(), r.json::<Value>().await.unwrap())
            }
        };
        let in_two = in_secs(7200);
        let (s, v) = put(
            id,
            json!({"at": in_two.to_rfc3339(), "subject": "عدد خاص {{ date_short }}"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(starts(&v).timestamp(), in_two.timestamp(), "moved: {v}");
        assert!(
            v["subject"].as_str().unwrap().starts_with("عدد خاص "),
            "{v}"
        );
        let (s, v) = put(id, json!({"when": "soon"})).await;
        refused(s, &v, "invalid_json");
        let (s, v) = put(id, json!({"at": in_secs(-3600).to_rfc3339()})).await;
        refused(s, &v, "invalid_at");
        let r = t
            .admin_post(&format!("/api/sends/{id}/pause"), json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(
            r.json::<Value>().await.unwrap()["message"],
            "the send is scheduled"
        );

        // Moved to now: it starts (within the scheduler's two seconds), with its own subject.
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        let (s, _) = put(id, json!({"at": Utc::now().to_rfc3339()})).await;
        assert_eq!(s, StatusCode::OK);
        let msg = t.wait_for_mail_to("reader@example.net", 2).await;
        assert!(parse(&msg).subject().unwrap().starts_with("عدد خاص "));
        let done = wait_for(&t, id, ended).await;
        assert_eq!(
            (&done["status"], &done["total"]),
            (&json!("done"), &json!(1)),
            "{done}"
        );
        // After it started: 409 for an edit, and for a cancel once it is done.
        let (s, v) = put(id, json!({"subject": "متأخر"})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(t.control_status(id, "cancel").await, StatusCode::CONFLICT);
        assert!(t.get_text("/archive").await.contains("عدد خاص"));

        // Nothing new at its time: done, having sent nothing, and not in the archive.
        let (_, v) = post(json!({"at": Utc::now().to_rfc3339(), "schedule": "weekly"})).await;
        let empty = v["id"].as_i64().unwrap();
        let v = wait_for(&t, empty, ended).await;
        assert_eq!(
            (&v["status"], &v["total"], &v["reason"]),
            (&json!("done"), &json!(0), &json!("nothing_new")),
            "{v}"
        );
        assert_eq!(
            t.admin_status(Method::GET, &format!("/api/sends/{empty}"))
                .await,
            StatusCode::OK
        );
        let r = t
            .http
            .get(t.url(&format!("/archive/{empty}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(t.smtp.count(), 2, "the confirmation and one send");
    }
);

/// `GET /api/sends/{id}` once `ready` says so.
async fn wait_for(t: &crate::helpers::TestApp, id: i64, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        if ready(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "send {id} never ended: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(v: &Value) -> bool {
    v["status"] != "scheduled" && v["status"] != "sending"
}

both_engines!(
    multi_thread,
    a_send_at_each_readers_own_hour_starts_with_the_earliest_zone_and_waits_for_the_others,
    |engine| async move {
        let t = spawn_app_with(engine, SCHEDULES).await;
        for r in ["kolkata@example.net", "baghdad@example.net"] {
            t.subscribe_and_confirm(r).await;
        }
        t.dir
            .exec("UPDATE subscribers SET timezone = 'Asia/Kolkata' WHERE email LIKE 'kolkata%'")
            .await;
        t.dir
            .exec("UPDATE subscribers SET timezone = 'Asia/Baghdad' WHERE email LIKE 'baghdad%'")
            .await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        // Kolkata is 2 h 30 ahead of Baghdad (the newsroom's zone): the time asked for comes
        // there in 5 s, in Baghdad 2 h 30 later.
        let kolkata_at = in_secs(5);
        let at = kolkata_at + chrono::Duration::minutes(150);
        let r = t
            .admin_post("/api/sends", json!({"at": at.to_rfc3339(), "local": true}))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["local"], true);
        let id = v["id"].as_i64().unwrap();
        let starts = DateTime::parse_from_rfc3339(v["starts_at"].as_str().unwrap()).unwrap();
        // To the second: a wall-clock time is kept to the second.
        assert_eq!(
            starts.timestamp(),
            kolkata_at.timestamp(),
            "the earliest zone's: {v}"
        );
        let msg = t
            .wait_for_mail_to_within("kolkata@example.net", 2, Duration::from_secs(20))
            .await;
        assert!(arrived(msg.at).timestamp_millis() >= starts.timestamp_millis());
        let v = wait_for(&t, id, |v| v["waves"][0]["sent"] == 1).await;
        assert_eq!(v["status"], "sending", "Baghdad's reader waits: {v}");
        let waves = v["waves"].as_array().unwrap();
        assert_eq!(waves.len(), 2, "{v}");
        assert_eq!(
            (&waves[0]["timezone"], &waves[0]["sent"]),
            (&json!("Asia/Kolkata"), &json!(1))
        );
        assert_eq!(
            (&waves[1]["timezone"], &waves[1]["sent"]),
            (&json!("Asia/Baghdad"), &json!(0))
        );
        assert_eq!(waves[0]["local_time"], waves[1]["local_time"], "{v}");
        let baghdad = DateTime::parse_from_rfc3339(waves[1]["at"].as_str().unwrap()).unwrap();
        assert_eq!(baghdad.timestamp(), at.timestamp());
        assert_eq!(
            t.smtp.messages_to("baghdad@example.net").len(),
            1,
            "the confirmation only"
        );
    }
);
