//! The editor's desk in Chromium (issue 18): an editor sets tomorrow's subject, a note and
//! the lead story on «المقالات», moves an article up, sees it in the preview; the digest
//! carries it and the next one is back to the defaults. Then a subject test decided by
//! clicks, on its send's page. Screenshots: `desk.png`, `subject-test.png`.

use std::time::Duration;

use nashra::{
    app::{Actor, SubjectTestIn},
    store::{DigestOutcome, Role},
};
use serde_json::{Value, json};

use super::{Browser, ONE_BROWSER, readers};
use crate::helpers::*;

const CONFIG: &str = "[newsletter]\nclick_counts = true\n\
[[schedules]]\nname = \"daily\"\nlabel = \"النشرة اليومية\"\ncron = \"0 7 * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"النشرة اليومية\"\n";

const TITLES: [&str; 4] = [
    "البرلمان يقرّ قانون الانتخابات الجديد بعد جلسة طويلة",
    "معرض بغداد الدولي للكتاب يفتح أبوابه",
    "المنتخب يتأهل إلى نهائي كأس آسيا",
    "ارتفاع أسعار الذهب في الأسواق المحلية",
];

both_engines!(
    multi_thread,
    an_editor_shapes_tomorrows_digest_and_a_subject_test_is_decided_by_clicks,
    |engine| async move {
        let _one = ONE_BROWSER.lock().await;
        let t = spawn_at_home(engine, CONFIG).await;
        readers(&t, 60).await;
        for (i, title) in TITLES.iter().enumerate() {
            t.add_article(
                &format!("https://example.org/d/{i}"),
                title,
                "ملخص الخبر في سطرين.",
            )
            .await;
        }
        let ids: Vec<i64> = {
            let v: Value = t.admin_get("/api/schedules/daily/next").await;
            serde_json::from_value(v["order"].clone()).unwrap()
        };
        // Newest first: TITLES[3], [2], [1], [0]. The editor leads with the oldest.
        let (lead, moved) = (ids[3], ids[1]);
        add_account(&t, "editor@example.org", Role::Editor).await;
        let b = Browser::start().await;
        b.client.set_window_size(1200, 1600).await.unwrap();
        b.sign_in(&t, "editor@example.org").await;
        b.click("a[href='/admin/articles']").await;
        b.assert_rtl().await;
        b.fill(
            "#desk-daily input[name=subject]",
            "عدد خاص: قانون الانتخابات",
        )
        .await;
        b.fill(
            "#desk-daily textarea[name=note]",
            "صباح الخير. في هذا العدد كل ما تحتاجون معرفته عن قانون الانتخابات الجديد.",
        )
        .await;
        b.click(&format!("input[name=lead][value='{lead}']")).await;
        b.click("#desk-daily button[type=submit]:not([name])").await;
        b.wait_text(".flash, .notice, main", Duration::from_secs(10), |s| {
            s.contains("حُفظ ما اخترته")
        })
        .await;
        // ▲ on the third article (no script needed: a form).
        b.click(&format!("form[action='/admin/articles/{moved}/up'] button"))
            .await;
        b.wait_text("main", Duration::from_secs(10), |s| {
            s.contains("تغيّر ترتيب")
        })
        .await;
        let list = b.text("#daily ol.desk-list").await;
        let at = |title: &str| {
            list.find(title)
                .unwrap_or_else(|| panic!("{title}: {list}"))
        };
        // The lead, then the moved one above the newest, then the rest.
        assert!(
            at(TITLES[0]) < at(TITLES[2])
                && at(TITLES[2]) < at(TITLES[3])
                && at(TITLES[3]) < at(TITLES[1]),
            "{list}"
        );
        assert!(b.text("#daily li.lead").await.contains("الخبر الرئيسي"));
        b.screenshot("desk").await;

        // The preview shows it at once.
        b.client
            .goto(&t.url("/admin/preview?schedule=daily"))
            .await
            .unwrap();
        let shown = b
            .js("return [...document.querySelectorAll('iframe')].map(f => f.srcdoc).join('');")
            .await;
        let shown = shown.as_str().unwrap();
        assert!(shown.contains("كلمة التحرير") && shown.contains("الخبر الرئيسي"));
        assert!(b.text("main").await.contains("عدد خاص: قانون الانتخابات"));

        // The digest carries it; the desk is empty after.
        let v: Value = t
            .admin_json("/api/sends", json!({"schedule": "daily"}))
            .await;
        t.wait_send(v["id"].as_i64().unwrap()).await;
        let m = t.wait_for_mail_to("reader0@example.net", 1).await;
        let msg = parse(&m);
        assert_eq!(msg.subject().unwrap(), "عدد خاص: قانون الانتخابات");
        let html = msg.body_html(0).unwrap().to_string();
        let body = &html[html.find("<table").unwrap()..];
        let pos: Vec<usize> = [TITLES[0], TITLES[2], TITLES[3], TITLES[1]]
            .iter()
            .map(|x| body.find(x).unwrap())
            .collect();
        assert!(
            pos.windows(2).all(|w| w[0] < w[1]),
            "lead, then the editor's order"
        );
        assert!(body.find("كلمة التحرير").unwrap() < pos[0]);
        let after: Value = t.admin_get("/api/schedules/daily/next").await;
        assert_eq!(after["subject"], Value::Null);

        // A subject test over 60 readers: samples of 10 each; subject B's readers click.
        t.add_article("https://example.org/d/9", "خبر المساء", "ملخص")
            .await;
        let DigestOutcome::Created { id, .. } = t
            .app
            .start_send_tested(
                &Actor::cli(),
                Some("daily"),
                SubjectTestIn {
                    subjects: vec![
                        "أبرز أخبار المساء".into(),
                        "ما فاتك اليوم في دقيقتين".into(),
                    ],
                    sample_percent: Some(15),
                    min_sample: Some(5),
                    wait: Some("1m".into()),
                },
            )
            .await
            .unwrap()
        else {
            panic!("no send")
        };
        t.smtp.wait_for(60 + 18, Duration::from_secs(30)).await;
        t.dir
            .exec(&format!(
                "UPDATE deliveries SET sent_at = sent_at - 120000 WHERE digest_id = {id}"
            ))
            .await;
        let b_readers: Vec<_> = t
            .smtp
            .messages()
            .into_iter()
            .filter(|m| parse(m).subject() == Some("ما فاتك اليوم في دقيقتين"))
            .collect();
        assert_eq!(b_readers.len(), 9);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for m in &b_readers[..6] {
            let text = parse(m).body_text(0).unwrap().to_string();
            let link = text.lines().find(|l| l.contains("/r/")).unwrap().trim();
            let r = http.get(t.local(link)).send().await.unwrap();
            assert_eq!(r.status(), 302);
        }
        b.client
            .goto(&t.url(&format!("/admin/sends/{id}")))
            .await
            .unwrap();
        assert!(b.text("#subject-test").await.contains("لم يُختر الفائز بعد"));
        // The wait is a minute from the start; the scheduler then picks the winner.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while t.send(id).await.status != "done" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the test never ended"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(
            t.smtp.count(),
            120,
            "every reader twice: the digest, then the test's send"
        );
        b.client.refresh().await.unwrap();
        let test = b.text("#subject-test").await;
        assert!(
            test.contains("الفائز") && test.contains("ما فاتك اليوم في دقيقتين"),
            "{test}"
        );
        b.screenshot("subject-test").await;
        b.client.close().await.unwrap();
    }
);
