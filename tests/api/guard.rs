//! A send that stops itself (issue 19, part 3): an imported list where 8 % of the addresses
//! hard-bounce pauses its send once 500 messages are delivered, says why in the API, on the
//! console and in the audit log, counts it in `/metrics`, and an editor's resume finishes
//! it with every good reader reached once; a complaint pauses a send the moment it is
//! recorded (a hard bounce reported later counts once beside the refusals); and a mailbox
//! provider that defers everything has its readers wait with a backoff while the others
//! get theirs.

use std::{io::Cursor, time::Duration};

use nashra::{
    app::Actor,
    bounces::{MailOutcome, feedback_from_mail},
    store::{FeedbackKind, Role},
};
use serde_json::Value;

use crate::helpers::{smtp::Fault, *};

/// `email,name` rows for `addresses`, imported as the console's CSV import does.
async fn import(t: &TestApp, addresses: &[String]) {
    let mut csv = String::from("email,name\n");
    for a in addresses {
        csv.push_str(&format!("{a},\n"));
    }
    let report = t
        .app
        .import_csv(
            &Actor::cli(),
            Cursor::new(csv.into_bytes()),
            true,
            "guard.csv",
        )
        .await
        .unwrap();
    assert_eq!(report.added as usize, addresses.len());
}

/// Polls `GET /api/sends/{id}` until `done` says so (at most 60 s).
async fn wait_until(t: &TestApp, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        if done(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every address in `once` got exactly one message; none in `never` got any.
fn assert_reached(t: &TestApp, once: &[String], never: &[String]) {
    let per = t.smtp.per_recipient();
    for a in once {
        assert_eq!(per.get(a).copied(), Some(1), "{a}");
    }
    for a in never {
        assert_eq!(per.get(a).copied(), None, "{a}");
    }
}

fn metric(m: &str, line: &str) -> Option<i64> {
    m.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
}

const READERS: usize = 1000;

/// 2 of every 25 addresses (8 %), spread through the list.
fn bounces(i: usize) -> bool {
    i % 25 == 3 || i % 25 == 16
}

both_engines!(
    multi_thread,
    a_list_that_bounces_pauses_its_send_and_a_resume_finishes_it_without_doubling,
    |engine| async move {
        let t = spawn_app(engine).await;
        let all: Vec<String> = (0..READERS)
            .map(|i| format!("reader{i:04}@example.org"))
            .collect();
        import(&t, &all).await;
        let pick = |bouncing: bool| -> Vec<String> {
            all.iter()
                .enumerate()
                .filter(|(i, _)| bounces(*i) == bouncing)
                .map(|(_, a)| a.clone())
                .collect()
        };
        let (bad, good) = (pick(true), pick(false));
        assert_eq!(bad.len(), 80);
        for a in &bad {
            t.smtp.fault(a, Fault::Code(550), usize::MAX);
        }
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;

        let v = wait_until(&t, id, "the send pauses itself", |v| {
            v["status"] != "sending"
        })
        .await;
        assert_eq!(v["status"], "paused", "{v}");
        let g = &v["guard"];
        assert_eq!(g["reason"], "hard_bounces", "{v}");
        let (count, delivered) = (
            g["count"].as_i64().unwrap(),
            g["delivered"].as_i64().unwrap(),
        );
        assert!(delivered >= 500, "judged only after 500 delivered: {v}");
        assert!(count * 20 > delivered, "above 5 %: {v}");
        assert_eq!(g["limit"], 0.05);
        let message = g["message"].as_str().unwrap();
        assert!(
            message.starts_with("paused itself: hard bounces ")
                && message.ends_with(&format!(
                    "({count} of {delivered} delivered) above the 5% limit"
                )),
            "{message}"
        );
        assert_eq!(v["error"], message, "the API's error says it too");
        // It stopped short of the end, and nothing more goes out while it stands paused.
        assert!(v["pending"].as_i64().unwrap() > 0, "{v}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let at_pause = t.smtp.count();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(t.smtp.count(), at_pause, "a paused send sends nothing");

        // The console: a banner on the send's page, a note in the list of sends.
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let (status, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert_eq!(status, 200);
        let banner = format!(
            "أوقف الإرسال نفسه: الارتدادات الدائمة {} فوق حد 5٪ ({count} من {delivered} رسالة وصلت)",
            nashra::store::percent(count as f64 / delivered as f64).replace('%', "٪")
        );
        assert!(page.contains(&banner), "{banner} not on the page:\n{page}");
        assert!(
            page.contains("id=\"guard-stop\" data-guard>"),
            "the banner shows"
        );
        assert!(!page.contains(message), "no English on the console");
        let (_, list) = s.get("/admin/sends").await;
        assert!(list.contains(&banner), "{banner} not in the list");
        // The audit log, once, by the guard.
        let log = audit_actions(&t).await;
        let stops: Vec<_> = log
            .iter()
            .filter(|(a, x, _, _)| a == "guard" && x == "send_guard_pause")
            .collect();
        assert_eq!(stops.len(), 1, "{log:?}");
        assert_eq!(stops[0].2, format!("send:{id}"));
        assert_eq!(stops[0].3, banner);
        let (_, audit) = s.get("/admin/audit").await;
        assert!(audit.contains("حارس الإرسال") && audit.contains("أوقف الإرسال نفسه"));
        // /metrics.
        let m = t.get_text("/metrics").await;
        let paused = "nashra_sends_guard_paused_total{reason=\"hard_bounces\"}";
        assert_eq!(metric(&m, paused), Some(1), "{m}");
        assert_eq!(
            metric(&m, "nashra_sends_guard_paused_total{reason=\"complaints\"}"),
            Some(0)
        );

        // An editor resumes: what follows is judged on its own (fewer than 500 are left), so
        // the same numbers do not pause it again, and it finishes.
        let after = t.control(id, "resume").await;
        assert_eq!(after.status, "sending");
        assert_eq!(after.error, None);
        let done = t.wait_send(id).await;
        assert_eq!(done.status, "done", "{done:?}");
        assert_eq!((done.sent, done.failed), (920, 80));
        assert_reached(&t, &good, &bad);
        for a in &bad {
            assert_eq!(t.smtp.attempts(a), 1, "a refusal is not retried: {a}");
        }
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert!(v["guard"].is_null(), "{v}");
        let m = t.get_text("/metrics").await;
        assert_eq!(metric(&m, paused), Some(1));
        let log = audit_actions(&t).await;
        assert!(has_action(&log, "cli", "import"));
        assert_eq!(
            log.iter()
                .filter(|(_, x, _, _)| x == "send_guard_pause")
                .count(),
            1
        );
    }
);

both_engines!(
    multi_thread,
    a_complaint_over_the_limit_pauses_the_send_as_it_is_recorded,
    |engine| async move {
        // A lower minimum keeps the test short; the rule is the same.
        let t = spawn_app_with(engine, "[delivery.guard]\nmin_delivered = 100\n").await;
        let all: Vec<String> = (0..300).map(|i| format!("r{i:03}@example.net")).collect();
        import(&t, &all).await;
        // A relay slow enough that the send is still going when the report comes.
        t.smtp.set_step_delay(Duration::from_millis(15));
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        wait_until(&t, id, "120 delivered", |v| {
            v["sent"].as_i64().unwrap() >= 120
        })
        .await;
        let mut sent = t.smtp.messages();
        // A hard bounce reported later counts beside the relay's refusals, once however
        // often it is reported (one in 120 is under 5 %: the send goes on).
        let bounced = sent.remove(1);
        let raw = report_about("gmail-hard.eml", &bounced, &bounced.to[0]);
        for _ in 0..2 {
            feedback_from_mail(&t.app, &raw, "file").await.unwrap();
        }
        let counted = format!("SELECT hard_bounces FROM digests WHERE id = {id}");
        assert_eq!(t.dir.scalar(&counted).await, 1);
        assert_eq!(t.send(id).await.status, "sending");
        let m = sent.remove(0);
        let reader = m.to[0].clone();
        let out = feedback_from_mail(&t.app, &report_about("yahoo-arf.eml", &m, &reader), "file")
            .await
            .unwrap();
        assert!(
            matches!(out, MailOutcome::Recorded(FeedbackKind::Complaint, _)),
            "{out}"
        );
        // Paused by the time the report is recorded: one complaint in 120+ is over 0.3 %.
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(v["status"], "paused", "{v}");
        assert_eq!(v["guard"]["reason"], "complaints");
        assert_eq!(v["guard"]["count"], 1);
        assert!(
            v["guard"]["message"]
                .as_str()
                .unwrap()
                .ends_with("above the 0.3% limit")
        );
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert!(page.contains("أوقف الإرسال نفسه: الشكاوى"), "{page}");
        assert!(page.contains("فوق حد 0.3٪"));
        let metrics = t.get_text("/metrics").await;
        assert_eq!(
            metric(
                &metrics,
                "nashra_sends_guard_paused_total{reason=\"complaints\"}"
            ),
            Some(1)
        );
        // Resumed, it finishes: the one who complained left, everyone else once.
        t.smtp.set_step_delay(Duration::ZERO);
        t.control(id, "resume").await;
        let done = t.wait_send(id).await;
        assert_eq!(done.status, "done", "{done:?}");
        assert_reached(&t, &all, &[]);
        assert_eq!(t.dir.scalar(&counted).await, 1);
        assert_eq!(
            t.status_of(&reader).await,
            nashra::store::SubscriberStatus::Unsubscribed
        );
    }
);

const HOTMAIL: usize = 100;

both_engines!(
    multi_thread,
    a_provider_that_defers_everything_waits_while_the_others_get_theirs,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[delivery]\nmax_attempts = 10\n[delivery.guard]\nprovider_backoff = \"5s\"\nprovider_backoff_max = \"20s\"\n",
        )
        .await;
        let hotmail: Vec<String> = (0..HOTMAIL)
            .map(|i| format!("h{i:03}@hotmail.com"))
            .collect();
        let others: Vec<String> = (0..60)
            .map(|i| format!("g{i:03}@gmail.com"))
            .chain((0..40).map(|i| format!("o{i:03}@example.org")))
            .collect();
        // Interleaved, as a real list is.
        let mut all = Vec::new();
        for i in 0..HOTMAIL {
            all.push(hotmail[i].clone());
            all.push(others[i].clone());
        }
        import(&t, &all).await;
        for a in &hotmail {
            t.smtp.fault(a, Fault::Code(451), usize::MAX);
        }
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;

        // Gmail's and the others' readers all get theirs; Microsoft's wait.
        let v = wait_until(&t, id, "Microsoft backs off", |v| {
            v["provider_backoffs"]
                .as_array()
                .is_some_and(|b| b.iter().any(|b| b["provider"] == "microsoft"))
        })
        .await;
        let b = &v["provider_backoffs"][0];
        assert!(
            b["deferred"].as_i64().unwrap() * 10 >= b["judged"].as_i64().unwrap() * 8,
            "{v}"
        );
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert!(
            page.contains("id=\"guard-stop\" data-guard hidden>")
                && page.contains("id=\"provider-waits\"")
                && page.contains("مايكروسوفت")
                && page.contains("أجّل معظم الرسائل"),
            "{page}"
        );
        let m = t.get_text("/metrics").await;
        assert_eq!(
            metric(&m, "nashra_provider_backoff{provider=\"microsoft\"}"),
            Some(1),
            "{m}"
        );
        assert_eq!(
            metric(&m, "nashra_provider_backoff{provider=\"gmail\"}"),
            Some(0)
        );
        assert!(metric(&m, "nashra_provider_backoffs_total{provider=\"microsoft\"}").unwrap() >= 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while t.smtp.count() < others.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the others wait too"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_reached(&t, &others, &hotmail);
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(v["status"], "sending");
        assert_eq!(v["failed"], 0, "no row spent its attempts: {v}");
        // Microsoft was not hammered: its rows waited instead of being tried.
        let tried: usize = hotmail.iter().map(|a| t.smtp.attempts(a)).sum();
        assert!(tried < HOTMAIL, "{tried} attempts to {HOTMAIL} readers");
        assert!(metric(&m, "nashra_provider_held_total{provider=\"microsoft\"}").is_some());

        // Microsoft answers again: once the backoff ends its readers get theirs, once each.
        for a in &hotmail {
            t.smtp.fault(a, Fault::Code(451), 0);
        }
        let done = t.wait_send(id).await;
        assert_eq!(done.status, "done", "{done:?}");
        assert_reached(&t, &all, &[]);
    }
);

both_engines!(
    multi_thread,
    a_send_over_a_limit_is_paused_once_however_many_check_it_at_once,
    |engine| async move {
        let t = spawn_app(engine).await;
        let readers: Vec<String> = (0..3).map(|i| format!("q{i}@example.org")).collect();
        import(&t, &readers).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        assert_eq!(t.wait_send(id).await.status, "done");
        // As if 600 messages were delivered and 40 refused (6.7 %): every process that looks
        // now sees it over the limit.
        t.dir
            .exec(&format!(
                "UPDATE digests SET status = 'sending', sent = 560, rejected = 40, hard_bounces = 40 WHERE id = {id}"
            ))
            .await;
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let (store, metrics) = (t.app.store.clone(), t.app.metrics.clone());
                let g = t.app.settings.delivery.guard.clone();
                tokio::spawn(async move {
                    nashra::delivery::guard::check(&store, &metrics, &g, None).await
                })
            })
            .collect();
        let mut paused = Vec::new();
        for c in checks {
            paused.extend(c.await.unwrap());
        }
        assert!(paused.len() <= 1, "{paused:?}");
        // The ledger writer's own look (every 2 s) finds it paused too.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(v["status"], "paused", "{v}");
        assert_eq!(
            (
                v["guard"]["count"].as_i64(),
                v["guard"]["delivered"].as_i64()
            ),
            (Some(40), Some(600))
        );
        let log = audit_actions(&t).await;
        assert_eq!(
            log.iter()
                .filter(|(_, x, _, _)| x == "send_guard_pause")
                .count(),
            1,
            "{log:?}"
        );
        let m = t.get_text("/metrics").await;
        assert_eq!(
            metric(
                &m,
                "nashra_sends_guard_paused_total{reason=\"hard_bounces\"}"
            ),
            Some(1)
        );
    }
);
