//! What the reader chooses: schedules and sections (the sign-up form under an article, the
//! preferences page), per-reader digests, click counts and «الأكثر قراءة» from them, Hijri
//! dates and Arabic-Indic digits, and the archive feed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{smtp::Received, *};

const SECTIONS: &str = r#"
[[schedules]]
name = "daily"
label = "يومية"
cron = "0 7 * * *"
timezone = "Asia/Baghdad"
subject = "نشرة يومية"
[[schedules]]
name = "weekly"
label = "أسبوعية"
cron = "0 7 * * 5"
timezone = "Asia/Baghdad"
subject = "نشرة أسبوعية"
[[sections]]
slug = "politics"
name = "سياسة"
categories = ["سياسة"]
[[sections]]
slug = "culture"
name = "ثقافة"
categories = ["ثقافة", "Culture"]
[[sections]]
slug = "sport"
name = "رياضة"
categories = ["رياضة"]
"#;

impl TestApp {
    /// Adds an article through the API in `section` (a slug or one of its categories).
    async fn add_in(&self, n: u32, title: &str, section: &str) {
        let r = self
            .admin_post(
                "/api/articles",
                json!({"url": format!("https://example.org/2026/{n}/"), "title": title,
                       "summary": "نص الخبر", "section": section}),
            )
            .await;
        assert!(r.status().is_success(), "add article: {}", r.status());
    }

    /// Sends `schedule` now: the send's id, or `None` when nothing was new.
    async fn send_schedule(&self, schedule: &str) -> Option<i64> {
        let v: Value = self
            .admin_json("/api/sends", json!({ "schedule": schedule }))
            .await;
        let id = v["id"].as_i64()?;
        self.wait_send(id).await;
        Some(id)
    }

    /// Signs up with the form (as the embed under an article posts it) and confirms.
    async fn sign_up_with_form(&self, email: &str, extra: &str) {
        let before = self.smtp.messages_to(email).len();
        let body = format!("email={}{extra}", email.replace('@', "%40"));
        assert_eq!(self.post_form("/subscribe", &body).await.status(), 200);
        let msg = self.wait_for_mail_to(email, before + 1).await;
        self.confirm(&confirm_link(&msg)).await;
    }
}

/// The titles of the articles a digest carries, in order (from its plain-text part).
fn titles(m: &Received) -> Vec<String> {
    let text = parse(m).body_text(0).unwrap().to_string();
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if l.starts_with("=====") {
            lines.next(); // blank
            let t = lines
                .next()
                .unwrap_or_default()
                .trim_matches(['\u{200F}', '\u{202B}', '\u{202C}', ' ']);
            if !t.is_empty() && t != "الأكثر قراءة" {
                out.push(t.to_owned());
            }
        }
    }
    out
}

/// The first line of the text part containing `needle`.
fn text_link(m: &Received, needle: &str) -> String {
    let text = parse(m).body_text(0).unwrap().to_string();
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} in:\n{text}"))
        .trim()
        .to_owned()
}

