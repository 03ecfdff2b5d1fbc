//! The delivery ledger: never twice, never skipped; retries, bounces, relay outages, control.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    smtp::{Fault, TestSmtp},
    *,
};

/// Imports `n` confirmed subscribers r0@example.com … r{n-1}@example.com.
async fn confirmed_readers(t: &TestApp, n: usize) -> Vec<String> {
    let emails: Vec<String> = (0..n).map(|i| format!("r{i}@example.com")).collect();
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
    emails
}

both_engines!(
    a_send_triggered_twice_at_once_reaches_each_reader_once,
    |engine| async move {
        let t = spawn_app(engine).await;
        let readers = confirmed_readers(&t, 50).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let (a, b) = tokio::join!(
            t.admin_post("/api/sends", json!({})),
            t.admin_post("/api/sends", json!({}))
        );
        let mut statuses = vec![a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, vec![200, 202], "one digest, one nothing_new");
        let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
        let id = a["id"].as_i64().or(b["id"].as_i64()).unwrap();
        assert!(a["reason"] == "nothing_new" || b["reason"] == "nothing_new");
        t.wait_send(id).await;
        // A third trigger: nothing new.
        let r = t.admin_post("/api/sends", json!({})).await;
        assert_eq!(r.json::<Value>().await.unwrap()["reason"], "nothing_new");
        tokio::time::sleep(Duration::from_millis(200)).await;
        t.assert_each_received_once(&readers);
        assert_eq!(t.smtp.count(), readers.len());
    }
);

both_engines!(
    a_restart_mid_send_finishes_without_doubles,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[delivery]\nmax_per_second = 200\nconcurrency = 2\nlease = \"3s\"\n",
        )
        .await;
        let readers = confirmed_readers(&t, 300).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        t.smtp.wait_for(50, Duration::from_secs(20)).await;
        // Graceful stop mid-send, then start again over the same database.
        let (smtp, dir) = t.stop().await;
        let sent_before = smtp.count();
        assert!(
            sent_before < readers.len(),
            "stopped mid-send ({sent_before})"
        );
        let t = spawn_on(smtp, dir, "[delivery]\nconcurrency = 4\n").await;
        let done = t.wait_send(id).await;
        assert_eq!(done.sent, readers.len() as i64, "{done:?}");
        t.assert_each_received_once(&readers);
    }
);

both_engines!(
    someone_who_leaves_mid_send_gets_nothing_further,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[delivery]\nmax_per_second = 100\nconcurrency = 1\n",
        )
        .await;
        confirmed_readers(&t, 40).await;
        t.subscribe_and_confirm("leaver@example.com").await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        // Pause at once so the leaver's row (the last) is still pending, then unsubscribe them.
        t.control(id, "pause").await;
        let leaver = t
            .app
            .store
            .list_subscribers(
                &nashra::store::ReaderFilter {
                    q: Some("leaver@".into()),
                    ..Default::default()
                },
                1,
                10,
            )
            .await
            .unwrap()
            .0[0]
            .id;
        let token = t.app.tokens.unsubscribe(leaver);
        assert_eq!(
            t.http
                .post(t.url(&format!("/unsubscribe/{token}")))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        t.control(id, "resume").await;
        let done = t.wait_send(id).await;
        assert_eq!(done.skipped, 1, "{done:?}");
        assert_eq!(done.sent, 40, "{done:?}");
        assert_eq!(
            t.smtp.messages_to("leaver@example.com").len(),
            1,
            "only the confirmation"
        );
    }
);

both_engines!(
    transient_failures_are_retried_and_delivered_once,
    |engine| async move {
        let t = spawn_app(engine).await;
        let readers = confirmed_readers(&t, 10).await;
        t.smtp.fault("r1@example.com", Fault::Code(451), 2);
        t.smtp.fault("r2@example.com", Fault::Code(421), 1);
        t.smtp.fault("r3@example.com", Fault::Drop, 1);
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        let done = t.wait_send(id).await;
        assert_eq!(
            (done.status.as_str(), done.sent, done.failed),
            ("done", 10, 0),
            "{done:?}"
        );
        t.assert_each_received_once(&readers);
        assert_eq!(t.smtp.attempts("r1@example.com"), 3);
        let metrics = t.get_text("/metrics").await;
        assert!(
            metrics.contains("nashra_messages_retried_total 2")
                || metrics.contains("nashra_messages_retried_total 3"),
            "{metrics}"
        );
    }
);

