//! In a real browser (Debian's Chromium, headless): the embeddable sign-up form under an
//! article whose theme styles every button and input its own way.

use std::{path::Path, process::Command, time::Duration};

use serde_json::Value;

use crate::helpers::*;

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
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || Command::new(bin).args(&args).output()),
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
document.getElementById('result').textContent = JSON.stringify({
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

both_engines!(the_embed_keeps_its_shape_under_a_hostile_theme, async {
    // Issue 6, item 21: a theme's `button{height:46px;line-height:46px}` clipped «اشترك».
    let t = spawn_app().await;
    let embed = t.get_text("/subscribe/embed").await;
    let page = format!(
        "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><head><meta charset=\"utf-8\"><style>{HOSTILE_THEME}</style></head>\
         <body><article><h1>مقال</h1><p>نص المقال.</p>{embed}</article><pre id=\"result\"></pre><script>{MEASURE}</script></body></html>"
    );
    let app = axum::Router::new().route(
        "/article",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    for width in [375, 600] {
        let dom = dump_dom(&format!("http://{addr}/article"), width).await;
        let json = dom
            .split("<pre id=\"result\">")
            .nth(1)
            .and_then(|s| s.split("</pre>").next())
            .unwrap_or_else(|| panic!("no result in {dom}"));
        let m: Value = serde_json::from_str(&json.replace("&quot;", "\"")).unwrap();
        assert_ne!(
            m["button_line_height"], "46px",
            "the theme reached the button: {m}"
        );
        assert!(
            m["text_height"].as_f64().unwrap() <= m["content_height"].as_f64().unwrap() + 0.5,
            "«اشترك» fits inside the button at {width}px: {m}"
        );
        assert!(
            m["text_top"].as_f64().unwrap() >= m["pad_top"].as_f64().unwrap() - 0.5
                && m["text_bottom"].as_f64().unwrap() >= m["pad_bottom"].as_f64().unwrap() - 0.5,
            "«اشترك» sits inside the button's content box: {m}"
        );
        assert!(
            m["input_height"].as_f64().unwrap() >= 40.0,
            "the address field is usable: {m}"
        );
        assert_eq!(m["input_font"], "16px", "{m}");
    }
});
