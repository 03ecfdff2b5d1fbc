//! The digest itself: what it looks like (snapshot), what it holds, and when it goes out.

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use nashra::{
    render::LinkItem,
    store::{Article, DigestOutcome},
};
use serde_json::{Value, json};

use crate::helpers::*;

fn article(id: i64, title: &str, summary: &str, tags: &[&str], image: &str) -> Article {
    let t = Utc
        .with_ymd_and_hms(2020, 6, 12, 6, 30, 0)
        .unwrap()
        .timestamp_millis();
    Article {
        id,
        dedup_key: format!("url:{id}"),
        guid: None,
        url: format!("https://example.org/2020/06/{id}/"),
        canonical_url: format!("https://example.org/2020/06/{id}"),
        title: title.into(),
        author: "فريق التحرير".into(),
        summary: summary.into(),
        content_html: String::new(),
        image: image.into(),
        image_alt: String::new(),
        tags: serde_json::to_string(tags).unwrap(),
        categories: "[]".into(),
        published_at: Some(t),
        source: "test".into(),
        arrived_at: t,
        updated_at: t,
    }
}

// The rendered digest is a reviewed artefact: any change to it shows up as a snapshot diff.
both_engines!(rendered_digest_snapshot, |engine| async move {
    let t = spawn_app(engine).await;
    let articles = vec![
        article(
            2,
            "نيوزويك: إيران تدفع بغداد نحو موسكو",
            "«التقارير المتعلقة بعزم العراق شراء نظام صواريخ أرض جو “S-400” الروسي لا تزال تتوارد» #العراق",
            &["العراق", "روسيا"],
            "https://example.org/img/a.jpg",
        ),
        article(
            1,
            "شركة Huawei توسّع شبكات 5G",
            "عقود بقيمة 700 مليون دولار في 3 دول.",
            &[],
            "",
        ),
    ];
    let most_read = vec![LinkItem {
        title: "الأكثر قراءة: تطبيق TikTok".into(),
        url: "https://example.org/m/1/".into(),
    }];
    let sched = t.app.settings.schedule(None).unwrap();
    let now = Utc.with_ymd_and_hms(2020, 6, 12, 4, 0, 0).unwrap();
    let d = t
        .app
        .renderer
        .digest(
            &t.app.settings,
            sched,
            &articles,
            &most_read,
            now,
            &nashra::render::SlotMarkers::from_key("snapshot"),
            false,
            &nashra::render::Shaping::default(),
        )
        .unwrap();
    assert_eq!(d.subject, "نشرة الحل نت — 12 يونيو/ حزيران 2020");
    // One snapshot for both engines: the rendering does not depend on the store.
    insta::with_settings!({ prepend_module_to_snapshot => false, snapshot_path => "snapshots" }, {
        insta::assert_snapshot!("digest_html", d.html);
        insta::assert_snapshot!("digest_text", d.text);
    });
    // What the RTL rules ask for, independent of the snapshot.
    assert!(d.html.contains("<html lang=\"ar\" dir=\"rtl\""));
    assert!(
        d.html.contains("<span dir=\"ltr\">S-400</span>")
            && d.html.contains("<span dir=\"ltr\">Huawei</span>")
    );
    assert!(
        d.html.contains("700 مليون") && !d.html.contains("<span dir=\"ltr\">700"),
        "numbers stay bare"
    );
    assert!(!d.html.contains("<bdi"));
    assert!(d.html.contains("الأكثر قراءة"));
    assert!(d.html.contains("12 يونيو/ حزيران 2020"));
    assert!(
        d.text.contains("\u{200F}"),
        "lines starting LTR carry an RLM"
    );
});

both_engines!(
    the_digest_passes_the_message_checker_and_has_the_most_read_section,
    |engine| async move {
        let most = Arc::new(Mutex::new(rss(&[
            ("m1", "الأكثر قراءة الأول", ""),
            ("m2", "الأكثر قراءة الثاني", ""),
        ])));
        let addr = serve_feed(most).await;
        let t = spawn_app_with(
            engine,
            &format!("[newsletter]\nmost_read_feed = \"http://{addr}/feed.xml\"\n"),
        )
        .await;
        t.subscribe_and_confirm("reader@example.com").await;
        t.add_article(
            "https://example.org/1/",
            "خبر عن “S-400” في العراق",
            "نص الخبر #العراق",
        )
        .await;
        let id = t.send_now().await;
        t.wait_send(id).await;
        let m = t.wait_for_mail_to("reader@example.com", 2).await;
        let html = parse(&m).body_html(0).unwrap().to_string();
        assert!(html.contains("الأكثر قراءة الأول"));
        let report = check_eml(&m);
        assert!(report.contains(" 0 failed"), "{report}");
    }
);

both_engines!(
    without_a_most_read_feed_the_section_is_omitted,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let d = t
            .app
            .preview(t.app.settings.schedule(None).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!d.html.contains("الأكثر قراءة"));
    }
);

