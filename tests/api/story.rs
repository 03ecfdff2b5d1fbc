//! The whole story: subscribe → confirm → ingest a feed → send → the digest arrives → one-click
//! unsubscribe → the next send skips them.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::helpers::*;

both_engines!(
    reader_subscribes_receives_digest_and_leaves_with_one_click,
    |engine| async move {
        let feed = Arc::new(Mutex::new(rss(&[
            (
                "a1",
                "نيوزويك: إيران تدفع بغداد نحو موسكو",
                "<p>تقول مجلة نيوزويك إن العراق يدرس شراء منظومة “S-400” الروسية. #بغداد #روسيا</p><script>alert(1)</script>",
            ),
            (
                "a2",
                "شركة Huawei توسّع شبكات 5G في الخليج",
                "<p>عقود جديدة بقيمة 700 مليون دولار <a href=\"javascript:alert(1)\">هنا</a>.</p>",
            ),
        ])));
        let feed_addr = serve_feed(feed.clone()).await;
        let t = spawn_app_with(
            engine,
            &format!("[[feeds]]\nurl = \"http://{feed_addr}/feed.xml\"\npoll_every = \"1h\"\n"),
        )
        .await;

        // Subscribe from the page's form; a confirmation email arrives, in Arabic, RTL.
        let r = t
            .post_form(
                "/subscribe",
                "email=Reader%40Example.com&name=%D9%82%D8%A7%D8%B1%D8%A6",
            )
            .await;
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("dir=\"rtl\"") && body.contains("تحقّق من بريدك"),
            "{body}"
        );
        let confirm = t.wait_for_mail_to("reader@example.com", 1).await;
        let cm = parse(&confirm);
        assert_eq!(cm.subject(), Some("أكّد اشتراكك في نشرة الحل نت"));
        assert!(cm.body_html(0).unwrap().contains("dir=\"rtl\""));
        assert!(
            header(&confirm, "List-Unsubscribe").is_empty(),
            "a confirmation is not list mail"
        );

        // Before confirming, a send reaches nobody.
        let r = t.admin_post("/api/ingest", json!({})).await;
        assert_eq!(r.status(), 200);
        let r = t.admin_post("/api/sends", json!({})).await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["recipients"], 0, "{v}");

        // The link opens a page whose button confirms (a link scanner's GET confirms nothing);
        // the page then says so.
        let link = t.local(&confirm_link(&confirm));
        let r = t.http.get(&link).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("تأكيد الاشتراك</button>"));
        let r = t.http.post(&link).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("تم تأكيد اشتراكك"));

        // New articles arrive from the feed served by this test.
        feed.lock().unwrap().clone_from(&rss(&[
            (
                "a3",
                "صيف العراق الحار يعيد أزمة الكهرباء",
                "<p>تجاوزت الحرارة 50 درجة في #البصرة.</p>",
            ),
            (
                "a1",
                "نيوزويك: إيران تدفع بغداد نحو موسكو (محدّث)",
                "<p>نص محدّث</p>",
            ),
        ]));
        let v: Value = t.admin_json("/api/ingest", json!({})).await;
        assert_eq!(
            (v["new"].as_u64(), v["updated"].as_u64()),
            (Some(1), Some(1)),
            "{v}"
        );

        let id = t.send_now().await;
        let done = t.wait_send(id).await;
        assert_eq!((done.status.as_str(), done.sent), ("done", 1), "{done:?}");
        let digest = t.wait_for_mail_to("reader@example.com", 2).await;
        assert_eq!(digest.to, vec!["reader@example.com"]);

        // Headers a mail provider checks.
        let m = parse(&digest);
        assert!(m.subject().unwrap().starts_with("نشرة الحل نت — "));
        assert!(header(&digest, "Subject").starts_with("=?UTF-8?B?"));
        assert_eq!(
            header(&digest, "List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click"
        );
        assert!(header(&digest, "List-Id").ends_with("<digest.example.org>"));
        assert!(header(&digest, "Message-ID").ends_with("@example.org>"));
        let unsub = unsubscribe_link(&digest);
        assert!(
            unsub.starts_with("https://news.example.org/unsubscribe/"),
            "{unsub}"
        );

        // The digest is the new article only, RTL, sanitized.
        let html = m.body_html(0).unwrap();
        assert!(html.contains("<html lang=\"ar\" dir=\"rtl\""));
        assert!(html.contains("صيف العراق الحار"));
        assert!(
            !html.contains("Huawei"),
            "already-sent articles are not sent again"
        );
        assert!(html.contains("#البصرة"));
        assert!(
            html.contains("مرحباً قارئ،"),
            "greeted by the name given at sign-up"
        );
        assert!(!html.contains("NASHRAxSLOT"));
        assert!(html.contains(&unsub.replace('&', "&amp;")));
        assert!(!html.contains("<script") && !html.contains("javascript:"));
        let text = m.body_text(0).unwrap();
        let plain: String = text
            .chars()
            .filter(|c| !matches!(c, '\u{200F}' | '\u{202B}' | '\u{202C}' | '\r'))
            .collect();
        assert!(
            plain.contains("اقرأ المزيد:\nhttps://example.org/a3/"),
            "the link on a line of its own: {text}"
        );
        check_eml(&digest);

        // The first digest (with the older articles) went to nobody, but is on the archive.
        let archive = t
            .http
            .get(t.url(&format!("/archive/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(archive.status(), 200);
        let page = archive.text().await.unwrap();
        assert!(page.contains("صيف العراق الحار") && !page.contains("NASHRAxSLOT"));

        // A link scanner's GET changes nothing; the mail client's one-click POST unsubscribes.
        let r = t.http.get(t.local(&unsub)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("<form method=\"post\""));
        let r = t
            .http
            .post(t.local(&unsub))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "one-click answers 200, never a redirect");
        let subs = t.readers("status=unsubscribed").await;
        assert_eq!(subs.total, 1);

        // The next digest skips them.
        t.add_article(
            "https://example.org/a4/",
            "خبر جديد بعد إلغاء الاشتراك",
            "نص",
        )
        .await;
        let r: Value = t.admin_json("/api/sends", json!({})).await;
        assert_eq!(r["recipients"], 0, "{r}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(t.smtp.messages_to("reader@example.com").len(), 2);

        // They can come back, through a fresh double opt-in.
        t.subscribe_and_confirm("reader@example.com").await;
        let subs = t.readers("status=confirmed").await;
        assert_eq!(subs.total, 1);
    }
);
