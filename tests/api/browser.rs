//! In a real browser (Debian's Chromium, headless): the embeddable sign-up form under an
//! article whose theme styles every button and input its own way.

use std::{path::Path, process::Command, time::Duration};

use serde_json::Value;

use crate::helpers::{smtp::Received, *};

/// Debian's Chromium; the test setup (`scripts/test`, `.ci/run`) installs it.
fn chromium() -> &'static str {
    const PATH: &str = "/usr/bin/chromium";
    assert!(
        Path::new(PATH).exists(),
        "{PATH} is missing: run scripts/test, which installs Debian's chromium"
    );
    PATH
}

/// Loads `url` in headless Chromium at `width` px and returns the DOM after its scripts ran.
pub async fn dump_dom(url: &str, width: u32) -> String {
    dump_dom_in(url, width, None).await
}

/// [`dump_dom`] in a browser whose clock is in `zone` (an IANA name, through `TZ`), or in
/// the machine's.
pub async fn dump_dom_in(url: &str, width: u32, zone: Option<&str>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        format!("--user-data-dir={}", profile.path().display()),
        format!("--window-size={width},900"),
        "--virtual-time-budget=3000".into(),
        "--dump-dom".into(),
        url.to_owned(),
    ];
    let bin = chromium();
    let mut command = Command::new(bin);
    command.args(&args);
    if let Some(zone) = zone {
        command.env("TZ", zone);
    }
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("chromium finishes")
    .unwrap()
    .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A theme that sizes buttons and inputs for itself, as news-site themes do.
const HOSTILE_THEME: &str = "*,*::before,*::after{box-sizing:border-box}
button{height:46px;line-height:46px;padding:0 40px;font-size:22px;text-transform:uppercase}
input{height:20px;line-height:20px;font-size:10px;border:0}
p{font-size:40px;line-height:1;margin:0}
form{display:block}";

const MEASURE: &str = r#"
const b = document.querySelector('.nashra-signup button');
const i = document.querySelector('.nashra-signup input[type=email]');
const cs = getComputedStyle(b);
const box = b.getBoundingClientRect();
const range = document.createRange();
range.selectNodeContents(b);
const text = range.getBoundingClientRect();
const padTop = parseFloat(cs.paddingTop), padBottom = parseFloat(cs.paddingBottom);
top.document.getElementById('result').textContent = JSON.stringify({
  button_line_height: cs.lineHeight,
  button_height: box.height,
  text_top: text.top - box.top,
  text_bottom: box.bottom - text.bottom,
  pad_top: padTop,
  pad_bottom: padBottom,
  content_height: box.height - padTop - padBottom,
  text_height: text.height,
  input_height: i.getBoundingClientRect().height,
  input_font: getComputedStyle(i).fontSize,
});
"#;

/// Serves `page` on a port of its own, shows it in a frame `width` px wide (a window cannot be
/// narrower than 500 px in headless Chromium; a frame can) and returns what its script wrote,
/// as JSON, into the top page's `<pre id="result">`.
pub async fn measure_page(page: String, width: u32) -> Value {
    let top = format!(
        "<!DOCTYPE html><html><body style=\"margin:0\"><iframe src=\"/article\" \
         style=\"width:{width}px;height:900px;border:0\"></iframe><pre id=\"result\"></pre></body></html>"
    );
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || {
                let top = top.clone();
                async move { axum::response::Html(top) }
            }),
        )
        .route(
            "/article",
            axum::routing::get(move || {
                let page = page.clone();
                async move { axum::response::Html(page) }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let dom = dump_dom(&format!("http://{addr}/"), width.max(500) + 100).await;
    server.abort();
    let json = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("no result in {dom}"));
    serde_json::from_str(&json.replace("&quot;", "\"").replace("&amp;", "&")).unwrap()
}

/// An ordinary right-to-left article page of a news site with `embed` pasted under the text,
/// `theme` as its style sheet and `script` run once it has loaded.
fn article_page(theme: &str, embed: &str, script: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{theme}</style></head>\
         <body><article><h1>مقال</h1><p>نص المقال.</p>{embed}</article><script>{script}</script></body></html>"
    )
}

both_engines!(
    the_embed_keeps_its_shape_under_a_hostile_theme,
    |engine| async move {
        // Issue 6, item 21: a theme's `button{height:46px;line-height:46px}` clipped «اشترك».
        // Issue 15, item 22: measured as a reader sees it (the label inside the button), whatever
        // the Arabic font's glyph box (Noto's is taller than the line).
        let t = spawn_app(engine).await;
        let embed = t.get_text("/subscribe/embed").await;
        for width in [375, 600] {
            let m = measure_page(article_page(HOSTILE_THEME, &embed, MEASURE), width).await;
            assert_ne!(
                m["button_line_height"], "46px",
                "the theme reached the button: {m}"
            );
            assert!(
                m["text_top"].as_f64().unwrap() >= -0.5
                    && m["text_bottom"].as_f64().unwrap() >= -0.5,
                "«اشترك» sits inside the button at {width}px: {m}"
            );
            assert!(
                m["input_height"].as_f64().unwrap() >= 40.0,
                "the address field is usable: {m}"
            );
            assert_eq!(m["input_font"], "16px", "{m}");
        }
    }
);

/// What a reader's screen shows of the page's width.
const WIDTH: &str = r#"
top.document.getElementById('result').textContent = JSON.stringify({
  scroll_width: document.documentElement.scrollWidth,
  body_scroll_width: document.body.scrollWidth,
  viewport: window.innerWidth,
});
"#;

fn with_script(html: &str, script: &str) -> String {
    let (head, tail) = html.rsplit_once("</body>").expect("a page with a body");
    format!("{head}<script>{script}</script></body>{tail}")
}

