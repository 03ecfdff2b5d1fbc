//! Digests at each reader's local hour (issue 17, item 3), with the real binary: readers in
//! five zones, a `deliver = "local"` schedule whose slot is about a minute ahead in Baghdad
//! and already passed in Dubai and Kolkata. The digest is made at the earliest zone's slot
//! (Kolkata's, caught up at start); each reader gets it after their own slot and not before,
//! exactly once, through a `kill -9` between two waves; pause holds waiting waves.

use std::{
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Timelike, Utc};
use nashra::{
    app::{Actor, App, SendControl},
    config::Settings,
    domain::{SubscriberEmail, SubscriberName},
    store::DigestStatus,
};

use crate::helpers::{TestPlace, serve::serve, smtp::TestSmtp, test_toml};

const ZONES: [&str; 5] = [
    "Asia/Kolkata",
    "Asia/Dubai",
    "Asia/Baghdad",
    "Africa/Cairo",
    "Africa/Casablanca",
];

fn start(config: &Path) -> Child {
    serve(config, &[])
}

/// The slot `hh:mm` falls at in `zone` on the day of `near` there.
fn slot_in(zone: &str, near: DateTime<Utc>, hh: u32, mm: u32) -> DateTime<Utc> {
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    let day = near.with_timezone(&tz).date_naive();
    tz.from_local_datetime(&day.and_hms_opt(hh, mm, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn reader(zone: &str, n: usize) -> String {
    format!("{}-{n}@example.com", zone.replace('/', "-").to_lowercase())
}

both_engines!(
    multi_thread,
    a_local_hour_digest_reaches_each_zone_at_its_own_hour_through_a_kill_and_a_pause,
    |engine| async move {
        let smtp = TestSmtp::start().await;
        let dir = TestPlace::new(engine).await;
        // The slot: the next whole minute at least 50 s away, read in Baghdad.
        let now = Utc::now();
        let at = (now + chrono::Duration::seconds(110))
            .with_second(0)
            .unwrap()
            .with_nanosecond(0)
            .unwrap();
        let local = at.with_timezone(&chrono_tz::Asia::Baghdad);
        let (hh, mm) = (local.hour(), local.minute());
        let schedule = format!(
            "[[schedules]]\nname = \"daily\"\ncron = \"{mm} {hh} * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة {{{{ date }}}}\"\ndeliver = \"local\"\n"
        );
        // The processes serve HTTP on a port the test knows (the preferences page).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("nashra.toml");
        std::fs::write(
            &config,
            test_toml(&dir, smtp.addr).replace(
                "bind = \"127.0.0.1:0\"",
                &format!("bind = \"127.0.0.1:{port}\""),
            ) + &schedule,
        )
        .unwrap();
        let settings =
            Settings::from_toml_layers(&[&test_toml(&dir, smtp.addr), &schedule]).unwrap();
        let app = App::new(settings).await.unwrap();

        // Two readers a zone, and one who never chose (the newsroom's zone: Baghdad's).
        let mut rows = vec![(
            SubscriberEmail::parse("newsroom-zone@example.com").unwrap(),
            SubscriberName::default(),
        )];
        for z in ZONES {
            for n in 0..2 {
                rows.push((
                    SubscriberEmail::parse(&reader(z, n)).unwrap(),
                    SubscriberName::default(),
                ));
            }
        }
        app.store.import(&rows, true, "test").await.unwrap();
        for z in ZONES {
            let prefix = z.replace('/', "-").to_lowercase();
            dir.exec(&format!(
                "UPDATE subscribers SET timezone = '{z}' WHERE email LIKE '{prefix}-%'"
            ))
            .await;
        }
        app.push_article(
            &Actor::cli(),
            nashra::feeds::normalize(nashra::store::NewArticle {
                url: "https://example.org/morning/".into(),
                title: "خبر الصباح".into(),
                source: "test".into(),
                ..Default::default()
            })
            .unwrap(),
        )
        .await
        .unwrap();
        // The process last ran yesterday: Kolkata's slot today (2.5 h before Baghdad's) is
        // caught up when it starts.
        let kolkata = slot_in("Asia/Kolkata", at, hh, mm);
        let kolkata = if kolkata > now {
            kolkata - chrono::Duration::days(1)
        } else {
            kolkata
        };
        dir.exec(&format!(
            "INSERT INTO schedule_state (name, last_slot) VALUES ('daily', {})",
            (kolkata - chrono::Duration::days(1)).timestamp_millis()
        ))
        .await;

        let mut child = start(&config);
        let got = |email: &str| smtp.messages_to(email).len();
        // Kolkata's and Dubai's slots have passed: at once.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ["Asia/Kolkata", "Asia/Dubai"]
            .iter()
            .any(|z| (0..2).any(|n| got(&reader(z, n)) == 0))
        {
            assert!(Instant::now() < deadline, "the passed waves never went");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let id: i64 = dir
            .scalar("SELECT id FROM digests WHERE schedule = 'daily'")
            .await;
        let waves = app.send_waves(id).await.unwrap();
        let zones: Vec<&str> = waves.iter().map(|w| w.timezone.as_str()).collect();
        assert_eq!(zones, ZONES, "earliest first: {waves:?}");
        for w in &waves {
            assert_eq!(w.local_time, format!("{hh:02}:{mm:02}"), "{w:?}");
            let expected = if w.timezone == "Asia/Baghdad" { 3 } else { 2 };
            assert_eq!(w.readers, expected, "{w:?}");
        }
        assert!(
            Utc::now() < at,
            "the test was too slow to see Baghdad's wave wait"
        );
        for z in ["Asia/Baghdad", "Africa/Cairo", "Africa/Casablanca"] {
            assert_eq!(got(&reader(z, 0)), 0, "{z} before its hour");
        }

        // kill -9 between two waves (the first ones recorded in the ledger), then start again.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let w = app.send_waves(id).await.unwrap();
            if w[..2].iter().all(|w| w.sent == w.readers) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the first waves never recorded: {w:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let mut child = start(&config);
        let baghdad = [
            "newsroom-zone@example.com".to_string(),
            reader("Asia/Baghdad", 0),
            reader("Asia/Baghdad", 1),
        ];
        while Utc::now() < at - chrono::Duration::milliseconds(500) {
            assert!(baghdad.iter().all(|r| got(r) == 0), "before Baghdad's hour");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while baghdad.iter().any(|r| got(r) == 0) {
            assert!(Instant::now() < deadline, "Baghdad's wave never went");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for r in &baghdad {
            let m = &smtp.messages_to(r)[0];
            let arrived = Utc::now() - chrono::Duration::from_std(m.at.elapsed()).unwrap();
            assert!(arrived >= at, "{r} got it at {arrived}, before {at}");
        }

        // Pause holds the waiting waves. A reader in Casablanca moves to Dubai on the
        // preferences page: their row joins Dubai's wave, whose hour has passed — due at
        // once, but held while the send is paused.
        let (p, _) = app
            .control(&Actor::cli(), id, SendControl::Pause)
            .await
            .unwrap();
        assert_eq!(p.status, DigestStatus::Paused);
        let mover = reader("Africa/Casablanca", 1);
        let mover_id = app
            .store
            .subscriber_id_by_email(&SubscriberEmail::parse(&mover).unwrap())
            .await
            .unwrap()
            .unwrap();
        let r = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{port}/preferences/{}",
                app.tokens.preferences(mover_id)
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("schedule=daily&tz=Asia%2FDubai&alerts_per_day=2")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(got(&mover), 0, "paused: held");
        app.control(&Actor::cli(), id, SendControl::Resume)
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got(&mover) == 0 {
            assert!(Instant::now() < deadline, "the moved reader never got it");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while app.send_waves(id).await.unwrap()[1].sent < 3 {
            assert!(
                Instant::now() < deadline,
                "the moved reader's row never recorded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();

        // Each reader whose hour came got it exactly once; the others nothing yet.
        let per = smtp.per_recipient();
        for z in ["Asia/Kolkata", "Asia/Dubai", "Asia/Baghdad"] {
            for n in 0..2 {
                assert_eq!(per.get(&reader(z, n)), Some(&1), "{z}");
            }
        }
        assert_eq!(per.get("newsroom-zone@example.com"), Some(&1));
        assert_eq!(per.get(&mover), Some(&1));
        for r in [
            reader("Africa/Cairo", 0),
            reader("Africa/Cairo", 1),
            reader("Africa/Casablanca", 0),
        ] {
            assert_eq!(per.get(&r), None, "{r}");
        }
        let waves = app.send_waves(id).await.unwrap();
        let counts: Vec<(i64, i64)> = waves.iter().map(|w| (w.readers, w.sent)).collect();
        assert_eq!(
            counts,
            [(2, 2), (3, 3), (3, 3), (2, 0), (1, 0)],
            "{waves:?}"
        );
        for w in &waves[3..] {
            let zone = w.timezone.as_str();
            assert_eq!(
                DateTime::parse_from_rfc3339(&w.at)
                    .unwrap()
                    .with_timezone(&Utc),
                slot_in(zone, at, hh, mm),
                "{zone}"
            );
        }
    }
);
