//! The editor's desk through the API (`GET/PUT /api/schedules/{name}/next`): the next
//! digest's subject, «كلمة التحرير», lead story and order reach the readers' messages — in
//! each edition, in the editor's order — and the digest after it is back to the defaults.

use serde_json::{Value, json};

use crate::helpers::*;

const DESK: &str = r#"
[[schedules]]
name = "daily"
label = "يومية"
cron = "0 7 * * *"
timezone = "Asia/Baghdad"
subject = "نشرة يومية"
[[sections]]
slug = "politics"
name = "سياسة"
categories = ["سياسة"]
[[sections]]
slug = "culture"
name = "ثقافة"
categories = ["ثقافة"]
[[sections]]
slug = "sport"
name = "رياضة"
categories = ["رياضة"]
"#;

/// Where each title first appears in `html` (panics on a missing one), in the given order.
fn positions(html: &str, titles: &[&str]) -> Vec<usize> {
    titles
        .iter()
        .map(|t| {
            html.find(t)
                .unwrap_or_else(|| panic!("no «{t}» in the message"))
        })
        .collect()
}

/// Whether `titles` come in this order in the message's body (after the preheader, which
/// quotes the first article).
fn in_order(html: &str, titles: &[&str]) -> bool {
    let body = &html[html.find("<table").unwrap_or(0)..];
    positions(body, titles).windows(2).all(|w| w[0] < w[1])
}

