//! The newsroom's sends in the console: excluding an article and pausing a schedule, a send's
//! page (progress, failures, retries), schedules read as readers see them, a test send to
//! several addresses, and a console that speaks to the editor in Arabic.

use nashra::store::{DigestOutcome, Role};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{smtp::Fault, *};

both_engines!(
    an_excluded_article_stays_out_and_a_paused_schedule_lets_its_slot_pass,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.subscribe_and_confirm("reader@example.net").await;
        t.add_article("https://example.org/a/keep", "خبر يبقى", "ملخص")
            .await;
        t.add_article("https://example.org/a/drop", "خبر يُستبعد", "ملخص")
            .await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let drop = t
            .dir
            .scalar("SELECT id FROM articles WHERE url LIKE '%drop'")
            .await;
        s.post_to(
            &format!("/admin/articles/{drop}/exclude"),
            &[("schedule", "daily")],
        )
        .await;
        let (_, articles) = s.get("/admin/articles").await;
        let excluded_at = articles.find("مستبعدة").expect("an excluded list");
        assert!(articles[excluded_at..].contains("خبر يُستبعد"));
        assert!(!articles[..excluded_at].contains("خبر يُستبعد"));
        let (_, preview) = s.get("/admin/preview").await;
        assert!(preview.contains("خبر يبقى") && !preview.contains("خبر يُستبعد"));

        // Paused: the slot passes, nothing is sent, the articles wait.
        s.post_to("/admin/schedules/daily/pause", &[]).await;
        let (_, schedules) = s.get("/admin/schedules").await;
        assert!(schedules.contains("استأنف الجدول"));
        let slot = chrono::Utc::now().timestamp_millis();
        assert_eq!(
            t.app.fire_schedule("daily", slot).await.unwrap(),
            DigestOutcome::Paused
        );
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM digests").await, 0);
        s.post_to("/admin/schedules/daily/resume", &[]).await;
        let out = t.app.fire_schedule("daily", slot + 60_000).await.unwrap();
        let DigestOutcome::Created { id, .. } = out else {
            panic!("{out:?}")
        };
        t.wait_send(id).await;
        let msg = t.wait_for_mail_to("reader@example.net", 2).await;
        let text = String::from_utf8_lossy(&msg.data).to_string();
        let parsed = parse(&msg);
        let html = parsed.body_html(0).unwrap();
        assert!(html.contains("خبر يبقى"), "{text}");
        assert!(!html.contains("خبر يُستبعد"));
    }
);

both_engines!(
    a_send_page_shows_progress_failures_and_retries_them,
    |engine| async move {
        let t = spawn_app_with(engine, "[delivery]\nmax_attempts = 1").await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        for r in ["a@example.net", "b@example.net", "refused@example.net"] {
            t.subscribe_and_confirm(r).await;
        }
        t.smtp
            .fault("refused@example.net", Fault::Code(550), usize::MAX);
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let to = s
            .post_to("/admin/sends", &[("schedule", "daily"), ("confirm", "yes")])
            .await;
        let id: i64 = to.trim_start_matches("/admin/sends/").parse().unwrap();
        t.wait_send(id).await;
        let (status, json) = s.get(&format!("/admin/sends/{id}/progress")).await;
        assert_eq!(status, StatusCode::OK);
        let p: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(p["status"], "done");
        assert_eq!(p["status_label"], "اكتمل");
        assert_eq!(p["sent_text"], "2");
        assert_eq!(p["failed_text"], "1");
        let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert!(
            page.contains("refused@example.net") && page.contains("550"),
            "{page}"
        );
        let (_, dashboard) = s.get("/admin").await;
        assert!(dashboard.contains(&format!("/admin/sends/{id}")));
        t.smtp.fault("refused@example.net", Fault::Code(550), 0);
        let back = s.post_to(&format!("/admin/sends/{id}/retry"), &[]).await;
        assert_eq!(back, format!("/admin/sends/{id}?done=retried"));
        t.wait_for_mail_to("refused@example.net", 2).await;
        let v = t.wait_send(id).await;
        assert_eq!(v.failed, 0);
        // Nothing left to retry: said so, nothing changes.
        let back = s.post_to(&format!("/admin/sends/{id}/retry"), &[]).await;
        assert!(back.ends_with("done=nothing_to_retry"), "{back}");
    }
);

both_engines!(
    schedules_read_as_readers_see_them_in_the_console,
    |engine| async move {
        // Issue 15, item 15: «يومية», not `daily`; crontab in words.
        let t = spawn_app_with(
            engine,
            "[newsletter]\ndigits = \"arabic\"\n\
         [[schedules]]\nname = \"daily\"\nlabel = \"يومية\"\ncron = \"0 7 * * *\"\n\
         timezone = \"Asia/Baghdad\"\nsubject = \"نشرة اليوم\"\n\
         [[schedules]]\nname = \"weekly\"\nlabel = \"أسبوعية\"\ncron = \"30 18 * * 5\"\n\
         timezone = \"Asia/Baghdad\"\nsubject = \"نشرة الأسبوع\"\n",
        )
        .await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        t.subscribe_and_confirm("reader@example.net").await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let (_, page) = s.get("/admin/schedules").await;
        assert!(page.contains("<h2>يومية "), "{page}");
        assert!(page.contains("كل يوم ٧:٠٠ صباحاً بتوقيت بغداد"), "{page}");
        assert!(page.contains("كل جمعة ٦:٣٠ مساءً بتوقيت بغداد"), "{page}");
        let to = s
            .post_to(
                "/admin/sends",
                &[("schedule", "weekly"), ("confirm", "yes")],
            )
            .await;
        t.wait_send(to.trim_start_matches("/admin/sends/").parse().unwrap())
            .await;
        for (path, both) in [
            ("/admin/sends", false),
            (to.as_str(), false),
            ("/admin", true),
            ("/admin/articles", true),
        ] {
            let (status, page) = s.get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                page.contains("أسبوعية") && (!both || page.contains("يومية")),
                "{path} names the schedules as readers see them:\n{page}"
            );
            assert!(!page.contains(">weekly<"), "{path}: {page}");
        }
    }
);

