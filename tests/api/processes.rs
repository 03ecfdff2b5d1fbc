//! Several Nashra processes (the real binary) on one PostgreSQL: the database, never timing,
//! decides who sends what. These run on PostgreSQL only (ignored, with the reason, without
//! `NASHRA_TEST_POSTGRES_URL`).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use nashra::{
    app::{Actor, App, SendControl},
    config::Settings,
    domain::{SubscriberEmail, SubscriberName},
    store::{DigestOutcome, DigestStatus, NewArticle},
};

use crate::helpers::{Engine, TestPlace, rss, serve::article, smtp::TestSmtp, test_toml};

/// A running `nashra` process, killed (SIGKILL) when dropped if still running.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// `nashra --config CONFIG ARGS…`, with `env` on top.
    fn start(config: &Path, args: &[&str], env: &[(&str, String)]) -> Proc {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nashra"));
        c.arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(if std::env::var("TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (k, v) in env {
            c.env(k, v);
        }
        Proc(c.spawn().expect("nashra starts"))
    }

    /// SIGTERM, then wait for it to end.
    fn stop(mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

/// A PostgreSQL place, its config file (with `extra`), and the test's own `App` on it.
async fn setup(smtp: &TestSmtp, extra: &str) -> (TestPlace, std::path::PathBuf, Arc<App>) {
    let place = TestPlace::new(Engine::Postgres).await;
    let toml = merge_toml(&test_toml(&place, smtp.addr), extra);
    let config = place.path().join("nashra.toml");
    std::fs::write(&config, &toml).unwrap();
    let app = App::new(Settings::from_toml_over_defaults(&toml).unwrap())
        .await
        .unwrap();
    (place, config, app)
}

/// `base` with `extra` layered over it, as one TOML file (a process reads one).
fn merge_toml(base: &str, extra: &str) -> String {
    fn merge(into: &mut toml::Table, from: toml::Table) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
                (Some(toml::Value::Array(a)), toml::Value::Array(b)) => a.extend(b),
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    let mut t: toml::Table = base.parse().unwrap();
    merge(&mut t, extra.parse().unwrap());
    toml::to_string(&t).unwrap()
}

async fn readers(app: &App, n: usize) -> Vec<String> {
    let emails: Vec<String> = (0..n).map(|i| format!("p{i}@example.com")).collect();
    let rows: Vec<_> = emails
        .iter()
        .map(|e| {
            (
                SubscriberEmail::parse(e).unwrap(),
                SubscriberName::default(),
            )
        })
        .collect();
    app.store.import(&rows, true, "test").await.unwrap();
    emails
}

async fn queue_digest(app: &App) -> i64 {
    match app.start_send(&Actor::cli(), None, &[]).await.unwrap() {
        DigestOutcome::Created { id, .. } => id,
        other => panic!("{other:?}"),
    }
}

async fn wait_done(app: &App, id: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let p = app.store.progress(id).await.unwrap().unwrap();
        if p.status == DigestStatus::Done {
            return;
        }
        assert!(Instant::now() < deadline, "send {id} never finished: {p:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn copies(smtp: &TestSmtp, readers: &[String]) -> (Vec<String>, usize) {
    let per = smtp.per_recipient();
    let missing = readers
        .iter()
        .filter(|r| !per.contains_key(*r))
        .cloned()
        .collect();
    let extra = per.values().map(|n| n - 1).sum();
    (missing, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to run on"
)]
async fn three_workers_and_a_web_process_reach_every_reader_once_and_obey_a_pause() {
    let smtp = TestSmtp::start().await;
    let (_place, config, app) = setup(&smtp, "[delivery]\nconcurrency = 8\nlease = \"5s\"\n").await;
    let readers = readers(&app, 3000).await;
    let _web = Proc::start(
        &config,
        &["serve", "--no-delivery", "--no-scheduler", "--no-feeds"],
        &[],
    );
    let workers: Vec<Proc> = (0..3)
        .map(|_| Proc::start(&config, &["worker"], &[]))
        .collect();
    article(&app, "a").await;
    // Slow the relay a little so the pause lands mid-send.
    smtp.set_delay(Duration::from_millis(3));
    let id = queue_digest(&app).await;
    smtp.wait_for(300, Duration::from_secs(60)).await;
    app.control(&Actor::cli(), id, SendControl::Pause)
        .await
        .unwrap();
    // Within a second every worker stops starting messages (the ones on the wire end).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at_pause = smtp.count();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(smtp.count(), at_pause, "nothing more goes out while paused");
    assert!(at_pause < readers.len(), "paused mid-send ({at_pause})");
    smtp.set_delay(Duration::ZERO);
    app.control(&Actor::cli(), id, SendControl::Resume)
        .await
        .unwrap();
    wait_done(&app, id, Duration::from_secs(120)).await;
    let (missing, extra) = copies(&smtp, &readers);
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert_eq!(extra, 0, "no reader got it twice");
    drop(workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to run on"
)]
async fn a_worker_killed_mid_send_leaves_its_rows_to_the_others() {
    const CONCURRENCY: usize = 4;
    let smtp = TestSmtp::start().await;
    let (_place, config, app) = setup(
        &smtp,
        &format!("[delivery]\nconcurrency = {CONCURRENCY}\nlease = \"3s\"\n"),
    )
    .await;
    let readers = readers(&app, 2000).await;
    smtp.set_delay(Duration::from_millis(2));
    let victim = Proc::start(&config, &["worker"], &[]);
    let others: Vec<Proc> = (0..2)
        .map(|_| Proc::start(&config, &["worker"], &[]))
        .collect();
    article(&app, "a").await;
    let id = queue_digest(&app).await;
    smtp.wait_for(400, Duration::from_secs(60)).await;
    drop(victim); // SIGKILL, mid-send
    wait_done(&app, id, Duration::from_secs(120)).await;
    let (missing, extra) = copies(&smtp, &readers);
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert!(
        extra <= 2 * CONCURRENCY,
        "{extra} duplicates; the window is 2 × concurrency"
    );
    drop(others);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to run on"
)]
async fn two_workers_share_one_rate() {
    let smtp = TestSmtp::start().await;
    let (_place, config, app) =
        setup(&smtp, "[delivery]\nmax_per_second = 40\nconcurrency = 8\n").await;
    readers(&app, 200).await;
    let workers: Vec<Proc> = (0..2)
        .map(|_| Proc::start(&config, &["worker"], &[]))
        .collect();
    article(&app, "a").await;
    let id = queue_digest(&app).await;
    wait_done(&app, id, Duration::from_secs(60)).await;
    let mut at: Vec<Instant> = smtp.messages().iter().map(|m| m.at).collect();
    at.sort();
    assert_eq!(at.len(), 200);
    // 200 messages at 40 a second together (not 80): 199 intervals of 25 ms. Within 10 %.
    let secs = (at[199] - at[0]).as_secs_f64();
    let expected = 199.0 / 40.0;
    assert!(
        (secs - expected).abs() <= expected * 0.1,
        "{secs:.2} s for 200 messages; {expected:.2} s at 40 a second"
    );
    drop(workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to run on"
)]
async fn two_serve_processes_make_one_digest_a_minute_and_poll_a_feed_once_a_turn() {
    // The feed counts its requests: two processes polling every 2 s share the turns.
    let feed = Arc::new(Mutex::new(rss(&[("f1", "خبر الخلاصة", "نص")])));
    let hits = Arc::new(Mutex::new(0usize));
    let feed_addr = {
        let hits = hits.clone();
        let app = axum::Router::new().route(
            "/feed.xml",
            axum::routing::get(move || {
                let (feed, hits) = (feed.clone(), hits.clone());
                async move {
                    *hits.lock().unwrap() += 1;
                    (
                        [("Content-Type", "application/rss+xml")],
                        feed.lock().unwrap().clone(),
                    )
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        addr
    };
    let smtp = TestSmtp::start().await;
    let (_place, config, app) = setup(
        &smtp,
        &format!(
            "[[schedules]]\nname = \"minutely\"\ncron = \"* * * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة {{{{ date }}}}\"\n[[feeds]]\nurl = \"http://{feed_addr}/feed.xml\"\npoll_every = \"2s\"\n"
        ),
    )
    .await;
    let readers = readers(&app, 50).await;
    let started = Instant::now();
    let procs: Vec<Proc> = (0..2)
        .map(|_| Proc::start(&config, &["serve"], &[]))
        .collect();
    // Wait through the next minute's slot (at most 60 s away) and its send.
    let deadline = Instant::now() + Duration::from_secs(80);
    loop {
        let done = app.store.archive(10, 0).await.unwrap();
        if !done.is_empty() && smtp.count() >= readers.len() {
            break;
        }
        assert!(Instant::now() < deadline, "no digest within 80 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let digests = app.store.archive(10, 0).await.unwrap();
    assert_eq!(
        digests.iter().filter(|d| d.schedule == "minutely").count(),
        1,
        "one digest for the slot: {digests:?}"
    );
    let (missing, extra) = copies(&smtp, &readers);
    assert!(missing.is_empty() && extra == 0, "{missing:?} {extra}");
    // One poll a turn across both processes (a turn every 2 s), not one per process.
    let polls = *hits.lock().unwrap();
    let turns = elapsed / 2.0;
    assert!(
        (polls as f64) <= turns + 2.0,
        "{polls} polls in {elapsed:.0} s: the feed was polled by both processes"
    );
    assert!(polls >= 2, "polled at all: {polls}");
    for p in procs {
        p.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to run on"
)]
async fn a_reader_who_leaves_gets_nothing_more_from_any_worker() {
    // The unsubscribe happens in this process; the messages go out from two workers.
    let smtp = TestSmtp::start().await;
    let (_place, config, app) = setup(&smtp, "[delivery]\nconcurrency = 4\nlease = \"5s\"\n").await;
    let readers = readers(&app, 600).await;
    let workers: Vec<Proc> = (0..2)
        .map(|_| Proc::start(&config, &["worker"], &[]))
        .collect();
    smtp.set_delay(Duration::from_millis(8));
    article(&app, "a").await;
    let id = queue_digest(&app).await;
    smtp.wait_for(60, Duration::from_secs(60)).await;
    let ids: Vec<i64> = app
        .store
        .subscribers_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    let mut returned = Vec::new();
    for round in 0..8 {
        let k = smtp.count() + 10 + round;
        app.unsubscribe_reader(&Actor::cli(), ids[k]).await.unwrap();
        returned.push((k, Instant::now()));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    wait_done(&app, id, Duration::from_secs(120)).await;
    let messages = smtp.messages();
    for (k, at) in &returned {
        assert!(
            messages
                .iter()
                .filter(|m| m.to.contains(&readers[*k]))
                .all(|m| m.at <= *at),
            "{} got a message after leaving",
            readers[*k]
        );
    }
    drop(workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to run on"
)]
async fn two_schedulers_start_an_alert_once_and_a_killed_one_leaves_its_rows_to_the_other() {
    const CONCURRENCY: usize = 4;
    let smtp = TestSmtp::start().await;
    let (place, config, app) = setup(
        &smtp,
        &format!(
            "[delivery]\nconcurrency = {CONCURRENCY}\nlease = \"3s\"\n[alerts]\nundo = \"2s\"\nquiet_hours = \"\"\nmax_per_day = 5\n"
        ),
    )
    .await;
    let readers = readers(&app, 2000).await;
    place.exec("UPDATE subscribers SET alerts = 1").await;
    smtp.set_delay(Duration::from_millis(2));
    let victim = Proc::start(&config, &["serve", "--no-feeds"], &[]);
    let other = Proc::start(&config, &["serve", "--no-feeds"], &[]);
    let (id, _) = app
        .push_article(
            &Actor::cli(),
            nashra::feeds::normalize(NewArticle {
                url: "https://example.org/breaking/".into(),
                title: "خبر عاجل".into(),
                source: "test".into(),
                urgent: true,
                ..Default::default()
            })
            .unwrap(),
        )
        .await
        .unwrap();
    let alert = app.store.alerts(1).await.unwrap().remove(0);
    assert_eq!(alert.article_id, id);
    app.send_alert(&Actor::cli(), alert.id).await.unwrap();
    // Both processes' schedulers see it due when the undo window ends; one starts it.
    smtp.wait_for(400, Duration::from_secs(60)).await;
    drop(victim); // SIGKILL, mid-send
    let digest = app
        .store
        .alert(alert.id)
        .await
        .unwrap()
        .unwrap()
        .digest_id
        .unwrap();
    wait_done(&app, digest, Duration::from_secs(120)).await;
    assert_eq!(
        place
            .scalar("SELECT COUNT(*) FROM digests WHERE schedule = '!alert'")
            .await,
        1,
        "one send for the alert"
    );
    let (missing, extra) = copies(&smtp, &readers);
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert!(
        extra <= 2 * CONCURRENCY,
        "{extra} duplicates; the window is 2 × concurrency"
    );
    drop(other);
}