both_engines!(at_most_max_articles_newest_first, |engine| async move {
    let t = spawn_app_with(engine, "[[schedules]]\nname = \"daily\"\ncron = \"0 7 * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة\"\nmax_articles = 3\n").await;
    for i in 1..=5 {
        t.add_article(
            &format!("https://example.org/{i}/"),
            &format!("خبر رقم {i}"),
            "نص",
        )
        .await;
    }
    let d = t
        .app
        .preview(t.app.settings.schedule(None).unwrap())
        .await
        .unwrap()
        .unwrap();
    let pos = |s: &str| d.html.find(s);
    assert!(pos("خبر رقم 5").unwrap() < pos("خبر رقم 4").unwrap());
    assert!(pos("خبر رقم 3").is_some() && pos("خبر رقم 2").is_none());
});

both_engines!(
    a_schedule_slot_fires_once_and_only_with_news,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.subscribe_and_confirm("reader@example.com").await;
        let slot = Utc::now().timestamp_millis() - 1000;
        // Nothing new yet: no digest.
        assert_eq!(
            t.app.fire_schedule("daily", slot).await.unwrap(),
            DigestOutcome::NothingNew
        );
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let next = slot + 1;
        let first = t.app.fire_schedule("daily", next).await.unwrap();
        let DigestOutcome::Created { id, recipients: 1 } = first else {
            panic!("{first:?}")
        };
        // The same slot again (a second process, a restart): the same digest, not a new one.
        assert_eq!(
            t.app.fire_schedule("daily", next).await.unwrap(),
            DigestOutcome::Exists(id)
        );
        t.wait_send(id).await;
        assert_eq!(t.smtp.messages_to("reader@example.com").len(), 2);
    }
);

both_engines!(
    a_schedules_first_digest_does_not_dump_the_archive,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.subscribe_and_confirm("reader@example.com").await;
        t.add_article("https://example.org/old/", "خبر قديم", "نص")
            .await;
        // Pretend the old article arrived a month ago.
        let month_ago = Utc::now().timestamp_millis() - 30 * 24 * 3600 * 1000;
        sqlx_set_arrival(&t, month_ago).await;
        t.add_article("https://example.org/new/", "خبر جديد", "نص")
            .await;
        let id = t.send_now().await;
        let d = t.app.store.digest(id).await.unwrap().unwrap();
        assert!(d.html.contains("خبر جديد") && !d.html.contains("خبر قديم"));
    }
);

async fn sqlx_set_arrival(t: &TestApp, at: i64) {
    t.dir
        .exec(&format!("UPDATE articles SET arrived_at = {at}"))
        .await;
}

both_engines!(nothing_new_means_no_digest, |engine| async move {
    let t = spawn_app(engine).await;
    let r = t.admin_post("/api/sends", json!({})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"id": null, "reason": "nothing_new"}));
    let r = t
        .admin_post("/api/sends", json!({"schedule": "weekly"}))
        .await;
    assert_eq!(r.status(), 404);
});

// The scheduler in real time: an every-minute schedule fires once at the next minute.
both_engines!(the_scheduler_fires_a_due_slot_once, |engine| async move {
    let t = spawn_app_with(engine, "[[schedules]]\nname = \"minutely\"\ncron = \"* * * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة {{ date }}\"\n").await;
    t.subscribe_and_confirm("reader@example.com").await;
    t.add_article("https://example.org/1/", "خبر الدقيقة", "نص")
        .await;
    let digest = t
        .wait_for_mail_to_within("reader@example.com", 2, std::time::Duration::from_secs(75))
        .await;
    assert!(parse(&digest).body_html(0).unwrap().contains("خبر الدقيقة"));
    // The same slot does not fire again on the next ticks.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(t.smtp.messages_to("reader@example.com").len(), 2);
    assert_eq!(t.app.store.archive(10, 0).await.unwrap().len(), 1);
});

/// Issue 15, item 21: the message checker the tests rely on is part of the repository, so a
/// fresh clone checks every message instead of skipping, and nothing points outside it.
#[test]
fn the_message_checker_ships_with_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = root.join("tools/check_eml.py");
    assert!(tool.exists(), "{} is missing", tool.display());
    let out = std::process::Command::new("python3")
        .arg(&tool)
        .arg("--help")
        .output()
        .expect("python3 runs (scripts/test installs it)");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && help.contains("--dkim-txt"),
        "{help}"
    );
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("tests/api")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for f in files.iter().filter(|f| f.is_file()) {
        let text = std::fs::read_to_string(f).unwrap();
        // Spelt in pieces so this file does not find itself.
        let (outside, skipping) = (
            format!("{}/shared/", ".."),
            format!("{} that check", "skipping"),
        );
        assert!(
            !text.contains(&outside),
            "{} reaches outside the repository",
            f.display()
        );
        assert!(!text.contains(&skipping), "{} skips a check", f.display());
    }
}
