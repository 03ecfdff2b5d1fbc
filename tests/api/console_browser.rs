//! The console and the embedded sign-up form in a real browser: Debian's Chromium driven
//! through Debian's chromedriver (WebDriver, with fantoccini). Nothing is downloaded; the
//! test setup (`scripts/test`, `.ci/run`) installs both. Screenshots are kept in
//! `target/screenshots/` (the README's come from there). «عاجل» and a local-hour send's
//! waves are in `news_clock`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use nashra::{
    domain::{SubscriberEmail, SubscriberName},
    store::Role,
};
use serde_json::{Value, json};

use crate::helpers::{smtp::Fault, *};

mod desk;
mod guard;
mod news_clock;
mod reputation;

/// One browser at a time: the machine has two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver process and a session in it; both end when this is dropped.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: run scripts/test, which installs Debian's chromium and chromium-driver"
            );
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--lang=ar",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1280,900",
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Waits until the element's text satisfies `ok`.
    async fn wait_text(&self, css: &str, within: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await
                && let Ok(t) = e.text().await
                && ok(&t)
            {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} never matched; page: {}",
                self.client.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    }

    /// The page is right to left, and its main column's text hugs the right edge.
    async fn assert_rtl(&self) {
        let m = self
            .js("const h = document.querySelector('main h1');
                 const r = document.createRange(); r.selectNodeContents(h);
                 const text = r.getBoundingClientRect(), box = h.getBoundingClientRect();
                 return { html: document.documentElement.dir, lang: document.documentElement.lang,
                          main: getComputedStyle(document.querySelector('main')).direction,
                          gap_right: box.right - text.right, gap_left: text.left - box.left };")
            .await;
        assert_eq!(m["html"], "rtl", "{m}");
        assert_eq!(m["lang"], "ar", "{m}");
        assert_eq!(m["main"], "rtl", "{m}");
        assert!(
            m["gap_right"].as_f64().unwrap() < 2.0 && m["gap_left"].as_f64().unwrap() > 2.0,
            "the heading starts at the right: {m}"
        );
    }

    async fn sign_in(&self, t: &TestApp, email: &str) {
        self.client.goto(&t.url("/admin")).await.unwrap();
        assert_eq!(self.path().await, "/admin/login");
        self.assert_rtl().await;
        self.fill("#email", email).await;
        self.fill("#password", PASSWORD).await;
        self.click("form button[type=submit]").await;
        self.wait_text("main h1", Duration::from_secs(10), |t| t == "نظرة عامة")
            .await;
    }
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn readers(t: &TestApp, n: usize) {
    let rows: Vec<_> = (0..n)
        .map(|i| {
            (
                SubscriberEmail::parse(&format!("reader{i}@example.net")).unwrap(),
                SubscriberName::parse("قارئ").unwrap(),
            )
        })
        .collect();
    t.app.store.import(&rows, true, "import").await.unwrap();
}

both_engines!(
    multi_thread,
    an_editor_previews_tests_sends_and_watches_it_finish_live,
    |engine| async move {
        let _one = ONE_BROWSER.lock().await;
        let t = spawn_at_home(engine, "[delivery]\nconcurrency = 1").await;
        t.smtp.set_delay(Duration::from_millis(120));
        readers(&t, 30).await;
        // Two readers' servers refuse the digest: the failures table fills while the page
        // stays open (issue 15, item 16).
        for r in ["reader20@example.net", "reader25@example.net"] {
            t.smtp.fault(r, Fault::Code(550), usize::MAX);
        }
        for (i, title) in [
            "الحكومة العراقية تعلن خطة جديدة للكهرباء قبل الصيف",
            "أسعار النفط ترتفع بعد قرار «أوبك+» خفض الإنتاج",
            "معرض بغداد الدولي للكتاب يفتح أبوابه بمشاركة 300 دار نشر",
        ]
        .iter()
        .enumerate()
        {
            t.add_article(
                &format!("https://example.org/news/{i}"),
                title,
                "ملخص الخبر كما يكتبه الموقع في أول المقال، في سطرين أو ثلاثة.",
            )
            .await;
        }
        // A month of sign-ups and departures, as the dashboard's chart draws them (29 days
        // back, so every one falls inside the chart's 30 local days whatever the hour).
        let now = chrono::Utc::now().timestamp_millis();
        let (mut signups, mut departures) = (0, 0);
        for day in 0..29i64 {
            let ins = 3 + (day * 7) % 11;
            let outs = (day * 5) % 4;
            for k in 0..(ins + outs) {
                let event = if k < ins { "signup" } else { "unsubscribe" };
                let at = now - day * 86_400_000 - 3_600_000;
                t.dir
                    .exec(&format!(
                        "INSERT INTO consent_events (subscriber_id, at, event, source) VALUES (1, {at}, '{event}', 'page')"
                    ))
                    .await;
            }
            signups += ins;
            departures += outs;
        }
        add_account(&t, "desk@example.org", Role::Editor).await;
        let b = Browser::start().await;
        b.sign_in(&t, "desk@example.org").await;
        b.assert_rtl().await;
        let legend = b.text(".legend").await;
        assert!(
            legend.contains(&format!("اشتراكات: {signups}"))
                && legend.contains(&format!("مغادرات: {departures}")),
            "{legend}"
        );
        let drawn = b
            .js("return [...document.querySelectorAll('svg.chart rect.in')].map(r => +r.textContent)")
            .await;
        let drawn: Vec<i64> = serde_json::from_value(drawn).unwrap();
        assert_eq!(drawn.len(), 30, "a bar a day");
        assert_eq!(drawn.iter().sum::<i64>(), signups, "the bars add up");

        // The preview: desktop and phone side by side, the size, the text part.
        b.client.goto(&t.url("/admin/preview")).await.unwrap();
        b.assert_rtl().await;
        let frames = b
            .js("return [...document.querySelectorAll('.frames iframe')].map(f => Math.round(f.getBoundingClientRect().width))")
            .await;
        assert_eq!(frames, json!([660, 375]), "desktop and phone widths");
        let inside = b
            .js(
                "const d = document.querySelector('iframe.phone').contentDocument;
                 return d ? d.documentElement.dir : 'sandboxed'",
            )
            .await;
        assert_eq!(inside, "sandboxed", "the digest runs in a sandboxed frame");
        assert!(b.text("#size").await.contains("ك.ب"));
        assert!(b.text("pre.text").await.contains("الحكومة العراقية"));
        // Each line of the plain part takes its own direction, as in a reader's client
        // (issue 15, item 19).
        assert_eq!(
            b.js("return getComputedStyle(document.querySelector('pre.text')).unicodeBidi")
                .await,
            "plaintext"
        );
        b.client
            .find(Locator::Css(".frames"))
            .await
            .unwrap()
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshots().join("preview.png"), png))
            .unwrap()
            .unwrap();
        b.client.set_window_size(1280, 1400).await.unwrap();
        b.client
            .find(Locator::Css("iframe.phone"))
            .await
            .unwrap()
            .screenshot()
            .await
            .map(|png| std::fs::write(screenshots().join("phone-preview.png"), png))
            .unwrap()
            .unwrap();

        // A test to the desk.
        b.fill("#to", "desk@example.org\nchief@example.org").await;
        b.click("form[action='/admin/preview/test'] button").await;
        b.wait_text("p.flash", Duration::from_secs(10), |t| {
            t.contains("التجريبية")
        })
        .await;
        t.wait_for_mail_to("desk@example.org", 1).await;
        t.wait_for_mail_to("chief@example.org", 1).await;

        // The send: confirmed, then followed live.
        b.click("form[action='/admin/sends'] input[name=confirm]")
            .await;
        b.click("form[action='/admin/sends'] button").await;
        b.wait_text("[data-field=status_label]", Duration::from_secs(10), |s| {
            s == "جارٍ الإرسال"
        })
        .await;
        b.wait_text("[data-field=sent_text]", Duration::from_secs(20), |s| {
            s.parse::<i64>().is_ok_and(|n| n >= 3)
        })
        .await;
        b.screenshot("send-in-progress").await;
        b.click("form[action$='/pause'] button").await;
        b.wait_text("[data-field=status_label]", Duration::from_secs(10), |s| {
            s == "متوقّف مؤقتاً"
        })
        .await;
        let sent_at_pause: i64 = b.text("[data-field=sent_text]").await.parse().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let sent_later: i64 = b.text("[data-field=sent_text]").await.parse().unwrap();
        assert!(
            sent_later <= sent_at_pause + 1,
            "paused: {sent_at_pause} then {sent_later}"
        );
        assert!(sent_later < 30);
        b.click("form[action$='/resume'] button").await;
        // From here the page is not reloaded: a mark set on it now must still be there when
        // the send is complete.
        b.wait_text("[data-field=status_label]", Duration::from_secs(10), |s| {
            s == "جارٍ الإرسال"
        })
        .await;
        b.js("window.nashraMark = 'same page'; return null").await;
        b.wait_text("[data-field=status_label]", Duration::from_secs(60), |s| {
            s == "اكتمل"
        })
        .await;
        assert_eq!(b.js("return window.nashraMark || null").await, "same page");
        assert_eq!(b.text("[data-field=sent_text]").await, "28");
        b.wait_text("#failures", Duration::from_secs(10), |s| {
            s.contains("reader20@example.net") && s.contains("reader25@example.net")
        })
        .await;
        assert!(!b.text("#failures").await.contains("لا رسائل فاشلة"));
        assert_eq!(b.text("[data-field=failed_text]").await, "2");
        assert_eq!(
            b.js("return [document.querySelector('.status-line').getAttribute('aria-live'), document.querySelector('dl.numbers').getAttribute('aria-live')]")
                .await,
            json!(["polite", "polite"]),
            "progress is announced"
        );
        assert_eq!(
            b.js("return document.querySelector('form[action$=\"/pause\"]').hidden")
                .await,
            true
        );
        assert_eq!(
            b.js("const bar = document.querySelector('.bar');
                  return [bar.getAttribute('aria-valuenow'), bar.firstElementChild.style.width]")
                .await,
            json!(["100", "100%"]),
            "the bar is full"
        );
        let readers: Vec<String> = (0..30)
            .filter(|i| *i != 20 && *i != 25)
            .map(|i| format!("reader{i}@example.net"))
            .collect();
        t.assert_each_received_once(&readers);
        // The dashboard lists it.
        b.client.goto(&t.url("/admin")).await.unwrap();
        b.wait_text("main table td .badge", Duration::from_secs(10), |s| {
            s == "اكتمل"
        })
        .await;
        b.screenshot("dashboard").await;
        b.client.back().await.unwrap();
        // On a phone: the same page, one column, nothing wider than the screen.
        b.client.set_window_size(390, 844).await.unwrap();
        b.client.refresh().await.unwrap();
        b.wait_text("[data-field=status_label]", Duration::from_secs(10), |s| {
            s == "اكتمل"
        })
        .await;
        let overflow = b
            .js("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_f64().unwrap() <= 1.0,
            "no sideways scrolling on a phone: {overflow}"
        );
        b.assert_rtl().await;
        b.screenshot("send-on-phone").await;
        // The sends list on a phone: each row a card, each cell under its column's name.
        b.client.goto(&t.url("/admin/sends")).await.unwrap();
        let cell = b
            .js("const td = document.querySelector('.scroll tbody td');
                 return [getComputedStyle(td).display, td.getAttribute('data-label'),
                         document.documentElement.scrollWidth - window.innerWidth]")
            .await;
        assert_eq!(cell[0], "block", "{cell}");
        assert_eq!(cell[1], "#", "{cell}");
        assert!(cell[2].as_f64().unwrap() <= 1.0, "{cell}");
        b.screenshot("sends-on-phone").await;
        b.client.close().await.unwrap();
    }
);

both_engines!(multi_thread, a_viewer_cannot_send, |engine| async move {
    let _one = ONE_BROWSER.lock().await;
    let t = spawn_at_home(engine, "").await;
    readers(&t, 2).await;
    t.add_article("https://example.org/news/1", "خبر", "ملخص")
        .await;
    let id = t.send_now().await;
    t.wait_send(id).await;
    t.add_article("https://example.org/news/2", "خبر آخر", "ملخص")
        .await;
    add_account(&t, "reader-desk@example.org", Role::Viewer).await;
    let b = Browser::start().await;
    b.sign_in(&t, "reader-desk@example.org").await;
    // No sending controls anywhere a viewer goes…
    b.client.goto(&t.url("/admin/sends")).await.unwrap();
    assert!(
        b.client
            .find(Locator::Css("a[href='/admin/preview'].button"))
            .await
            .is_err()
    );
    b.client
        .goto(&t.url(&format!("/admin/sends/{id}")))
        .await
        .unwrap();
    assert!(
        b.client
            .find_all(Locator::Css("form[method=post][action^='/admin/sends']"))
            .await
            .unwrap()
            .is_empty()
    );
    b.client.goto(&t.url("/admin/preview")).await.unwrap();
    assert_eq!(b.text("main h1").await, "ليست لديك الصلاحية");
    // …and the server refuses the request a page could still make.
    let status = b
        .client
        .execute_async(
            "const done = arguments[0];
             fetch('/admin/sends', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                                    body: 'schedule=daily&confirm=yes', redirect: 'manual'})
               .then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert_eq!(
        t.dir.scalar("SELECT COUNT(*) FROM digests").await,
        1,
        "no new send"
    );
    b.client.close().await.unwrap();
});

both_engines!(
    multi_thread,
    a_reader_signs_up_through_the_embed_under_an_article,
    |engine| async move {
        let _one = ONE_BROWSER.lock().await;
        let t = spawn_at_home(engine, "[server]\nmin_fill_time = \"300ms\"").await;
        // The news site: a real article, the prompt as its last paragraph, the form pasted under
        // it. Another origin than Nashra's.
        let article = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-article.txt"),
        )
        .unwrap();
        let paragraphs: String = article
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(|p| format!("<p>{}</p>\n", p.trim()))
            .collect();
        let embed = t.get_text("/subscribe/embed").await;
        let page = format!(
            "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>الحل نت</title>\
         <style>body{{font-family:serif;max-width:720px;margin:auto;padding:16px}} button{{height:46px;line-height:46px}}</style></head>\
         <body><article><h1>إيران تدفع بغداد نحو موسكو</h1>{paragraphs}{embed}</article></body></html>"
        );
        let site = axum::Router::new().route(
            "/2020/06/iran-baghdad",
            axum::routing::get(move || {
                let page = page.clone();
                async move { axum::response::Html(page) }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, site).await.unwrap() });
        let b = Browser::start().await;
        b.client.set_window_size(390, 844).await.unwrap();
        b.client
            .goto(&format!("http://localhost:{port}/2020/06/iran-baghdad"))
            .await
            .unwrap();
        b.js("document.querySelector('.nashra-signup').scrollIntoView(); return null")
            .await;
        b.fill(".nashra-signup input[type=email]", "qari@example.net")
            .await;
        b.screenshot("embed-under-article").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.click(".nashra-signup button").await;
        let heading = b
            .wait_text("h1", Duration::from_secs(10), |h| h == "تحقّق من بريدك")
            .await;
        assert_eq!(heading, "تحقّق من بريدك");
        assert!(
            b.text("main")
                .await
                .contains("أرسلنا رسالة إلى بريدك الإلكتروني")
        );
        assert_eq!(b.js("return document.documentElement.dir").await, "rtl");
        b.screenshot("embed-check-inbox").await;
        let msg = t.wait_for_mail_to("qari@example.net", 1).await;
        assert!(confirm_link(&msg).contains("/confirm/"));
        let source: String = sqlx_source(&t).await;
        assert!(source.starts_with("embed"), "{source}");
        b.client.close().await.unwrap();
    }
);