both_engines!(
    no_sign_up_page_nor_the_site_with_the_embed_scrolls_sideways,
    |engine| async move {
        // Issue 15, item 9: the honeypot hidden 10,000 px to the left made the page, and the news
        // site's own page with the embed pasted, 10,000 px wide in right-to-left.
        let t = spawn_app(engine).await;
        let embed = t.get_text("/subscribe/embed").await;
        let signup = t.get_text("/subscribe").await;
        let refused = t
            .http
            .post(t.url("/subscribe"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=not-an-address")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 422);
        let refused = refused.text().await.unwrap();
        let pages = [
            ("the sign-up page", with_script(&signup, WIDTH)),
            ("the refused sign-up page", with_script(&refused, WIDTH)),
            (
                "a news site's article with the embed",
                article_page("", &embed, WIDTH),
            ),
        ];
        for width in [375, 1024] {
            for (what, page) in &pages {
                let m = measure_page(page.clone(), width).await;
                let viewport = m["viewport"].as_f64().unwrap();
                assert!(
                    m["scroll_width"].as_f64().unwrap() <= viewport
                        && m["body_scroll_width"].as_f64().unwrap() <= viewport,
                    "{what} scrolls sideways at {width}px: {m}"
                );
            }
        }
    }
);

/// A theme that forces its own look on every element with `!important`.
const IMPORTANT_THEME: &str = "div,p,form,input,button{display:block !important;width:100% !important;\
font-size:9px !important;line-height:9px !important;height:12px !important;padding:0 !important;\
color:#777 !important;background:#eee !important;border:3px dashed red !important;\
text-align:left !important;direction:ltr !important;visibility:visible !important;opacity:1 !important}";

const LOOK: &str = r#"
const root = document.querySelector('.nashra-signup');
const b = root.querySelector('button');
const i = root.querySelector('input[type=email]');
const hp = root.querySelector('input[name=website]');
const cs = (e) => getComputedStyle(e);
const bb = b.getBoundingClientRect();
const range = document.createRange();
range.selectNodeContents(b);
const text = range.getBoundingClientRect();
top.document.getElementById('result').textContent = JSON.stringify({
  root_direction: cs(root).direction,
  root_align: cs(root).textAlign,
  button_background: cs(b).backgroundColor,
  button_color: cs(b).color,
  button_font: cs(b).fontSize,
  label_inside: text.top >= bb.top - 0.5 && text.bottom <= bb.bottom + 0.5,
  input_font: cs(i).fontSize,
  input_height: i.getBoundingClientRect().height,
  honeypot_width: hp.getBoundingClientRect().width,
  scroll_width: document.documentElement.scrollWidth,
  viewport: window.innerWidth,
});
"#;

both_engines!(
    the_embed_keeps_its_look_under_a_theme_of_important_rules,
    |engine| async move {
        // Issue 15, item 12: a theme's `!important` rules beat plain inline styles.
        let t = spawn_app(engine).await;
        let embed = t.get_text("/subscribe/embed").await;
        for width in [375, 1024] {
            let m = measure_page(article_page(IMPORTANT_THEME, &embed, LOOK), width).await;
            assert_eq!(m["root_direction"], "rtl", "{m}");
            assert_eq!(m["root_align"], "right", "{m}");
            assert_eq!(m["button_background"], "rgb(192, 57, 43)", "{m}");
            assert_eq!(m["button_color"], "rgb(255, 255, 255)", "{m}");
            assert_eq!(m["button_font"], "16px", "{m}");
            assert_eq!(m["label_inside"], true, "{m}");
            assert_eq!(m["input_font"], "16px", "{m}");
            assert!(m["input_height"].as_f64().unwrap() >= 40.0, "{m}");
            assert!(m["honeypot_width"].as_f64().unwrap() <= 1.0, "{m}");
            assert!(
                m["scroll_width"].as_f64().unwrap() <= m["viewport"].as_f64().unwrap(),
                "{m}"
            );
        }
    }
);

both_engines!(
    a_long_url_wraps_on_a_phone_in_every_message_and_page,
    |engine| async move {
        // Issue 15, item 10: one long URL in an excerpt made the digest 438 px wide at 375 px,
        // cutting off the start of every line.
        let t = spawn_app(engine).await;
        let reader = "long@example.com";
        t.subscribe_and_confirm(reader).await;
        let confirmation = t.smtp.messages_to(reader)[0].clone();
        let long = format!(
            "https://example.org/{}?utm_source=newsletter&id={}",
            "a-very-long-path-segment-".repeat(8),
            "0123456789".repeat(6)
        );
        t.add_article(
            "https://example.org/long/",
            &format!("عنوان فيه رابط طويل {}", "x".repeat(90)),
            &format!("التفاصيل في {long} كما نشرتها الوكالة."),
        )
        .await;
        let id = t.send_now().await;
        t.wait_send(id).await;
        let digest = t.wait_for_mail_to(reader, 2).await;
        let html = |m: &Received| parse(m).body_html(0).unwrap().into_owned();
        let pages = [
            ("the digest", html(&digest)),
            ("the confirmation email", html(&confirmation)),
            (
                "the digest's web copy",
                t.get_text(&format!("/archive/{id}")).await,
            ),
            ("the archive", t.get_text("/archive").await),
        ];
        for (what, page) in &pages {
            let m = measure_page(with_script(page, WIDTH), 375).await;
            let viewport = m["viewport"].as_f64().unwrap();
            assert!(
                m["scroll_width"].as_f64().unwrap() <= viewport
                    && m["body_scroll_width"].as_f64().unwrap() <= viewport,
                "{what} is wider than a 375 px phone: {m}"
            );
        }
    }
);