both_engines!(
    permanent_failures_are_recorded_and_bounce_after_the_threshold,
    |engine| async move {
        let t = spawn_app_with(engine, "[delivery]\nbounce_after = 2\n").await;
        confirmed_readers(&t, 5).await;
        t.smtp.fault("r4@example.com", Fault::Code(550), usize::MAX);
        for round in 1..=2 {
            t.add_article(&format!("https://example.org/{round}/"), "خبر", "نص")
                .await;
            let id = t.send_now().await;
            let done = t.wait_send(id).await;
            assert_eq!((done.sent, done.failed), (4, 1), "{done:?}");
            let f = t.failures(id).await;
            assert_eq!(f[0].email, "r4@example.com");
            assert!(f[0].error.contains("550"), "{f:?}");
            assert_eq!(f[0].attempts, 1, "a 5xx is not retried");
        }
        assert_eq!(t.smtp.attempts("r4@example.com"), 2);
        let bounced = t.readers("status=bounced").await;
        assert_eq!(bounced.total, 1);
        // Left out of the next digest.
        t.add_article("https://example.org/3/", "خبر", "نص").await;
        let r: Value = t.admin_json("/api/sends", json!({})).await;
        assert_eq!(r["recipients"], 4);
    }
);

both_engines!(
    failed_deliveries_can_be_retried_on_request,
    |engine| async move {
        let t = spawn_app_with(engine, "[delivery]\nmax_attempts = 2\nbounce_after = 5\n").await;
        confirmed_readers(&t, 3).await;
        t.smtp.fault("r0@example.com", Fault::Code(451), 2);
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        let done = t.wait_send(id).await;
        assert_eq!((done.sent, done.failed), (2, 1), "{done:?}");
        let r = t.control(id, "retry").await;
        assert_eq!(r.requeued, Some(1));
        let done = t.wait_send(id).await;
        assert_eq!((done.sent, done.failed), (3, 0), "{done:?}");
    }
);

both_engines!(
    a_relay_that_is_down_pauses_the_send_and_it_resumes_by_itself,
    |engine| async move {
        let t = spawn_app_with(engine, "[delivery]\nmax_attempts = 2\n").await;
        let readers = confirmed_readers(&t, 20).await;
        t.smtp.go_down();
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let v = t.send(id).await;
        assert_eq!(
            (v.status.as_str(), v.failed),
            ("sending", 0),
            "nothing burnt: {v:?}"
        );
        t.smtp.come_back().await;
        let done = t.wait_send(id).await;
        assert_eq!((done.sent, done.failed), (20, 0), "{done:?}");
        t.assert_each_received_once(&readers);
    }
);

both_engines!(
    a_relay_that_rejects_everything_stops_the_send_and_bounces_nobody,
    |engine| async move {
        // Issue 6, item 2: a failure streak that stops a send says nothing about the readers.
        let t = spawn_app_with(
            engine,
            "[delivery]\nstop_after_failures = 5\nconcurrency = 1\nbounce_after = 1\n",
        )
        .await;
        let readers = confirmed_readers(&t, 30).await;
        t.smtp.fault_all(Some(Fault::Code(550)));
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let first = t.send_now().await;
        let v = t.wait_send(first).await;
        assert_eq!(v.status, "failed", "{v:?}");
        assert!(
            v.error.as_deref().unwrap().contains("consecutive failures"),
            "{v:?}"
        );
        // Stopped after `stop_after_failures` (plus what was in flight: concurrency is 1), not 30.
        assert!(v.failed <= 6, "stopped early: {v:?}");
        assert!(v.pending >= 24, "{v:?}");
        // A second send while the relay is still broken stops the same way.
        t.add_article("https://example.org/2/", "خبر ثان", "نص")
            .await;
        let second = t.send_now().await;
        assert_eq!(t.wait_send(second).await.status, "failed");
        // Nobody was marked bounced, though bounce_after is 1 and some got two 550s.
        let subs = t.readers("status=confirmed").await;
        assert_eq!(subs.total, 30, "{subs:?}");
        assert!(subs.subscribers.iter().all(|s| s.bounces == 0), "{subs:?}");
        // The relay is fixed: resuming the first and retrying the second reach everyone, the
        // readers whose deliveries failed included.
        t.smtp.fault_all(None);
        t.control(first, "resume").await;
        let v = t.wait_send(first).await;
        assert_eq!((v.status.as_str(), v.sent), ("done", 30), "{v:?}");
        let r = t.control(second, "retry").await;
        assert!(r.requeued.unwrap() >= 1, "{r:?}");
        let v = t.wait_send(second).await;
        assert_eq!((v.status.as_str(), v.sent), ("done", 30), "{v:?}");
        let per = t.smtp.per_recipient();
        for r in &readers {
            assert_eq!(per.get(r), Some(&2), "{r}: one copy of each digest");
        }
    }
);