both_engines!(
    a_test_send_to_several_addresses_is_one_marked_send,
    |engine| async move {
        // Issue 15, item 17.
        let t = spawn_app(engine).await;
        t.add_article("https://example.org/a/1", "خبر", "ملخص")
            .await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let r = s
            .post(
                "/admin/preview/test",
                &[
                    ("schedule", "daily"),
                    ("to", "desk@example.org\nchief@example.org"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let desk = t.wait_for_mail_to("desk@example.org", 1).await;
        let chief = t.wait_for_mail_to("chief@example.org", 1).await;
        for m in [&desk, &chief] {
            let subject = parse(m).subject().unwrap().to_owned();
            assert!(subject.starts_with("[تجريبي] "), "{subject}");
        }
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM digests").await, 1);
        let (_, sends) = s.get("/admin/sends").await;
        assert_eq!(
            sends.matches("<a href=\"/admin/sends/").count(),
            1,
            "one row: {sends}"
        );
        let id = t.dir.scalar("SELECT id FROM digests").await;
        let v = t.wait_send(id).await;
        assert_eq!((v.total, v.sent), (2, 2), "{v:?}");
        let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
        assert!(
        page.contains(
            "<span dir=\"ltr\">desk@example.org</span>، <span dir=\"ltr\">chief@example.org</span>"
        ),
        "{page}"
    );
        // The test's preferences link opens a page of its own, not the unsubscribe one.
        let text = parse(&desk).body_text(0).unwrap().to_string();
        let prefs = text
            .lines()
            .find(|l| l.contains("/preferences/"))
            .expect("a preferences link")
            .trim()
            .to_owned();
        let r = t.http.get(t.local(&prefs)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("رسالة تجريبية"), "{page}");
        assert!(!page.contains("/unsubscribe/"), "{page}");
    }
);

both_engines!(
    the_console_speaks_to_the_editor_in_arabic,
    |engine| async move {
        // Issue 15, item 19.
        let t = spawn_app_with(
            engine,
            "[newsletter]\ndigits = \"arabic\"\n\
         [[sections]]\nslug = \"politics\"\nname = \"سياسة\"\ncategories = [\"سياسة\"]\n\
         [[sections]]\nslug = \"sport\"\nname = \"رياضة\"\ncategories = [\"رياضة\"]\n",
        )
        .await;
        for (i, r) in [
            "all@example.net",
            "pol@example.net",
            "spo@example.net",
            "left@example.net",
        ]
        .iter()
        .enumerate()
        {
            let extra = match i {
                1 => "&section=politics",
                2 => "&section=sport",
                _ => "",
            };
            let body = format!("email={}{extra}", r.replace('@', "%40"));
            assert_eq!(t.post_form("/subscribe", &body).await.status(), 200);
            let m = t.wait_for_mail_to(r, 1).await;
            t.confirm(&confirm_link(&m)).await;
        }
        let r = t
        .admin_post(
            "/api/articles",
            serde_json::json!({"url": "https://example.org/p/1", "title": "خبر سياسي", "section": "politics"}),
        )
        .await;
        assert!(r.status().is_success());
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        // «أرسل الآن» says who the send will really reach: the sport reader has nothing new.
        let (_, preview) = s.get("/admin/preview").await;
        assert!(preview.contains("تصل إلى <strong>٣</strong>"), "{preview}");
        assert!(preview.contains("<li>النشرة كاملة: ٢</li>"), "{preview}");
        assert!(preview.contains("<li>سياسة: ١</li>"), "{preview}");
        assert!(
            preview.contains("لا جديد في أقسامهم، فلا تصلهم هذه المرة: ١"),
            "{preview}"
        );
        let to = s
            .post_to("/admin/sends", &[("schedule", "daily"), ("confirm", "yes")])
            .await;
        let id: i64 = to.trim_start_matches("/admin/sends/").parse().unwrap();
        let v = t.wait_send(id).await;
        assert_eq!(v.total, 3, "the count the page gave: {v:?}");
        // A reader leaves with the mail client's button.
        let m = t.wait_for_mail_to("left@example.net", 2).await;
        let r = t
            .http
            .post(t.local(&unsubscribe_link(&m)))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let reader = t.reader_id("left@example.net").await;
        let (_, page) = s.get(&format!("/admin/readers/{reader}")).await;
        assert!(
            page.contains("زر إلغاء الاشتراك في برنامج البريد") && !page.contains(">one-click<"),
            "{page}"
        );
        // The audit log names what it is about and what happened in Arabic.
        let (_, audit) = s.get("/admin/audit").await;
        assert!(audit.contains("الإرسال رقم ١"), "{audit}");
        assert!(audit.contains("يومية — عدد القرّاء: ٣"), "{audit}");
        assert!(
            !audit.contains(">send:") && !audit.contains("recipients"),
            "{audit}"
        );
    }
);