both_engines!(
    a_reader_gets_the_sections_and_schedule_they_chose,
    |engine| async move {
        let t = spawn_app_with(engine, SECTIONS).await;
        // Under a sports article: the embed carries the section; this reader wants it weekly.
        let embed = t.get_text("/subscribe/embed?section=sport").await;
        assert!(
            embed.contains(r#"<input type="hidden" name="section" value="sport">"#),
            "{embed}"
        );
        let nothing = t
            .get_text("/subscribe/embed?section=%22%3E%3Cscript%3E")
            .await;
        assert!(
            !nothing.contains("name=\"section\""),
            "unknown sections are not echoed"
        );
        t.sign_up_with_form("sport@example.com", "&section=sport&schedule=weekly")
            .await;
        t.subscribe_and_confirm("all@example.com").await;
        t.add_in(1, "خبر سياسي", "politics").await;
        t.add_in(2, "مباراة الأمس", "رياضة").await;
        t.add_in(3, "معرض الكتاب", "Culture").await;

        // The daily digest: everything for the reader who chose nothing, nothing for the other.
        t.send_schedule("daily").await.expect("a daily digest");
        let all = t.wait_for_mail_to("all@example.com", 2).await;
        assert_eq!(titles(&all), ["معرض الكتاب", "مباراة الأمس", "خبر سياسي"]);
        assert_eq!(
            t.smtp.messages_to("sport@example.com").len(),
            1,
            "only the confirmation"
        );

        // The weekly one: the sports reader gets sport and nothing else.
        let id = t.send_schedule("weekly").await.expect("a weekly digest");
        let sport = t.wait_for_mail_to("sport@example.com", 2).await;
        assert_eq!(titles(&sport), ["مباراة الأمس"]);
        assert_eq!(
            titles(&t.wait_for_mail_to("all@example.com", 3).await).len(),
            3
        );
        let v = t.send(id).await;
        assert_eq!((v.total, v.sent), (2, 2), "{v:?}");
        check_eml(&sport);
        // The newsroom sees the choice on the reader's page.
        add_account(&t, "desk@example.org", nashra::store::Role::Viewer).await;
        let desk = sign_in(&t, "desk@example.org").await;
        let sport_id = t.reader_id("sport@example.com").await;
        let (_, page) = desk.get(&format!("/admin/readers/{sport_id}")).await;
        assert!(page.contains("أسبوعية: رياضة"), "{page}");

        // Nothing new in their section: no mail for them this time.
        t.add_in(4, "خبر سياسي آخر", "سياسة").await;
        let id = t.send_schedule("weekly").await.expect("a weekly digest");
        assert_eq!(
            t.smtp.messages_to("sport@example.com").len(),
            2,
            "no empty digest"
        );
        assert_eq!(
            titles(&t.wait_for_mail_to("all@example.com", 4).await),
            ["خبر سياسي آخر"]
        );
        let v = t.send(id).await;
        assert_eq!(v.total, 1, "{v:?}");
        // Both editions were rendered once, not per reader.
        let editions = t.dir.scalar("SELECT COUNT(*) FROM digest_editions").await;
        assert_eq!(
            editions, 1,
            "one edition: sport, in the first weekly digest"
        );
    }
);

both_engines!(
    a_changed_choice_applies_from_the_next_digest,
    |engine| async move {
        let t = spawn_app_with(engine, SECTIONS).await;
        t.subscribe_and_confirm("r@example.com").await;
        t.add_in(1, "خبر سياسي", "politics").await;
        t.add_in(2, "معرض الكتاب", "culture").await;
        t.send_schedule("daily").await.unwrap();
        let first = t.wait_for_mail_to("r@example.com", 2).await;
        assert_eq!(titles(&first).len(), 2);

        // The footer's link opens the page; nothing changes by opening it.
        let link = t.local(&text_link(&first, "/preferences/"));
        let path = format!("/preferences/{}", link.rsplit('/').next().unwrap());
        let page = t.http.get(&link).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"<html lang="ar" dir="rtl">"#));
        for v in ["daily", "weekly", "politics", "culture", "sport"] {
            assert!(
                html.contains(&format!(r#"value="{v}" checked"#)),
                "{v} ticked before any choice:\n{html}"
            );
        }
        // A forged or foreign token changes nothing.
        let unsub = unsubscribe_link(&first)
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        for bad in ["x.y", unsub.as_str()] {
            let r = t
                .post_form(
                    &format!("/preferences/{bad}"),
                    "schedule=daily&section=culture",
                )
                .await;
            assert_eq!(r.status(), 400, "{bad}");
        }

        // Untick everything: asked whether to leave, nothing saved.
        let r = t.post_form(&path, "schedule=daily").await;
        assert_eq!(r.status(), 200);
        let question = r.text().await.unwrap();
        assert!(question.contains("هل تريد إلغاء اشتراكك"), "{question}");
        let id = t.reader_id("r@example.com").await;
        assert_eq!(
        t.dir
            .scalar(&format!("SELECT COUNT(*) FROM subscribers WHERE id = {id} AND sections IS NULL AND schedules IS NULL"))
            .await,
        1
    );

        // Culture only, daily: saved, said so in Arabic on the same page.
        let r = t
            .post_form(&path, "schedule=daily&section=culture&section=nonsense")
            .await;
        assert_eq!(r.status(), 200);
        let saved = r.text().await.unwrap();
        assert!(saved.contains("حُفظت اختياراتك"), "{saved}");
        assert!(saved.contains(r#"value="culture" checked"#));
        assert!(!saved.contains(r#"value="politics" checked"#));
        assert!(!saved.contains(r#"value="weekly" checked"#));

        t.add_in(3, "خبر سياسي جديد", "politics").await;
        t.add_in(4, "أمسية شعرية", "culture").await;
        t.send_schedule("daily").await.unwrap();
        assert_eq!(
            titles(&t.wait_for_mail_to("r@example.com", 3).await),
            ["أمسية شعرية"]
        );
        t.add_in(5, "خبر ثقافي", "culture").await;
        assert_eq!(t.send_schedule("weekly").await.map(|_| ()), Some(()));
        assert_eq!(
            t.smtp.messages_to("r@example.com").len(),
            3,
            "left the weekly digest"
        );

        // The question's "yes" is the one-click unsubscribe.
        let action = question
            .split("action=\"")
            .map(|s| s.split('"').next().unwrap())
            .find(|a| a.starts_with("/unsubscribe/"))
            .expect("an unsubscribe form")
            .to_owned();
        assert_eq!(t.post_form(&action, "").await.status(), 200);
        assert_eq!(
            t.status_of("r@example.com").await,
            nashra::store::SubscriberStatus::Unsubscribed
        );
        let gone = t
            .http
            .get(&link)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(gone.contains("لست مشتركاً"), "{gone}");
    }
);

both_engines!(
    clicks_are_counted_once_per_message_and_lead_only_to_the_digest,
    |engine| async move {
        let t = spawn_app_with(engine, "[newsletter]\nclick_counts = true\n").await;
        let (id, msgs) = t.send_digest_to(&["a@example.com", "b@example.com"]).await;
        let link = text_link(&msgs[0], "/r/");
        assert!(
            !parse(&msgs[0])
                .body_html(0)
                .unwrap()
                .contains("https://example.org/1/"),
            "every article link goes through /r/"
        );
        let counted = || async {
            t.send(id)
                .await
                .clicks
                .iter()
                .map(|c| c.clicks)
                .sum::<i64>()
        };
        let get = |url: String| {
            let http = t.http.clone();
            async move { http.get(url).send().await.unwrap() }
        };

        // A scanner opening the link as the message arrives: redirected, not counted.
        let r = get(t.local(&link)).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()["location"], "https://example.org/1/");
        assert_eq!(counted().await, 0, "within a minute of delivery");

        // A minute later.
        t.dir
            .exec(&format!(
                "UPDATE deliveries SET sent_at = sent_at - 120000 WHERE digest_id = {id}"
            ))
            .await;
        let head = t.http.head(t.local(&link)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::FOUND);
        assert_eq!(counted().await, 0, "HEAD");
        assert_eq!(get(t.local(&link)).await.status(), StatusCode::FOUND);
        assert_eq!(counted().await, 1);
        assert_eq!(get(t.local(&link)).await.status(), StatusCode::FOUND);
        assert_eq!(counted().await, 1, "the same message's second click");
        let other = text_link(&msgs[1], "/r/");
        assert_eq!(get(t.local(&other)).await.status(), StatusCode::FOUND);
        assert_eq!(counted().await, 2, "another reader's message");
        assert!(
            t.get_text("/metrics")
                .await
                .contains("nashra_clicks_total 2")
        );

        // Only that digest's articles: another article, a forged key, junk — 404, no redirect.
        t.add_article("https://evil.example/phish", "خبر آخر", "نص")
            .await;
        let (key, _) = link.rsplit_once('-').unwrap();
        let elsewhere = format!("{key}-2");
        let (_, tail) = link.rsplit_once("/r/").unwrap();
        let forged = link.replace(
            tail,
            &tail.replacen(&tail[..1], if &tail[..1] == "9" { "8" } else { "9" }, 1),
        );
        for bad in [
            elsewhere,
            forged,
            t.url("/r/1-000000000000-1"),
            t.url("/r/%2F%2Fevil.example"),
        ] {
            let r = get(t.local(&bad)).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
            assert!(r.headers().get("location").is_none());
        }
        assert_eq!(counted().await, 2);
        let clicks = t.send(id).await.clicks;
        assert_eq!(clicks[0].url, "https://example.org/1/", "{clicks:?}");
        add_account(&t, "desk@example.org", nashra::store::Role::Viewer).await;
        let (_, page) = sign_in(&t, "desk@example.org")
            .await
            .get(&format!("/admin/sends/{id}"))
            .await;
        let table = page
            .split("النقرات على المقالات")
            .nth(1)
            .expect("a clicks table");
        assert!(table.contains(">خبر</a>"), "{table}");

        // «الأكثر قراءة» now comes from this week's clicks.
        t.add_article("https://example.org/2/", "خبر جديد", "نص")
            .await;
        let next = t.send_now().await;
        t.wait_send(next).await;
        let html = parse(&t.wait_for_mail_to("a@example.com", 3).await)
            .body_html(0)
            .unwrap()
            .to_string();
        let most_read = html
            .split("الأكثر قراءة")
            .nth(1)
            .expect("a most-read section");
        assert!(
            most_read.contains("href=\"https://example.org/1/\""),
            "{most_read}"
        );
    }
);

both_engines!(
    hijri_dates_and_arabic_digits_stay_out_of_urls_and_latin_runs,
    |engine| async move {
        let t = spawn_app_with(
        engine,
        "[newsletter]\ncalendar = \"both\"\ndigits = \"arabic\"\ntag_url = \"https://example.org/tag/{tag}\"\n",
    )
    .await;
        t.subscribe_and_confirm("r@example.com").await;
        let r = t
        .admin_post(
            "/api/articles",
            json!({"url": "https://example.org/2020/06/12/covid-19/", "title": "تقرير COVID-19 لعام 2020",
                   "summary": "ارتفعت الأسعار 25 في المئة", "tags": ["العراق 2020"],
                   "published_at": "2020-06-12T09:00:00Z"}),
        )
        .await;
        assert_eq!(r.status(), 201);
        let id = t.send_now().await;
        t.wait_send(id).await;
        let m = t.wait_for_mail_to("r@example.com", 2).await;
        let msg = parse(&m);
        let html = msg.body_html(0).unwrap().to_string();
        let text = msg.body_text(0).unwrap().to_string();
        // The article's date in both calendars, Arabic-Indic digits.
        assert!(
            html.contains("١٢ يونيو/ حزيران ٢٠٢٠ — ٢٠ شوال ١٤٤١\u{a0}هـ"),
            "{html}"
        );
        assert!(text.contains("١٢ يونيو/ حزيران ٢٠٢٠ — ٢٠ شوال ١٤٤١\u{a0}هـ"));
        // What is not ours to rewrite keeps its digits: URLs, the Latin run, the article's text.
        assert!(html.contains("href=\"https://example.org/2020/06/12/covid-19/\""));
        assert!(html.contains("COVID-19</span>"), "{html}");
        assert!(html.contains("2020") && html.contains("25 في المئة"));
        assert!(
            html.contains("https://example.org/tag/%D8%A7%D9%84%D8%B9%D8%B1%D8%A7%D9%82_2020"),
            "{html}"
        );
        let arabic_digit = |s: &str| s.chars().any(|c| ('٠'..='٩').contains(&c));
        for url in html
            .split("href=\"")
            .skip(1)
            .chain(text.split_whitespace().filter(|w| w.starts_with("http")))
            .map(|s| s.split('"').next().unwrap())
        {
            assert!(!arabic_digit(url), "a digit changed in {url}");
        }
        for addr in [
            header(&m, "To"),
            header(&m, "List-Unsubscribe"),
            header(&m, "Message-ID"),
        ] {
            assert!(!arabic_digit(&addr), "{addr}");
        }
        // The archive page dates issues the same way.
        let archive = t.get_text("/archive").await;
        assert!(
            archive.contains("\u{a0}هـ، ") && arabic_digit(&archive),
            "{archive}"
        );
    }
);

both_engines!(the_archive_is_a_feed_and_pages, |engine| async move {
    let t = spawn_app(engine).await;
    t.subscribe_and_confirm("r@example.com").await;
    for i in 1..=22 {
        t.add_article(
            &format!("https://example.org/{i}/"),
            &format!("خبر {i}"),
            "نص",
        )
        .await;
        t.wait_send(t.send_now().await).await;
    }
    t.add_article("https://example.org/23/", "خبر للتجربة", "نص")
        .await;
    let test: Value = t
        .admin_json("/api/sends", json!({"test_to": "editor@example.com"}))
        .await;
    assert_eq!(test["id"].as_i64(), Some(23), "{test}");
    let r = t.http.get(t.url("/archive.xml")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let xml = r.text().await.unwrap();
    let feed = feed_rs::parser::parse(xml.as_bytes()).expect("a valid feed");
    assert_eq!(feed.entries.len(), 20, "the latest 20");
    assert!(feed.entries[0].links[0].href.ends_with("/archive/22"));
    assert!(!xml.contains("/archive/23"), "not the test send");

    let first = t.get_text("/archive").await;
    assert_eq!(first.matches("<li>").count(), 20);
    assert!(first.contains("href=\"/archive?page=2\"") && !first.contains("page=0"));
    let second = t.get_text("/archive?page=2").await;
    assert_eq!(second.matches("<li>").count(), 2);
    assert!(second.contains("href=\"/archive/1\"") && second.contains("href=\"/archive?page=1\""));
    assert_eq!(
        t.http
            .get(t.url("/archive?page=x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
});

both_engines!(
    choices_of_removed_schedules_and_sections_fall_back_to_everything,
    |engine| async move {
        let t = spawn_app_with(engine, SECTIONS).await;
        t.sign_up_with_form("w@example.com", "&section=sport&schedule=weekly")
            .await;
        t.sign_up_with_form("p@example.com", "&section=politics")
            .await;
        let (w, p) = (
            t.reader_id("w@example.com").await,
            t.reader_id("p@example.com").await,
        );
        t.subscribe_and_confirm("d@example.com").await;
        let d = t.reader_id("d@example.com").await;
        let path = format!("/preferences/{}", t.app.tokens.preferences(d));
        let form = "schedule=daily&schedule=weekly&section.daily=politics&section.weekly=sport";
        assert_eq!(t.post_form(&path, form).await.status(), 200);
        let (smtp, place) = t.stop().await;
        // The newsroom drops the weekly digest and the sport section.
        let kept = SECTIONS
            .split("[[")
            .filter(|b| !b.contains("weekly") && !b.contains("sport"))
            .collect::<Vec<_>>()
            .join("[[");
        let t = spawn_on(smtp, place, &kept).await;
        let choice = |id| {
            let store = t.app.store.clone();
            async move { store.reader_choice(id).await.unwrap().unwrap().1 }
        };
        let c = choice(w).await;
        assert_eq!(
            (c.schedules, c.sections),
            (None, None),
            "nothing they chose is left"
        );
        let c = choice(p).await;
        assert_eq!(c.sections.as_deref(), Some("politics"), "still there");
        let c = choice(d).await;
        assert_eq!(
            c.by_schedule,
            [("daily".to_owned(), "politics".to_owned())],
            "the weekly digest's own sections went with it"
        );
    }
);

both_engines!(politics_daily_and_culture_weekly, |engine| async move {
    let t = spawn_app_with(engine, SECTIONS).await;
    t.subscribe_and_confirm("r@example.com").await;
    let id = t.reader_id("r@example.com").await;
    let path = format!("/preferences/{}", t.app.tokens.preferences(id));
    let page = t.get_text(&path).await;
    assert!(
        page.contains(r#"name="section.weekly" value="sport" checked"#),
        "{page}"
    );
    let r = t
        .post_form(
            &path,
            "schedule=daily&schedule=weekly&section.daily=politics&section.weekly=culture",
        )
        .await;
    assert_eq!(r.status(), 200);
    let saved = r.text().await.unwrap();
    assert!(saved.contains(r#"name="section.daily" value="politics" checked"#));
    assert!(!saved.contains(r#"name="section.daily" value="culture" checked"#));
    assert!(saved.contains(r#"name="section.weekly" value="culture" checked"#));
    let c = t.app.store.reader_choice(id).await.unwrap().unwrap().1;
    assert_eq!((c.schedules, c.sections), (None, None));
    assert_eq!(
        c.by_schedule,
        [
            ("daily".to_owned(), "politics".to_owned()),
            ("weekly".to_owned(), "culture".to_owned())
        ]
    );

    t.add_in(1, "خبر سياسي", "politics").await;
    t.add_in(2, "معرض الكتاب", "culture").await;
    t.send_schedule("daily").await.unwrap();
    assert_eq!(
        titles(&t.wait_for_mail_to("r@example.com", 2).await),
        ["خبر سياسي"]
    );
    t.send_schedule("weekly").await.unwrap();
    assert_eq!(
        titles(&t.wait_for_mail_to("r@example.com", 3).await),
        ["معرض الكتاب"]
    );

    // No section ticked under the daily digest: the daily digest is not taken.
    let r = t
        .post_form(
            &path,
            "schedule=daily&schedule=weekly&section.weekly=culture",
        )
        .await;
    assert!(r.text().await.unwrap().contains("حُفظت اختياراتك"));
    let c = t.app.store.reader_choice(id).await.unwrap().unwrap().1;
    assert_eq!(
        (
            c.schedules.as_deref(),
            c.sections.as_deref(),
            c.by_schedule.len()
        ),
        (Some("weekly"), Some("culture"), 0)
    );
    t.add_in(3, "خبر سياسي آخر", "politics").await;
    t.add_in(4, "أمسية شعرية", "culture").await;
    t.send_schedule("daily").await.unwrap();
    assert_eq!(t.smtp.messages_to("r@example.com").len(), 3);
    // Nothing ticked anywhere: the question, and nothing saved.
    let r = t.post_form(&path, "schedule=daily&schedule=weekly").await;
    assert!(r.text().await.unwrap().contains("هل تريد إلغاء اشتراكك"));
    let after = t.app.store.reader_choice(id).await.unwrap().unwrap().1;
    assert_eq!(after.sections.as_deref(), Some("culture"));
});

both_engines!(
    a_weekly_round_up_is_opt_in_and_each_schedule_says_when,
    |engine| async move {
        // Issue 15, item 13: a reader who never chose got every schedule, so the weekly
        // round-up repeated the daily's articles.
        let config = SECTIONS.replace(
            "subject = \"نشرة أسبوعية\"",
            "subject = \"نشرة أسبوعية\"\ndefault = false",
        );
        let t = spawn_app_with(engine, &config).await;
        // The sign-up page offers the choice: the daily ticked, the weekly not, each with its time.
        let signup = t.get_text("/subscribe").await;
        assert!(
            signup.contains(
                r#"name="schedule" value="daily" checked> يومية — كل يوم 7:00 صباحاً بتوقيت بغداد"#
            ),
            "{signup}"
        );
        assert!(
            signup.contains(
                r#"name="schedule" value="weekly"> أسبوعية — كل جمعة 7:00 صباحاً بتوقيت بغداد"#
            ),
            "{signup}"
        );
        t.subscribe_and_confirm("plain@example.com").await;
        t.sign_up_with_form("both@example.com", "&schedule=daily&schedule=weekly")
            .await;
        t.add_in(1, "خبر سياسي", "politics").await;
        t.send_schedule("daily").await.unwrap();
        t.wait_for_mail_to("plain@example.com", 2).await;
        t.wait_for_mail_to("both@example.com", 2).await;
        t.add_in(2, "معرض الكتاب", "culture").await;
        let weekly = t.send_schedule("weekly").await.expect("a weekly digest");
        let v = t.send(weekly).await;
        assert_eq!(v.total, 1, "only the reader who chose it: {v:?}");
        t.wait_for_mail_to("both@example.com", 3).await;
        assert_eq!(t.smtp.messages_to("plain@example.com").len(), 2);

        // The preferences page says when each arrives; the weekly and its sections are not ticked.
        let digest = t.smtp.messages_to("plain@example.com")[1].clone();
        let link = t.local(&text_link(&digest, "/preferences/"));
        let html = t.get_text(&link.replacen(&t.base, "", 1)).await;
        assert!(
            html.contains(
                r#"value="daily" checked> تصلني هذه النشرة (كل يوم 7:00 صباحاً بتوقيت بغداد)"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"value="weekly"> تصلني هذه النشرة (كل جمعة 7:00 صباحاً بتوقيت بغداد)"#),
            "{html}"
        );
        for slug in ["politics", "culture", "sport"] {
            assert!(
                html.contains(&format!(r#"name="section.daily" value="{slug}" checked"#)),
                "{slug} ticked under the daily:\n{html}"
            );
            assert!(
                html.contains(&format!(r#"name="section.weekly" value="{slug}">"#)),
                "{slug} not ticked under the weekly it does not get:\n{html}"
            );
        }
        // Ticking the weekly alone (its sections left as shown) takes it with every section.
        let path = link.replacen(&t.base, "", 1);
        let mut form = "schedule=daily&schedule=weekly".to_owned();
        for slug in ["politics", "culture", "sport"] {
            form.push_str(&format!("&section.daily={slug}"));
        }
        let r = t.post_form(&path, &form).await;
        assert!(r.text().await.unwrap().contains("حُفظت اختياراتك"));
        t.add_in(3, "أمسية شعرية", "culture").await;
        let weekly = t.send_schedule("weekly").await.expect("a weekly digest");
        let v = t.send(weekly).await;
        assert_eq!(v.total, 2, "{v:?}");
        t.wait_for_mail_to("plain@example.com", 3).await;
    }
);