async fn sqlx_source(t: &TestApp) -> String {
    t.app
        .store
        .list_subscribers(&Default::default(), 1, 1)
        .await
        .unwrap()
        .0[0]
        .source
        .clone()
}

both_engines!(
    multi_thread,
    a_reader_chooses_on_the_preferences_page_at_phone_width,
    |engine| async move {
        let _one = ONE_BROWSER.lock().await;
        let t = spawn_at_home(
            engine,
            "[newsletter]\ncalendar = \"both\"\ndigits = \"arabic\"\n\
             [[schedules]]\nname = \"daily\"\nlabel = \"يومية\"\ncron = \"0 7 * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة الحل نت — {{ date }}\"\n\
             [[schedules]]\nname = \"weekly\"\nlabel = \"أسبوعية\"\ncron = \"0 7 * * 5\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة الأسبوع — {{ date }}\"\n\
             [[sections]]\nslug = \"politics\"\nname = \"سياسة\"\n[[sections]]\nslug = \"culture\"\nname = \"ثقافة وفنون\"\n[[sections]]\nslug = \"sport\"\nname = \"رياضة\"\n",
        )
        .await;
        t.subscribe_and_confirm("qari@example.net").await;
        for (n, title, section) in [
            (
                1,
                "الحكومة العراقية تعلن خطة جديدة للكهرباء في صيف 2026",
                "politics",
            ),
            (
                2,
                "معرض بغداد الدولي للكتاب يفتح أبوابه بمشاركة 300 دار نشر",
                "culture",
            ),
        ] {
            let r = t
                .admin_post(
                    "/api/articles",
                    json!({"url": format!("https://example.org/2026/11/{n}/"), "title": title,
                           "summary": "يقدّم هذا الخبر ملخصاً لما جرى، مع أرقام وتواريخ تظهر بالأرقام العربية في النشرة.",
                           "section": section, "published_at": "2026-11-29T09:00:00Z"}),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
        let id = t.send_now().await;
        t.wait_send(id).await;
        let msg = t.wait_for_mail_to("qari@example.net", 2).await;
        let html = parse(&msg).body_html(0).unwrap().to_string();
        let prefs = html
            .split("href=\"")
            .map(|s| s.split('"').next().unwrap())
            .find(|u| u.contains("/preferences/"))
            .expect("a preferences link in the footer")
            .replace("&amp;", "&");

        let b = Browser::start().await;
        // The digest as a mail client shows it: both calendars, Arabic-Indic digits.
        let file = t.dir.path().join("digest.html");
        std::fs::write(&file, &html).unwrap();
        b.client.set_window_size(640, 1500).await.unwrap();
        b.client
            .goto(&format!("file://{}", file.display()))
            .await
            .unwrap();
        let date = b.text("td.pad p").await;
        assert!(
            date.contains("هـ") && date.contains("٢٠٢٦") && !date.contains("2026"),
            "{date}"
        );
        b.screenshot("digest-hijri").await;

        // The preferences page on a phone.
        b.client.set_window_size(375, 900).await.unwrap();
        b.client.goto(&prefs).await.unwrap();
        b.assert_rtl().await;
        let fits = b
            .js("return document.documentElement.scrollWidth <= window.innerWidth")
            .await;
        assert_eq!(fits, true, "no sideways scrolling at 375 px");
        // Politics out of the daily digest; no weekly one at all.
        b.click("input[name='section.daily'][value=politics]").await;
        b.click("input[name=schedule][value=weekly]").await;
        b.click("form button[type=submit]").await;
        b.wait_text("main", Duration::from_secs(10), |m| {
            m.contains("حُفظت اختياراتك")
        })
        .await;
        b.screenshot("preferences-375").await;
        let checked = b
            .js("return [...document.querySelectorAll('input:checked')].map(i => i.name + '=' + i.value).join(' ')")
            .await;
        // The weekly's sections are not ticked under a weekly the reader does not get
        // (issue 15, item 13).
        assert_eq!(
            checked,
            "schedule=daily section.daily=culture section.daily=sport"
        );
        assert_eq!(
            b.js("return document.querySelector('[role=status]').textContent")
                .await,
            "حُفظت اختياراتك، وتسري من النشرة القادمة.",
            "the saved message is a status a screen reader announces"
        );
        let reader = t.reader_id("qari@example.net").await;
        let choice = t.app.store.reader_choice(reader).await.unwrap().unwrap().1;
        assert_eq!(choice.sections.as_deref(), Some("culture,sport"));
        assert_eq!(choice.schedules.as_deref(), Some("daily"));
        b.client.close().await.unwrap();
    }
);
