//! What a reader sees: the digest and the confirmation as they arrive, read as HTML and as
//! plain text in both kinds of plain-text viewer, and the public pages around them.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use unicode_bidi::{BidiInfo, Level};

use crate::helpers::*;

fn has_arabic(s: &str) -> bool {
    s.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c))
}

/// What a reader sees, left to right on the screen, for one line laid out by the Unicode
/// bidi algorithm in a paragraph of `direction` (`None`: the direction of the line's first
/// strong character, as per-line plain-text viewers choose). Invisible marks dropped.
fn visual(line: &str, direction: Option<Level>) -> String {
    let info = BidiInfo::new(line, direction);
    let para = &info.paragraphs[0];
    without_marks(&info.reorder_line(para, para.range.clone()))
}

fn without_marks(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .collect()
}

/// Every line of a plain-text part reads in order (as the bidi algorithm reads it in a
/// right-to-left paragraph) in a per-line-direction viewer and in a left-to-right one.
fn assert_plain_text_reads_in_order(text: &str) {
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if !has_arabic(line) {
            continue;
        }
        let expected = visual(&without_marks(line), Some(Level::rtl()));
        assert_eq!(visual(line, None), expected, "per-line viewer: {line}");
        assert_eq!(
            visual(line, Some(Level::ltr())),
            expected,
            "left-to-right viewer: {line}"
        );
    }
}

both_engines!(
    addresses_urls_and_names_read_as_one_run_everywhere,
    |engine| async move {
        // Issue 6, items 15 and 16.
        let t = spawn_app(engine).await;
        let r = t
            .post_json(
                "/subscribe",
                json!({"email": "john@example.com", "name": "John Smith, Jr."}),
            )
            .await;
        assert_eq!(r.status(), 200);
        t.confirm(&confirm_link(
            &t.wait_for_mail_to("john@example.com", 1).await,
        ))
        .await;
        t.add_article(
            "https://example.org/1/",
            "قال John Smith, Reuters إن شبكات 5G جاهزة.",
            "راسلونا على info@alhal.net أو زوروا https://alhal.net/ar والسعر $999 فقط.",
        )
        .await;
        let id = t.send_now().await;
        t.wait_send(id).await;
        let m = t.wait_for_mail_to("john@example.com", 2).await;
        let msg = parse(&m);
        let html = msg.body_html(0).unwrap();
        for run in [
            "<span dir=\"ltr\">info@alhal.net</span>",
            "<span dir=\"ltr\">https://alhal.net/ar</span>",
            "<span dir=\"ltr\">John Smith, Reuters</span>",
            "<span dir=\"ltr\">5G</span>",
            // A name with no Arabic in it is one left-to-right run, its full stop included
            // (issue 15, item 11).
            "مرحباً <span dir=\"ltr\">John Smith, Jr.</span>،",
        ] {
            assert!(html.contains(run), "{run} missing in:\n{html}");
        }
        assert!(html.contains("$999") && !html.contains("<span dir=\"ltr\">$999"));
        let text = msg.body_text(0).unwrap();
        assert!(text.contains("info@alhal.net") && text.contains("John Smith, Jr."));
        assert_plain_text_reads_in_order(&text);
        // The confirmation's text part too.
        assert_plain_text_reads_in_order(
            &parse(&t.smtp.messages_to("john@example.com")[0])
                .body_text(0)
                .unwrap(),
        );
    }
);

