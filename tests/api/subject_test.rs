//! A subject test decided by readers' clicks, with real `serve` processes: three subjects
//! over 3,000 readers, samples of 10 % each, readers of the second made to click; the process
//! is killed (SIGKILL) during the wait and started again. The second subject wins, the rest
//! of the audience gets it, and every reader gets exactly one message.

use std::{
    collections::HashMap,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use nashra::{
    app::{Actor, App, SubjectTestIn},
    config::Settings,
    domain::{SubscriberEmail, SubscriberName},
    store::{DigestOutcome, DigestStatus},
};

use crate::helpers::{
    PUBLIC, TestPlace, check_eml, parse, serve::serve, smtp::TestSmtp, test_toml,
};

const READERS: usize = 3000;
const SUBJECTS: [&str; 3] = [
    "عنوان أ: حصاد اليوم",
    "عنوان ب: ما فاتك اليوم",
    "عنوان ج: نشرة المساء",
];

fn start(config: &Path) -> Child {
    serve(config, &[])
}

/// The first click link (`/r/…`) of a message's plain part.
fn click_link(m: &crate::helpers::smtp::Received) -> String {
    let text = parse(m).body_text(0).unwrap().to_string();
    text.lines()
        .find(|l| l.contains("/r/"))
        .unwrap_or_else(|| panic!("no click link in:\n{text}"))
        .trim()
        .to_owned()
}

both_engines!(
    multi_thread,
    a_subject_test_is_won_by_clicks_and_survives_a_kill_during_its_wait,
    |engine| async move {
        let smtp = TestSmtp::start().await;
        let dir = TestPlace::new(engine).await;
        let extra = "[newsletter]\nclick_counts = true\n";
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("nashra.toml");
        let toml = test_toml(&dir, smtp.addr)
            .replace("[delivery]\n", "[delivery]\nmax_per_second = 2000\n");
        std::fs::write(
            &config,
            toml.replace(
                "bind = \"127.0.0.1:0\"",
                &format!("bind = \"127.0.0.1:{port}\""),
            ) + extra,
        )
        .unwrap();
        let settings = Settings::from_toml_layers(&[&toml, extra]).unwrap();
        let app = App::new(settings).await.unwrap();
        let rows: Vec<_> = (0..READERS)
            .map(|i| {
                (
                    SubscriberEmail::parse(&format!("s{i}@example.com")).unwrap(),
                    SubscriberName::default(),
                )
            })
            .collect();
        app.store.import(&rows, true, "test").await.unwrap();
        for n in 0..2 {
            app.push_article(
                &Actor::cli(),
                nashra::feeds::normalize(nashra::store::NewArticle {
                    url: format!("https://example.org/{n}/"),
                    title: format!("خبر رقم {n}"),
                    source: "test".into(),
                    ..Default::default()
                })
                .unwrap(),
            )
            .await
            .unwrap();
        }

        // Too few readers for samples of 1,000 (the default) and a rest: refused, nothing sent.
        let test = |min_sample| SubjectTestIn {
            subjects: SUBJECTS.iter().map(|s| s.to_string()).collect(),
            sample_percent: Some(10),
            min_sample,
            wait: Some("1m".into()),
        };
        let refused = app.start_send_tested(&Actor::cli(), None, test(None)).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("min_sample")),
            "{refused:?}"
        );
        let DigestOutcome::Created { id, recipients } = app
            .start_send_tested(&Actor::cli(), None, test(Some(100)))
            .await
            .unwrap()
        else {
            panic!("no send")
        };
        assert_eq!(recipients as usize, READERS);

        // The samples go; the rest wait for the winner.
        let mut child = start(&config);
        let samples = smtp.wait_for(900, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(smtp.count(), 900, "only the samples before the wait ends");
        let mut by_subject: HashMap<String, Vec<_>> = HashMap::new();
        for m in &samples {
            by_subject
                .entry(parse(m).subject().unwrap().to_owned())
                .or_default()
                .push(m.clone());
        }
        for s in SUBJECTS {
            assert_eq!(by_subject[s].len(), 300, "{s}");
        }
        check_eml(&by_subject[SUBJECTS[1]][0]);

        // Readers click, a minute after delivery (the scanner rule of /r/): 60 of subject B's
        // readers, 12 of A's, 3 of C's; a reader who clicks twice counts once.
        dir.exec(&format!(
            "UPDATE deliveries SET sent_at = sent_at - 120000 WHERE digest_id = {id}"
        ))
        .await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for (s, n) in [(SUBJECTS[1], 60), (SUBJECTS[0], 12), (SUBJECTS[2], 3)] {
            for m in &by_subject[s][..n] {
                let link = click_link(m).replacen(PUBLIC, &base, 1);
                let r = http.get(&link).send().await.unwrap();
                assert_eq!(r.status(), 302, "{link}");
            }
        }
        let again = click_link(&by_subject[SUBJECTS[1]][0]).replacen(PUBLIC, &base, 1);
        assert_eq!(http.get(&again).send().await.unwrap().status(), 302);
        let test = app.subject_test_results(id).await.unwrap().unwrap();
        let clicked: Vec<i64> = test.subjects.iter().map(|s| s.clicked).collect();
        assert_eq!(clicked, [12, 60, 3]);
        assert_eq!(test.winner, None, "still waiting");

        // Killed during the wait, started again: the winner is chosen then.
        child.kill().unwrap();
        child.wait().unwrap();
        let mut child = start(&config);
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let p = app.store.progress(id).await.unwrap().unwrap();
            if p.status == DigestStatus::Done {
                assert_eq!(p.sent as usize, READERS, "{p:?}");
                break;
            }
            assert!(Instant::now() < deadline, "the send never finished: {p:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let test = app.subject_test_results(id).await.unwrap().unwrap();
        assert_eq!(test.winner, Some(1), "{test:?}");
        assert_eq!(test.note.as_deref(), Some("significant"), "{test:?}");
        let all = smtp.messages();
        assert_eq!(all.len(), READERS, "every reader once, no more");
        let mut per_reader: HashMap<&str, usize> = HashMap::new();
        let mut subjects: HashMap<String, usize> = HashMap::new();
        for m in &all {
            *per_reader.entry(m.to[0].as_str()).or_default() += 1;
            *subjects
                .entry(parse(m).subject().unwrap().to_owned())
                .or_default() += 1;
        }
        assert_eq!(per_reader.len(), READERS);
        assert!(per_reader.values().all(|n| *n == 1));
        assert_eq!(subjects[SUBJECTS[0]], 300);
        assert_eq!(subjects[SUBJECTS[1]], 300 + 2100, "the rest got the winner");
        assert_eq!(subjects[SUBJECTS[2]], 300);
    }
);