both_engines!(
    a_relay_that_accepts_and_never_answers_counts_as_down,
    |engine| async move {
        // Issue 6, item 1: the relay takes the TCP connection and never greets. smtp.timeout is
        // 1 s in the tests: the send must see a relay that is down, burn nothing, and finish once
        // the relay speaks again.
        // Silent from the start: not even the greeting at start-up gets an answer.
        let smtp = TestSmtp::start().await;
        smtp.set_silent(true);
        let t = spawn_on(smtp, TestPlace::new(engine).await, "").await;
        let readers = confirmed_readers(&t, 10).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let metrics = t.get_text("/metrics").await;
            let v = t.send(id).await;
            if metrics.contains("nashra_relay_down 1") && v.in_flight == 0 {
                assert_eq!((v.sent, v.failed), (0, 0), "{v:?}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never seen as down: {v:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        t.smtp.set_silent(false);
        let done = t.wait_send(id).await;
        assert_eq!((done.sent, done.failed), (10, 0), "{done:?}");
        t.assert_each_received_once(&readers);
    }
);

both_engines!(shutdown_ends_whatever_the_relay_does, |engine| async move {
    // Issue 6, item 1: SIGTERM (here: the same shutdown signal) while every message waits on a
    // silent relay must still end, and leave the rows for the next run.
    let smtp = TestSmtp::start().await;
    smtp.set_silent(true);
    let t = spawn_on(
        smtp,
        TestPlace::new(engine).await,
        "[smtp]\ntimeout = \"20s\"\n[delivery]\nlease = \"60s\"\n",
    )
    .await;
    confirmed_readers(&t, 8).await;
    t.add_article("https://example.org/1/", "خبر", "نص").await;
    let id = t.send_now().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (smtp, dir) = tokio::time::timeout(Duration::from_secs(20), t.stop())
        .await
        .expect("shutdown ends within its grace, not after the relay's 20 s timeouts");
    smtp.set_silent(false);
    let t = spawn_on(smtp, dir, "").await;
    let done = t.wait_send(id).await;
    assert_eq!(done.sent, 8, "{done:?}");
});

both_engines!(pause_resume_and_cancel, |engine| async move {
    let t = spawn_app_with(engine, "[delivery]\nmax_per_second = 50\nconcurrency = 2\n").await;
    confirmed_readers(&t, 100).await;
    t.add_article("https://example.org/1/", "خبر", "نص").await;
    let id = t.send_now().await;
    t.smtp.wait_for(5, Duration::from_secs(10)).await;
    let v = t.control(id, "pause").await;
    assert_eq!(v.status, "paused");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused_at = t.smtp.count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.smtp.count(), paused_at, "nothing goes out while paused");
    let v = t.control(id, "resume").await;
    assert_eq!(v.status, "sending");
    t.smtp
        .wait_for(paused_at + 5, Duration::from_secs(10))
        .await;
    let v = t.control(id, "cancel").await;
    assert_eq!(v.status, "cancelled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_cancel = t.smtp.count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.smtp.count(), at_cancel);
    assert!(at_cancel < 100);
    let v = t.send(id).await;
    assert!(v.cancelled > 0, "{v:?}");
    // A cancelled send cannot be resumed.
    assert_eq!(t.control_status(id, "resume").await, 409);
});

both_engines!(the_rate_limit_is_respected, |engine| async move {
    let t = spawn_app_with(engine, "[delivery]\nmax_per_second = 40\nconcurrency = 8\n").await;
    confirmed_readers(&t, 80).await;
    t.add_article("https://example.org/1/", "خبر", "نص").await;
    let id = t.send_now().await;
    t.wait_send(id).await;
    // The rate the relay saw: 80 messages at 40/s are 79 intervals of 25 ms. Never faster
    // (within 10 %: the relay stamps arrivals, not sends); slower only as much as a loaded
    // machine makes it (the speed itself is the benchmark's business, not a test's).
    let mut at: Vec<std::time::Instant> = t.smtp.messages().iter().map(|m| m.at).collect();
    at.sort();
    assert_eq!(at.len(), 80);
    let secs = (at[79] - at[0]).as_secs_f64();
    assert!(secs >= 1.975 * 0.9, "too fast: {secs:.2}s");
    assert!(secs <= 1.975 * 3.0, "paced far below the limit: {secs:.2}s");
});

both_engines!(
    a_test_send_goes_to_one_address_and_keeps_the_articles_for_the_digest,
    |engine| async move {
        let t = spawn_app(engine).await;
        confirmed_readers(&t, 3).await;
        t.add_article("https://example.org/1/", "خبر للتجربة", "نص")
            .await;
        let r = t
            .admin_post("/api/sends", json!({"test_to": "editor@example.net"}))
            .await;
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["recipients"], 1);
        t.wait_send(v["id"].as_i64().unwrap()).await;
        assert_eq!(t.smtp.count(), 1);
        assert_eq!(t.smtp.messages()[0].to, vec!["editor@example.net"]);
        // The real send still has the article.
        let id = t.send_now().await;
        let done = t.wait_send(id).await;
        assert_eq!(done.sent, 3);
        // A test send's bad address is refused.
        let r = t
            .admin_post("/api/sends", json!({"test_to": "x@y.z\r\nBcc: a@b.c"}))
            .await;
        assert_eq!(r.status(), 422);
        // Test sends are not in the public archive.
        let r = t
            .http
            .get(t.url(&format!("/archive/{}", v["id"])))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
);

both_engines!(
    outside_the_sending_window_a_send_waits,
    |engine| async move {
        // A one-minute window twelve hours from now: closed for the whole test.
        let now = chrono::Utc::now();
        let open = now + chrono::Duration::hours(12);
        let window = format!(
            "{}-{}",
            open.format("%H:%M"),
            (open + chrono::Duration::minutes(1)).format("%H:%M")
        );
        let t = spawn_app_with(
            engine,
            &format!("[delivery]\nwindow = \"{window}\"\nwindow_timezone = \"UTC\"\n"),
        )
        .await;
        confirmed_readers(&t, 5).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(t.smtp.count(), 0, "nothing goes out outside the window");
        assert_eq!(t.send(id).await.status, "sending");
        // The operator widens the window and restarts: the send goes on.
        let (smtp, dir) = t.stop().await;
        let t = spawn_on(smtp, dir, "").await;
        let done = t.wait_send(id).await;
        assert_eq!(done.sent, 5, "{done:?}");
    }
);

both_engines!(
    a_lost_reply_after_the_message_counts_as_an_attempt,
    |engine| async move {
        // The relay takes the message and hangs up before its "250": we cannot know it arrived.
        // Retrying may duplicate it, so each such retry spends an attempt: bounded, never endless.
        let t = spawn_app_with(engine, "[delivery]\nmax_attempts = 2\nbounce_after = 5\n").await;
        confirmed_readers(&t, 3).await;
        t.smtp
            .fault("r1@example.com", Fault::DropAfterData, usize::MAX);
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        let done = t.wait_send(id).await;
        assert_eq!((done.sent, done.failed), (2, 1), "{done:?}");
        assert_eq!(
            t.smtp.messages_to("r1@example.com").len(),
            2,
            "max_attempts copies at most"
        );
        let f = t.failures(id).await;
        assert!(
            f[0].error.contains("no reply after the message was sent"),
            "{f:?}"
        );
    }
);

/// Subscriber ids of `emails`, from the admin API.
async fn ids_of(t: &TestApp, emails: &[String]) -> Vec<i64> {
    let mut ids = Vec::new();
    for e in emails {
        let v = t.readers(&format!("q={e}")).await;
        ids.push(v.subscribers[0].id);
    }
    ids
}

both_engines!(
    nothing_reaches_a_reader_after_their_unsubscribe_or_erasure_returned,
    |engine| async move {
        // Issue 6, item 7. A slow relay (8 ms a message) keeps the send going while readers whose
        // rows are claimed but not yet sent leave; whatever arrives for them must have arrived
        // before their request returned, and the ledger says which: sent, or skipped.
        let t = spawn_app_with(engine, "[delivery]\nconcurrency = 4\n").await;
        t.smtp.set_delay(Duration::from_millis(8));
        let readers = confirmed_readers(&t, 400).await;
        let ids = ids_of(&t, &readers).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        t.smtp.wait_for(40, Duration::from_secs(20)).await;
        let mut returned = Vec::new();
        for round in 0..6 {
            // Just ahead of what has been delivered: claimed, most likely, but not yet sent.
            let k = t.smtp.count() + 6;
            let unsub = k + round % 3;
            let token = t.app.tokens.unsubscribe(ids[unsub]);
            let r = t
                .http
                .post(t.url(&format!("/unsubscribe/{token}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            returned.push((unsub, std::time::Instant::now()));
            let erase = k + 4;
            let r = t
                .http
                .delete(t.url(&format!("/api/subscribers/{}", readers[erase])))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            returned.push((erase, std::time::Instant::now()));
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        let done = t.wait_send(id).await;
        let messages = t.smtp.messages();
        let mut got_nothing = 0;
        for (i, at) in &returned {
            let to_them: Vec<_> = messages
                .iter()
                .filter(|m| m.to.contains(&readers[*i]))
                .collect();
            assert!(
                to_them.iter().all(|m| m.at <= *at),
                "{} received a message after their request returned",
                readers[*i]
            );
            if to_them.is_empty() {
                got_nothing += 1;
            }
        }
        assert!(
            got_nothing > 0,
            "the test reached readers before their messages"
        );
        assert_eq!(done.skipped, got_nothing, "{done:?}");
        assert_eq!(done.sent, 400 - got_nothing, "{done:?}");
    }
);

/// Issue 15, item 1: a relay that takes 0.8 × `smtp.timeout` over each RCPT and each message,
/// with the lease at its minimum (3 × `smtp.timeout`), `workers` dispatchers on one store.
/// Rows wait in a claimed batch far longer than their lease; none may be sent twice.
async fn a_slow_relay_reaches_each_reader_once_with(engine: Engine, workers: usize) {
    let t = spawn_app_with(engine, "[delivery]\nconcurrency = 2\nlease = \"3s\"\n").await;
    assert_eq!(t.app.settings.smtp.timeout, Duration::from_secs(1));
    let mut others = Vec::new();
    for _ in 1..workers {
        let app = nashra::app::App::new((*t.app.settings).clone())
            .await
            .unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        let run = tokio::spawn(nashra::startup::run(
            app,
            nashra::startup::Roles::WORKER,
            None,
            rx,
        ));
        others.push((stop, run));
    }
    let readers = confirmed_readers(&t, 30).await;
    t.add_article("https://example.org/slow/", "خبر", "نص")
        .await;
    t.smtp.set_step_delay(Duration::from_millis(800));
    let id = t.send_now().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let v = t.send(id).await;
        if v.status == "done" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never finished: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let per = t.smtp.per_recipient();
    let twice: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "readers sent the digest twice: {twice:?}");
    t.assert_each_received_once(&readers);
    for (stop, run) in others {
        let _ = stop.send(true);
        run.await.unwrap().unwrap();
    }
}

both_engines!(
    multi_thread,
    a_slow_relay_reaches_each_reader_once_with_one_worker,
    |engine| a_slow_relay_reaches_each_reader_once_with(engine, 1)
);

both_engines!(
    multi_thread,
    a_slow_relay_reaches_each_reader_once_with_three_workers,
    |engine| a_slow_relay_reaches_each_reader_once_with(engine, 3)
);