both_engines!(content_cannot_reach_a_personal_slot, |engine| async move {
    // Issue 6, item 12: an article image whose URL carries what was the fixed unsubscribe
    // marker must not become each reader's unsubscribe URL inside the attacker's URL.
    let t = spawn_app(engine).await;
    t.subscribe_and_confirm("victim@example.com").await;
    let r = t
        .admin_post(
            "/api/articles",
            json!({
                "url": "https://example.org/1/",
                "title": "خبر NASHRAxSLOTxNAME",
                "summary": "نص NASHRAxSLOTxUNSUBSCRIBExURL",
                "image": "https://evil.test/p.gif?t=NASHRAxSLOTxUNSUBSCRIBExURL",
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = t.send_now().await;
    t.wait_send(id).await;
    let m = t.wait_for_mail_to("victim@example.com", 2).await;
    let unsub = unsubscribe_link(&m);
    let token = unsub.rsplit('/').next().unwrap();
    let msg = parse(&m);
    let html = msg.body_html(0).unwrap();
    assert!(
        html.contains("https://evil.test/p.gif?t=NASHRAxSLOTxUNSUBSCRIBExURL"),
        "the URL arrives as it was written"
    );
    assert_eq!(
        html.matches(token).count(),
        1,
        "the token is in the footer only"
    );
    assert_eq!(msg.body_text(0).unwrap().matches(token).count(), 1);
});

both_engines!(
    the_web_copy_is_a_public_page_and_a_test_sends_link_opens,
    |engine| async move {
        // Issue 6, item 18.
        let t = spawn_app(engine).await;
        t.subscribe_and_confirm("reader@example.com").await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        t.wait_send(id).await;
        let page = t.get_text(&format!("/archive/{id}")).await;
        assert!(page.contains("خبر"));
        for email_only in [
            "تصلك هذه الرسالة",
            "إلغاء الاشتراك",
            "عرض النشرة في المتصفح",
            "مرحباً",
        ] {
            assert!(!page.contains(email_only), "{email_only} on the web copy");
        }
        assert!(
            page.contains("https://news.example.org/subscribe\"")
                && page.contains("اشترك في النشرة")
        );
        // A test send: not in the archive, but its own "view in browser" link opens.
        t.add_article("https://example.org/2/", "خبر تجريبي", "نص")
            .await;
        let r = t
            .admin_post("/api/sends", json!({"test_to": "desk@example.com"}))
            .await;
        let test_id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let m = t.wait_for_mail_to("desk@example.com", 1).await;
        let html = parse(&m).body_html(0).unwrap().to_string();
        let view = html
            .split("href=\"")
            .map(|s| s.split('"').next().unwrap())
            .find(|h| h.contains("/archive/"))
            .unwrap()
            .replace("&amp;", "&");
        let r = t.http.get(t.local(&view)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{view}");
        assert!(r.text().await.unwrap().contains("خبر تجريبي"));
        let r = t
            .http
            .get(t.url(&format!("/archive/{test_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "not public without its key");
        assert!(
            !t.get_text("/archive")
                .await
                .contains(&format!("/archive/{test_id}\""))
        );
    }
);

both_engines!(the_messages_layout_details, |engine| async move {
    // Issue 6, items 17, 20 and 22 (image alt, hashtags).
    let feed = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title><link>https://example.org/</link><description>d</description>
<item><title>خبر بصورة</title><link>https://example.org/p/</link><guid>p</guid>
<description>نص الخبر. #العراق</description>
<media:content url="https://example.org/img/p.jpg" medium="image"><media:description>جسر في بغداد عند الغروب</media:description></media:content>
</item></channel></rss>"#;
    let addr = serve_feed(Arc::new(Mutex::new(feed.to_owned()))).await;
    let t = spawn_app(engine).await;
    t.app
        .ingest_feed(&format!("http://{addr}/feed.xml"))
        .await
        .unwrap();
    let html = t
        .app
        .preview(t.app.settings.schedule(None).unwrap())
        .await
        .unwrap()
        .unwrap()
        .html;
    assert!(
        html.contains("alt=\"جسر في بغداد عند الغروب\""),
        "the feed's alt text"
    );
    // Hashtags are not links unless the site says where tag pages are; then they are.
    assert!(
        html.contains("#العراق")
            && !html.contains("href=\"#")
            && !html.contains("#0b5394;white-space:nowrap;\">#")
    );
    let preheader = html.split("<div").nth(1).unwrap();
    let style = preheader
        .split("style=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        !style.contains("color"),
        "no colour equal to the background: {style}"
    );
    let t2 = spawn_app_with(
        engine,
        "[newsletter]\ntag_url = \"https://example.org/tag/{tag}\"\n",
    )
    .await;
    t2.app
        .ingest_feed(&format!("http://{addr}/feed.xml"))
        .await
        .unwrap();
    let html = t2
        .app
        .preview(t2.app.settings.schedule(None).unwrap())
        .await
        .unwrap()
        .unwrap()
        .html;
    assert!(
        html.contains("href=\"https://example.org/tag/%D8%A7%D9%84%D8%B9%D8%B1%D8%A7%D9%82\""),
        "{html}"
    );
    // The confirmation is fluid, like the digest.
    t.post_json("/subscribe", json!({"email": "c@example.com"}))
        .await;
    let c = parse(&t.wait_for_mail_to("c@example.com", 1).await)
        .body_html(0)
        .unwrap()
        .to_string();
    assert!(
        !c.contains(";width:600px") && !c.contains("\"width:600px"),
        "no fixed width"
    );
    assert!(c.contains("width:100%;max-width:600px"));
});

both_engines!(pages_speak_plainly, |engine| async move {
    // Issue 6, item 22.
    let t = spawn_app_with(engine, "[server]\nsignups_per_hour = 1\n").await;
    let page = t.get_text("/subscribe").await;
    assert!(page.contains(">العودة إلى موقع الحل\u{a0}نت</a>"), "{page}");
    t.post_json("/subscribe", json!({"email": "a@example.com"}))
        .await;
    let r = t
        .post_json("/subscribe", json!({"email": "b@example.com"}))
        .await;
    assert_eq!(r.status(), 429);
    let msg = r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("من شبكتك") && !msg.contains("من هذا العنوان"),
        "{msg}"
    );
    // After the form under an article, the way back is to the article.
    let t = spawn_app(engine).await;
    let r = t
        .http
        .post(t.url("/subscribe"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Referer", "https://example.org/2026/11/30/article/")
        .body("email=r%40example.com&source=embed")
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(
        page.contains("href=\"https://example.org/2026/11/30/article/\">العودة إلى المقال</a>"),
        "{page}"
    );
    // Two issues of one day are told apart in the archive.
    t.add_article("https://example.org/1/", "خبر", "نص").await;
    t.send_now().await;
    t.add_article("https://example.org/2/", "خبر آخر", "نص")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    t.send_now().await;
    let archive = t.get_text("/archive").await;
    let dates: Vec<&str> = archive
        .split("<small>")
        .skip(1)
        .map(|s| s.split("</small>").next().unwrap())
        .collect();
    assert_eq!(dates.len(), 2, "{archive}");
    assert!(dates[0].contains(':'), "with the time: {dates:?}");
    // The subject carries the date: the list does not repeat it (issue 15, item 20).
    assert!(
        dates.iter().all(|d| d.len() == 5),
        "only the time beside a subject with the date: {dates:?}"
    );
});

both_engines!(a_subject_can_carry_a_short_date, |engine| async move {
    // Issue 15, item 20: with both calendars, `{{ date }}` made ~75-character subjects.
    let t = spawn_app_with(
        engine,
        "[newsletter]\ncalendar = \"both\"\n\
         [[schedules]]\nname = \"daily\"\ncron = \"0 7 * * *\"\ntimezone = \"Asia/Baghdad\"\n\
         subject = \"نشرة الحل نت — {{ date_short }}\"\n",
    )
    .await;
    let (_, msgs) = t.send_digest_to(&["short@example.com"]).await;
    let subject = parse(&msgs[0]).subject().unwrap().to_owned();
    assert_eq!(subject.matches('—').count(), 1, "{subject}");
    assert!(subject.chars().count() <= 30, "{subject}");
    let month = subject.rsplit(' ').next().unwrap();
    assert!(
        [
            "يناير",
            "فبراير",
            "مارس",
            "أبريل",
            "مايو",
            "يونيو",
            "يوليو",
            "أغسطس",
            "سبتمبر",
            "أكتوبر",
            "نوفمبر",
            "ديسمبر"
        ]
        .contains(&month),
        "{subject}"
    );
    // The archive list gives the full date beside a subject without it.
    let archive = t.get_text("/archive").await;
    assert!(archive.contains("\u{a0}هـ، "), "{archive}");
});

/// The relative luminance of `#rrggbb` (WCAG 2).
fn luminance(hex: &str) -> f64 {
    let c = |i: usize| {
        let v = u8::from_str_radix(&hex[i..i + 2], 16).unwrap() as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * c(0) + 0.7152 * c(2) + 0.0722 * c(4)
}

both_engines!(
    leaving_offers_fewer_mails_and_a_way_back,
    |engine| async move {
        // Issue 15, item 14.
        let t = spawn_app(engine).await;
        let (_, msgs) = t.send_digest_to(&["back@example.com"]).await;
        let link = t.local(&unsubscribe_link(&msgs[0]));
        // The confirm page offers the preferences instead.
        let page = t
            .http
            .get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("/preferences/") && page.contains("أو اختر ما يصلك"),
            "{page}"
        );
        // Leaving: the done page offers a way back, through a fresh confirmation.
        let done = t
            .http
            .post(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(done.contains("أعد اشتراكي"), "{done}");
        let back = done
            .split("action=\"")
            .map(|s| s.split('"').next().unwrap())
            .find(|a| a.starts_with("/resubscribe/"))
            .expect("a resubscribe form")
            .to_owned();
        assert_eq!(
            t.status_of("back@example.com").await,
            nashra::store::SubscriberStatus::Unsubscribed
        );
        let r = t.post_form(&back, "").await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("رسالة تأكيد جديدة"));
        let confirmation = t.wait_for_mail_to("back@example.com", 3).await;
        assert_eq!(
            t.status_of("back@example.com").await,
            nashra::store::SubscriberStatus::Pending,
            "nothing is back until the link is followed"
        );
        t.confirm(&confirm_link(&confirmation)).await;
        assert_eq!(
            t.status_of("back@example.com").await,
            nashra::store::SubscriberStatus::Confirmed
        );
        // A forged way back does nothing.
        assert_eq!(t.post_form("/resubscribe/x.y", "").await.status(), 400);
    }
);

both_engines!(
    the_confirmation_reads_without_its_button,
    |engine| async move {
        // Issue 15, item 14: a plain link under the button, a legible postal line, the site's
        // name and the Hijri year kept whole.
        let t = spawn_app(engine).await;
        let r = t
            .post_json("/subscribe", json!({"email": "plain@example.com"}))
            .await;
        assert_eq!(r.status(), 200);
        let m = t.wait_for_mail_to("plain@example.com", 1).await;
        let html = parse(&m).body_html(0).unwrap().into_owned();
        let link = confirm_link(&m);
        assert_eq!(
            html.matches(&link).count(),
            3,
            "the button's link, and the same link under it as a link and as text"
        );
        assert!(html.contains(&format!("<span dir=\"ltr\">{link}</span>")));
        let postal = html
            .split("<p ")
            .find(|p| p.contains("صندوق بريد"))
            .expect("the postal line");
        let colour = postal
            .split("color:#")
            .nth(1)
            .map(|c| &c[..6])
            .expect("a colour");
        let contrast = (1.0 + 0.05) / (luminance(colour) + 0.05);
        assert!(contrast >= 4.5, "postal line #{colour}: {contrast:.2}:1");
        assert!(
            html.contains("الحل\u{a0}نت"),
            "the site's name is kept on one line"
        );
    }
);

both_engines!(unknown_paths_get_arabic_404_pages, |engine| async move {
    let t = spawn_app(engine).await;
    for path in ["/no-such-page", "/archive/x/y", "/admin/no-such-page"] {
        let r = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("dir=\"rtl\"") && page.contains("الصفحة غير موجودة"),
            "{path}: {page}"
        );
    }
    assert_eq!(
        t.admin_status(reqwest::Method::GET, "/api/no-such-thing")
            .await,
        404
    );
});