impl TestApp {
    async fn put_next(&self, body: Value) -> reqwest::Response {
        self.http
            .put(self.url("/api/schedules/daily/next"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

both_engines!(
    an_editor_shapes_the_next_digest_and_the_one_after_is_back_to_the_defaults,
    |engine| async move {
        let t = spawn_app_with(engine, DESK).await;
        t.subscribe_and_confirm("all@example.com").await;
        t.subscribe_and_confirm("pc@example.com").await;
        t.dir
            .exec("UPDATE subscribers SET sections = 'politics,culture' WHERE email = 'pc@example.com'")
            .await;
        for (n, title, section) in [
            (1, "خبر سياسي أول", "politics"),
            (2, "مباراة الأمس", "sport"),
            (3, "معرض الكتاب", "culture"),
            (4, "قرار البرلمان", "politics"),
        ] {
            let r = t
                .admin_post(
                    "/api/articles",
                    json!({"url": format!("https://example.org/{n}/"), "title": title,
                           "summary": "نص الخبر", "section": section}),
                )
                .await;
            assert!(r.status().is_success());
        }
        let ids: Value = t.admin_get("/api/schedules/daily/next").await;
        assert_eq!(ids["default_subject"], "نشرة يومية");
        assert_eq!(ids["subject"], Value::Null);
        let order: Vec<i64> = serde_json::from_value(ids["order"].clone()).unwrap();
        assert_eq!(order.len(), 4, "{ids}");
        let id_of = |title: &str| {
            ids["articles"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["title"] == title)
                .unwrap()["id"]
                .as_i64()
                .unwrap()
        };
        let (first, match_, fair, vote) = (
            id_of("خبر سياسي أول"),
            id_of("مباراة الأمس"),
            id_of("معرض الكتاب"),
            id_of("قرار البرلمان"),
        );
        assert_eq!(
            order,
            [vote, fair, match_, first],
            "newest first by default"
        );

        // Refused, and nothing changes: a lead or an order outside the digest, a repeat, a
        // subject that does not render, an unknown field.
        for bad in [
            json!({"lead": 999_999}),
            json!({"order": [match_, match_]}),
            json!({"subject": "{{ nope("}),
            json!({"subjekt": "x"}),
        ] {
            let r = t.put_next(bad.clone()).await;
            assert!(r.status().is_client_error(), "{bad}: {}", r.status());
        }
        let still: Value = t.admin_get("/api/schedules/daily/next").await;
        assert_eq!(still["order"], ids["order"]);

        let r = t
            .put_next(json!({
                "subject": "عدد خاص — {{ date_short }}",
                "note_html": "<p>صباح الخير. <b>عدد خاص</b> عن الانتخابات<script>alert(1)</script></p>\
                              <p>تابعوا <a href=\"https://example.org/live\">البث المباشر مع Reuters</a></p>",
                "lead": first,
                "order": [match_, fair],
            }))
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["order"], json!([first, match_, fair, vote]), "{v}");
        assert_eq!(v["lead"], first);
        let note = v["note_html"].as_str().unwrap();
        assert!(
            !note.contains("script") && note.contains("<b>عدد خاص</b>"),
            "{note}"
        );
        let log = audit_actions(&t).await;
        assert!(log.iter().any(|e| e.1 == "next_digest"), "{log:?}");

        // The preview shows it at once.
        let schedule = t.app.settings.schedule(Some("daily")).unwrap();
        let preview = t.app.preview(schedule).await.unwrap().unwrap();
        assert!(
            preview.subject.starts_with("عدد خاص — "),
            "{}",
            preview.subject
        );
        assert!(preview.html.contains("كلمة التحرير"));
        assert!(in_order(
            &preview.html,
            &[
                "خبر سياسي أول",
                "مباراة الأمس",
                "معرض الكتاب",
                "قرار البرلمان"
            ]
        ));

        // The digest carries it: the subject, the note (HTML and plain part), the lead first
        // and larger, the editor's order — and in the politics-and-culture edition too.
        let v: Value = t
            .admin_json("/api/sends", json!({"schedule": "daily"}))
            .await;
        let id = v["id"].as_i64().unwrap();
        t.wait_send(id).await;
        let m = &t.wait_for_mail_to("all@example.com", 2).await;
        let msg = parse(m);
        assert!(
            msg.subject().unwrap().starts_with("عدد خاص — "),
            "{:?}",
            msg.subject()
        );
        let html = msg.body_html(0).unwrap().to_string();
        assert!(html.contains("كلمة التحرير") && html.contains("<b>عدد خاص</b>"));
        assert!(!html.contains("alert(1)"));
        assert!(
            html.contains("<span dir=\"ltr\">Reuters</span>"),
            "Latin runs isolated"
        );
        assert!(html.contains("الخبر الرئيسي") && html.contains("font-size:26px"));
        assert!(in_order(
            &html,
            &[
                "كلمة التحرير",
                "خبر سياسي أول",
                "مباراة الأمس",
                "معرض الكتاب",
                "قرار البرلمان"
            ]
        ));
        let text = msg.body_text(0).unwrap().to_string();
        assert!(text.contains("كلمة التحرير"), "{text}");
        assert!(
            text.contains("البث المباشر مع Reuters (https://example.org/live)"),
            "{text}"
        );
        check_eml(m);
        let pc = t.wait_for_mail_to("pc@example.com", 2).await;
        let edition = parse(&pc).body_html(0).unwrap().to_string();
        assert!(!edition.contains("مباراة الأمس"), "not their section");
        assert!(in_order(
            &edition,
            &["خبر سياسي أول", "معرض الكتاب", "قرار البرلمان"]
        ));
        assert!(edition.contains("كلمة التحرير"));
        assert!(parse(&pc).subject().unwrap().starts_with("عدد خاص — "));

        // It was for that digest only.
        let after: Value = t.admin_get("/api/schedules/daily/next").await;
        assert_eq!(after["subject"], Value::Null, "{after}");
        assert_eq!(after["note_html"], Value::Null);
        assert_eq!(after["lead"], Value::Null);
        t.admin_post(
            "/api/articles",
            json!({"url": "https://example.org/5/", "title": "خبر جديد", "summary": "نص", "section": "politics"}),
        )
        .await;
        let v: Value = t
            .admin_json("/api/sends", json!({"schedule": "daily"}))
            .await;
        t.wait_send(v["id"].as_i64().unwrap()).await;
        let all = t.wait_for_mail_to("all@example.com", 3).await;
        let next = parse(&all);
        assert_eq!(next.subject().unwrap(), "نشرة يومية");
        let html = next.body_html(0).unwrap();
        assert!(!html.contains("كلمة التحرير") && !html.contains("الخبر الرئيسي"));
    }
);

both_engines!(
    a_test_send_tries_the_desk_and_leaves_it_for_the_real_digest,
    |engine| async move {
        let t = spawn_app_with(engine, DESK).await;
        t.subscribe_and_confirm("all@example.com").await;
        t.admin_post(
            "/api/articles",
            json!({"url": "https://example.org/1/", "title": "خبر", "summary": "نص", "section": "politics"}),
        )
        .await;
        let r = t.put_next(json!({"note_html": "سطر من المحرر"})).await;
        assert_eq!(r.status(), 200);
        let v: Value = t
            .admin_json(
                "/api/sends",
                json!({"schedule": "daily", "test_to": "editor@example.com"}),
            )
            .await;
        t.wait_send(v["id"].as_i64().unwrap()).await;
        let test = t.wait_for_mail_to("editor@example.com", 1).await;
        assert!(parse(&test).body_text(0).unwrap().contains("سطر من المحرر"));
        let still: Value = t.admin_get("/api/schedules/daily/next").await;
        assert_eq!(still["note_html"], "<p>سطر من المحرر</p>", "{still}");
        // Cleared by hand: `null`.
        let r = t.put_next(json!({"note_html": null})).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["note_html"], Value::Null);
        // A subject test needs click counts.
        let r = t
            .put_next(json!({"subject_test": {"subjects": ["أ", "ب"]}}))
            .await;
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("click_counts"));
    }
);

both_engines!(
    a_local_hour_schedule_takes_no_subject_test,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[newsletter]\nclick_counts = true\n[[schedules]]\nname = \"daily\"\ncron = \"0 7 * * *\"\n\
             timezone = \"Asia/Baghdad\"\nsubject = \"نشرة\"\ndeliver = \"local\"\n",
        )
        .await;
        let r = t
            .put_next(json!({"subject_test": {"subjects": ["أ", "ب"]}}))
            .await;
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("local"));
        let v: Value = t.admin_get("/api/schedules/daily/next").await;
        assert_eq!(v["subject_test"], Value::Null, "nothing changed");
    }
);
