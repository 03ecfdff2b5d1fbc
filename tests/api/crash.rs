//! Kill the process (SIGKILL, not a graceful stop) in the middle of a send, start it again:
//! every recipient gets the digest, and none more than once beyond the in-flight window —
//! with readers spread over sections, so the send carries several editions, and each reader
//! gets their own.

use std::{
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use nashra::{
    app::{Actor, App},
    config::Settings,
    domain::SubscriberEmail,
};

use crate::helpers::{TestPlace, serve::serve, smtp::TestSmtp, test_toml};

const READERS: usize = 3000;
const SECTIONS: &str = "[[sections]]\nslug = \"politics\"\nname = \"سياسة\"\n[[sections]]\nslug = \"culture\"\nname = \"ثقافة\"\n[[sections]]\nslug = \"sport\"\nname = \"رياضة\"\n";

/// Reader `i`'s sections (none = every one) and the titles their digest must carry.
fn choice_of(i: usize) -> (Option<&'static str>, &'static [&'static str]) {
    match i % 4 {
        1 => (Some("politics"), &["خبر سياسي"]),
        2 => (Some("culture"), &["خبر ثقافي"]),
        3 => (Some("culture,sport"), &["خبر رياضي", "خبر ثقافي"]),
        _ => (None, &["خبر رياضي", "خبر ثقافي", "خبر سياسي"]),
    }
}
const CONCURRENCY: usize = 4;

fn start(config: &Path) -> Child {
    // The same settings as `extra` below, the way an operator overrides a file.
    let concurrency = CONCURRENCY.to_string();
    serve(
        config,
        &[
            ("NASHRA__DELIVERY__CONCURRENCY", concurrency.as_str()),
            ("NASHRA__DELIVERY__LEASE", "3s"),
            ("NASHRA__DELIVERY__MAX_PER_SECOND", "600"),
        ],
    )
}

both_engines!(
    multi_thread,
    killed_mid_send_then_restarted_every_reader_gets_it_once,
    |engine| async move {
        let smtp = TestSmtp::start().await;
        let dir = TestPlace::new(engine).await;
        let extra = format!(
            "[delivery]\nconcurrency = {CONCURRENCY}\nlease = \"3s\"\nmax_per_second = 600\n{SECTIONS}"
        );
        let config = dir.path().join("nashra.toml");
        std::fs::write(&config, test_toml(&dir, smtp.addr) + SECTIONS).unwrap();
        // The test process shares the database: it queues the digest and watches the ledger.
        let settings = Settings::from_toml_layers(&[&test_toml(&dir, smtp.addr), &extra]).unwrap();
        let app = App::new(settings).await.unwrap();
        let rows: Vec<_> = (0..READERS)
            .map(|i| {
                (
                    SubscriberEmail::parse(&format!("k{i}@example.com")).unwrap(),
                    nashra::domain::SubscriberName::default(),
                )
            })
            .collect();
        app.store.import(&rows, true, "test").await.unwrap();
        dir.exec(
            "UPDATE subscribers SET sections = CASE CAST(SUBSTR(email, 2, LENGTH(email) - 13) AS INTEGER) % 4
                 WHEN 1 THEN 'politics' WHEN 2 THEN 'culture' WHEN 3 THEN 'culture,sport' END",
        )
        .await;
        for (n, (title, section)) in [
            ("خبر سياسي", "politics"),
            ("خبر ثقافي", "culture"),
            ("خبر رياضي", "sport"),
        ]
        .into_iter()
        .enumerate()
        {
            app.push_article(
                &Actor::cli(),
                nashra::feeds::normalize(nashra::store::NewArticle {
                    url: format!("https://example.org/{n}/"),
                    title: title.into(),
                    categories: vec![section.into()],
                    source: "test".into(),
                    ..Default::default()
                })
                .unwrap(),
            )
            .await
            .unwrap();
        }
        for i in [1, 2, 3, 4] {
            let email = SubscriberEmail::parse(&format!("k{i}@example.com")).unwrap();
            let id = app
                .store
                .subscriber_id_by_email(&email)
                .await
                .unwrap()
                .unwrap();
            let (sections, _) = choice_of(i);
            let stored = app
                .store
                .reader_choice(id)
                .await
                .unwrap()
                .unwrap()
                .1
                .sections;
            assert_eq!(stored.as_deref(), sections, "k{i}");
        }
        let nashra::store::DigestOutcome::Created { id, .. } =
            app.start_send(&Actor::cli(), None, &[]).await.unwrap()
        else {
            panic!("no digest")
        };

        let mut child = start(&config);
        smtp.wait_for(READERS / 3, Duration::from_secs(60)).await;
        child.kill().unwrap(); // SIGKILL: no chance to flush or release
        child.wait().unwrap();
        let at_kill = smtp.count();
        assert!(at_kill < READERS, "killed mid-send ({at_kill})");

        let mut child = start(&config);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let p = app.store.progress(id).await.unwrap().unwrap();
            if p.status == nashra::store::DigestStatus::Done {
                assert_eq!(p.sent as usize, READERS, "{p:?}");
                break;
            }
            assert!(Instant::now() < deadline, "never finished: {p:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let per = smtp.per_recipient();
        let missing: Vec<_> = (0..READERS)
            .map(|i| format!("k{i}@example.com"))
            .filter(|e| !per.contains_key(e))
            .collect();
        assert!(missing.is_empty(), "skipped: {missing:?}");
        // Each reader got their own edition (every 7th checked: parsing 3,000 is slow).
        for i in (0..READERS).step_by(7) {
            let m = &smtp.messages_to(&format!("k{i}@example.com"))[0];
            let text = crate::helpers::parse(m).body_text(0).unwrap().to_string();
            let (_, titles) = choice_of(i);
            for t in ["خبر سياسي", "خبر ثقافي", "خبر رياضي"] {
                assert_eq!(text.contains(t), titles.contains(&t), "k{i}: {t}");
            }
        }
        let extra_copies: usize = per.values().map(|n| n - 1).sum();
        assert!(
            extra_copies <= 2 * CONCURRENCY,
            "{extra_copies} duplicates; the window is 2 × concurrency = {}",
            2 * CONCURRENCY
        );
        eprintln!("killed after {at_kill} of {READERS}; {extra_copies} duplicate(s) after restart");
    }
);
