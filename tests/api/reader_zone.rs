//! The reader's clock (issue 17, item 2): the time zone a reader's browser gives at sign-up
//! (a forged one costs the zone only, never the sign-up), the alerts opt-in, the city list
//! on the preferences page, and an import's `timezone` column.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::{browser::dump_dom_in, helpers::*};

/// A reader as `GET /api/subscribers` shows them (raw, to read the new fields' shape).
async fn reader_json(t: &TestApp, email: &str) -> Value {
    let v: Value = t.admin_get(&format!("/api/subscribers?q={email}")).await;
    v["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("no reader {email}: {v}"))
        .clone()
}

/// The reader's (timezone, alerts) as the admin API shows them.
async fn clock_of(t: &TestApp, email: &str) -> (Value, Value) {
    let r = reader_json(t, email).await;
    (r["timezone"].clone(), r["alerts"].clone())
}

both_engines!(
    a_sign_up_keeps_the_browsers_zone_and_the_alerts_opt_in,
    |engine| async move {
        let t = spawn_app(engine).await;
        let r = t
            .post_form(
                "/subscribe",
                "email=sara%40example.com&tz=Africa%2FCasablanca&alerts=1",
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = t
            .post_json(
                "/subscribe",
                json!({"email": "omar@example.com", "tz": "Asia/Dubai", "alerts": true}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        for (body, email) in [
            ("email=plain%40example.com", "plain@example.com"),
            ("email=no%40example.com&alerts=yes&tz=", "no@example.com"),
        ] {
            assert_eq!(t.post_form("/subscribe", body).await.status(), 200);
            assert_eq!(
                clock_of(&t, email).await,
                (Value::Null, json!(false)),
                "{body}: the newsroom's zone, no alerts"
            );
        }
        assert_eq!(
            clock_of(&t, "sara@example.com").await,
            (json!("Africa/Casablanca"), json!(true))
        );
        assert_eq!(
            clock_of(&t, "omar@example.com").await,
            (json!("Asia/Dubai"), json!(true))
        );
        let sara = reader_json(&t, "sara@example.com").await;
        assert_eq!(sara["alerts_per_day"], Value::Null, "the default: {sara}");

        // A stranger signing Sara up again changes nothing of hers; when she comes back
        // after leaving, a form without a zone keeps hers and the alerts wait for her ask.
        t.post_form("/subscribe", "email=sara%40example.com&tz=Asia%2FTokyo")
            .await;
        assert_eq!(
            clock_of(&t, "sara@example.com").await,
            (json!("Africa/Casablanca"), json!(true))
        );
        let id = t.reader_id("sara@example.com").await;
        t.app.store.unsubscribe(id, "page", 1).await.unwrap();
        t.post_form("/subscribe", "email=sara%40example.com").await;
        assert_eq!(
            clock_of(&t, "sara@example.com").await,
            (json!("Africa/Casablanca"), json!(false))
        );
        assert_eq!(
            reader_json(&t, "sara@example.com").await["status"],
            "pending"
        );
    }
);

both_engines!(
    a_forged_zone_falls_back_to_the_newsrooms_with_the_usual_answer,
    |engine| async move {
        let t = spawn_app(engine).await;
        let ordinary = t.post_form("/subscribe", "email=first%40example.com").await;
        let (status, page) = (ordinary.status(), ordinary.text().await.unwrap());
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("تحقّق من بريدك"), "{page}");
        let long = format!("Asia%2F{}", "B".repeat(10 * 1024));
        for (i, tz) in ["Mars%2FOlympus", long.as_str(), "Asia%2FBaghdad%00", "%00"]
            .iter()
            .enumerate()
        {
            let email = format!("forged{i}@example.com");
            let body = format!(
                "email={}&name=%D8%B3%D8%A7%D8%B1%D8%A9&tz={tz}&alerts=1",
                email.replace('@', "%40")
            );
            let r = t.post_form("/subscribe", &body).await;
            assert_eq!(r.status(), status, "tz={:.40}", tz);
            assert_eq!(r.text().await.unwrap(), page, "the same page: tz={tz:.40}");
            t.wait_for_mail_to(&email, 1).await;
            let stored = reader_json(&t, &email).await;
            assert_eq!(stored["timezone"], Value::Null, "{stored}");
            assert_eq!(stored["name"], "سارة", "the rest of the form was read");
            assert_eq!(stored["alerts"], true);
            assert_eq!(stored["status"], "pending");
        }
        // The JSON twin: the same answer as an ordinary JSON sign-up.
        let ordinary = t
            .post_json("/subscribe", json!({"email": "json@example.com"}))
            .await;
        let (status, answer) = (ordinary.status(), ordinary.text().await.unwrap());
        let long = format!("Asia/{}", "B".repeat(10 * 1024));
        for (i, tz) in [
            json!("Mars/Olympus"),
            json!(long),
            json!("Asia/Dubai\u{0}"),
            json!(42),
            json!({"zone": "Asia/Dubai\u{0}"}),
        ]
        .into_iter()
        .enumerate()
        {
            let email = format!("json{i}@example.com");
            let r = t
                .post_json("/subscribe", json!({"email": email, "tz": tz}))
                .await;
            assert_eq!(r.status(), status, "{tz:.40}");
            assert_eq!(r.text().await.unwrap(), answer, "{tz:.40}");
            assert_eq!(clock_of(&t, &email).await.0, Value::Null);
        }
        // A NUL anywhere else still refuses the sign-up (issue 15).
        let r = t
            .post_form("/subscribe", "email=x%40example.com&name=a%00&tz=UTC")
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
);

/// The `<select>` named `name` on a page: its options as (value, label, selected).
fn options(page: &str, name: &str) -> Vec<(String, String, bool)> {
    let start = format!("<select id=\"{name}\" name=\"{name}\">");
    let inner = page
        .split_once(&start)
        .and_then(|(_, rest)| rest.split_once("</select>"))
        .unwrap_or_else(|| panic!("no select {name}: {page}"))
        .0;
    inner
        .split("<option value=\"")
        .skip(1)
        .map(|o| {
            let (value, rest) = o.split_once('"').unwrap();
            let selected = rest.starts_with(" selected");
            let label = rest.split_once('>').unwrap().1.split('<').next().unwrap();
            (value.to_owned(), label.to_owned(), selected)
        })
        .collect()
}

fn chosen(opts: &[(String, String, bool)]) -> Vec<&str> {
    opts.iter().filter(|o| o.2).map(|o| o.0.as_str()).collect()
}

both_engines!(
    the_preferences_page_moves_a_reader_to_their_city,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.subscribe_and_confirm("r@example.com").await;
        let id = t.reader_id("r@example.com").await;
        let path = format!("/preferences/{}", t.app.tokens.preferences(id));
        let page = t.get_text(&path).await;
        let cities = options(&page, "tz");
        // The newsroom's city first, meaning "the newsroom's zone"; then the list, once.
        assert_eq!(
            cities[0],
            ("".into(), "بغداد (توقيت النشرة)".into(), true),
            "{cities:?}"
        );
        assert_eq!(cities[1].0, "Africa/Cairo");
        assert!(cities.len() >= 25, "{cities:?}");
        assert!(!cities.iter().skip(1).any(|c| c.0 == "Asia/Baghdad"));
        assert!(
            cities
                .iter()
                .any(|c| c == &("Africa/Casablanca".into(), "الدار البيضاء".into(), false))
        );
        let per_day = options(&page, "alerts_per_day");
        assert_eq!(per_day.len(), 5);
        assert_eq!(chosen(&per_day), ["2"], "alerts.max_per_day by default");
        assert!(
            page.contains("name=\"alerts\" value=\"1\">"),
            "unticked: {page}"
        );

        let r = t
            .post_form(
                &path,
                "schedule=daily&tz=Africa%2FCasablanca&alerts=1&alerts_per_day=3",
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let saved = r.text().await.unwrap();
        assert!(saved.contains("حُفظت اختياراتك"), "{saved}");
        assert_eq!(chosen(&options(&saved, "tz")), ["Africa/Casablanca"]);
        assert_eq!(chosen(&options(&saved, "alerts_per_day")), ["3"]);
        assert!(
            saved.contains("name=\"alerts\" value=\"1\" checked>"),
            "{saved}"
        );
        let r = reader_json(&t, "r@example.com").await;
        assert_eq!(
            (&r["timezone"], &r["alerts"], &r["alerts_per_day"]),
            (&json!("Africa/Casablanca"), &json!(true), &json!(3))
        );

        // A zone that is no zone, or a count off the list: the page says so, nothing changes.
        let before = reader_json(&t, "r@example.com").await;
        for bad in [
            "schedule=daily&tz=Mars%2FOlympus&alerts_per_day=1",
            "schedule=daily&tz=Asia%2FDubai&alerts_per_day=9",
            "schedule=daily&tz=Asia%2FDubai%00",
        ] {
            let r = t.post_form(&path, bad).await;
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            let page = r.text().await.unwrap();
            assert!(page.contains("class=\"error\""), "{bad}: {page}");
            assert!(page.contains("لم نحفظ شيئاً"), "{bad}: {page}");
            assert_eq!(reader_json(&t, "r@example.com").await, before, "{bad}");
        }

        // Back to the newsroom's zone and no alerts: stored as nothing, so the reader follows
        // the newsroom; a count equal to the default stays "the default".
        let r = t
            .post_form(&path, "schedule=daily&tz=&alerts_per_day=2")
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = reader_json(&t, "r@example.com").await;
        assert_eq!(
            (&r["timezone"], &r["alerts"], &r["alerts_per_day"]),
            (&Value::Null, &json!(false), &json!(2)),
            "3 → 2 is a choice the reader made"
        );

        // A zone from the browser that the list lacks is shown by its name, and kept.
        t.post_form("/subscribe", "email=tokyo%40example.com&tz=Asia%2FTokyo")
            .await;
        let tokyo = t.reader_id("tokyo@example.com").await;
        let path = format!("/preferences/{}", t.app.tokens.preferences(tokyo));
        let cities = options(&t.get_text(&path).await, "tz");
        assert_eq!(cities[1], ("Asia/Tokyo".into(), "Asia/Tokyo".into(), true));
        t.post_form(&path, "schedule=daily&tz=Asia%2FTokyo&alerts_per_day=2")
            .await;
        let r = reader_json(&t, "tokyo@example.com").await;
        assert_eq!(
            (&r["timezone"], &r["alerts_per_day"]),
            (&json!("Asia/Tokyo"), &Value::Null),
            "saving the page as shown changes nothing: {r}"
        );
    }
);

both_engines!(
    an_import_takes_a_timezone_column_and_an_export_gives_it_back,
    |engine| async move {
        let t = spawn_app(engine).await;
        add_account(&t, "editor@example.org", nashra::store::Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let csv = "email,name,timezone\n\
                   sara@example.net,سارة,Africa/Casablanca\n\
                   omar@example.net,عمر,\n\
                   ali@example.net,علي,Mars/Olympus\n\
                   nour@example.net,نور,Europe/Berlin\n";
        let boundary = "----nashra-clock-boundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"readers.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"confirmed\"\r\n\r\nyes\r\n--{boundary}--\r\n"
        );
        let r = t
            .http
            .post(t.url("/admin/readers/import"))
            .header(header::COOKIE, format!("{COOKIE}={}", s.cookie))
            .header("Origin", PUBLIC)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        // Ali is imported in the newsroom's zone, and the report says so, line and value.
        assert!(page.contains("أُضيف <strong>4 قرّاء</strong>."), "{page}");
        assert!(page.contains("أُضيف قارئ واحد بتوقيت النشرة"), "{page}");
        assert!(
            page.contains(
                "<td>4</td><td><bdi>Mars/Olympus</bdi></td><td>أُضيف القارئ بتوقيت النشرة"
            ),
            "{page}"
        );
        for (email, zone) in [
            ("sara@example.net", json!("Africa/Casablanca")),
            ("omar@example.net", Value::Null),
            ("ali@example.net", Value::Null),
            ("nour@example.net", json!("Europe/Berlin")),
        ] {
            assert_eq!(clock_of(&t, email).await, (zone, json!(false)), "{email}");
        }
        // The reader's page in the console says where they read.
        let sara = t.reader_id("sara@example.net").await;
        let (_, reader) = s.get(&format!("/admin/readers/{sara}")).await;
        assert!(
            reader.contains("الدار البيضاء — <bdi dir=\"ltr\">Africa/Casablanca</bdi>"),
            "{reader}"
        );
        // The export carries both columns, and reads back as the same zones.
        let r = s.post("/admin/readers/export.csv", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let out = r.text().await.unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("email,name,status,source,created_at,confirmed_at,timezone,alerts")
        );
        let sara_line = out.lines().find(|l| l.starts_with("sara@")).unwrap();
        assert!(sara_line.ends_with(",Africa/Casablanca,0"), "{sara_line}");
        let omar_line = out.lines().find(|l| l.starts_with("omar@")).unwrap();
        assert!(omar_line.ends_with(",,0"), "{omar_line}");
    }
);

/// The browser's clock for the tests below: an hour off Baghdad's, so the newsroom's zone
/// cannot pass for it.
const BROWSER_ZONE: &str = "Africa/Casablanca";

/// What the embed's forms carry once the page has loaded, beside what the browser says its
/// zone is; then the first form is sent, as a reader would (without the time stamp, which
/// a person takes longer to earn).
const REPORT_AND_SEND: &str = r#"
window.addEventListener('load', function () {
  var fields = document.querySelectorAll('input[name=tz]');
  var values = [];
  for (var i = 0; i < fields.length; i++) values.push(fields[i].value);
  top.document.getElementById('result').textContent = JSON.stringify({
    fields: values,
    browser: Intl.DateTimeFormat().resolvedOptions().timeZone,
  });
  var form = document.querySelector('.nashra-signup form');
  form.querySelector('input[name=email]').value = 'browser@example.com';
  form.querySelector('input[name=t]').remove();
  form.submit();
});
"#;

both_engines!(
    the_browser_fills_the_zone_of_the_page_and_of_the_embed,
    |engine| async move {
        let t = spawn_at_home(engine, "").await;
        // The sign-up page (our own policy: our script file only).
        let dom = dump_dom_in(&t.url("/subscribe"), 800, Some(BROWSER_ZONE)).await;
        assert!(
            dom.contains(&format!(
                "<input type=\"hidden\" name=\"tz\" value=\"{BROWSER_ZONE}\" data-nashra-tz=\"\">"
            )),
            "{dom}"
        );
        // The embed, pasted twice into a news site's article on another origin.
        let embed = t.get_text("/subscribe/embed").await;
        let article = format!(
            "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><head><meta charset=\"utf-8\"></head>\
             <body><article><p>نص المقال.</p>{embed}{embed}</article>\
             <script>{REPORT_AND_SEND}</script></body></html>"
        );
        let top = "<!DOCTYPE html><html><body><iframe src=\"/article\" style=\"width:600px;height:600px\">\
                   </iframe><pre id=\"result\"></pre></body></html>";
        let site = axum::Router::new()
            .route(
                "/",
                axum::routing::get(move || async move { axum::response::Html(top) }),
            )
            .route(
                "/article",
                axum::routing::get(move || {
                    let article = article.clone();
                    async move { axum::response::Html(article) }
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(l, site).await.unwrap() });
        let dom = dump_dom_in(&format!("http://{addr}/"), 800, Some(BROWSER_ZONE)).await;
        server.abort();
        let json = dom
            .split("<pre id=\"result\">")
            .nth(1)
            .and_then(|s| s.split("</pre>").next())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("no result in {dom}"));
        let seen: Value = serde_json::from_str(&json.replace("&quot;", "\"")).unwrap();
        assert_eq!(seen["browser"], BROWSER_ZONE, "{seen}");
        assert_eq!(
            seen["fields"],
            json!([BROWSER_ZONE, BROWSER_ZONE]),
            "{seen}"
        );
        // The form the browser sent stored the reader in the browser's zone.
        t.wait_for_mail_to("browser@example.com", 1).await;
        assert_eq!(
            clock_of(&t, "browser@example.com").await,
            (json!(BROWSER_ZONE), json!(false))
        );
    }
);

both_engines!(
    the_command_line_import_reads_the_timezone_column_too,
    |engine| async move {
        let dir = TestPlace::new(engine).await;
        let cfg = dir.path().join("nashra.toml");
        std::fs::write(&cfg, test_toml(&dir, "127.0.0.1:25".parse().unwrap())).unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_nashra"))
                .current_dir(dir.path())
                .args(["--config", cfg.to_str().unwrap()])
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .expect("nashra runs")
        };
        std::fs::write(
            dir.path().join("zones.csv"),
            "timezone,email\nAfrica/Casablanca,a@example.com\nMars/Olympus,b@example.com\n,c@example.com\n",
        )
        .unwrap();
        let out = run(&["subscribers", "import", "zones.csv", "--confirmed"]);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "no row was rejected: {stdout}{stderr}"
        );
        assert!(
            stdout.contains(
                "3 added, 0 already known, 0 rejected; 1 imported in the newsroom's time zone"
            ),
            "{stdout}"
        );
        assert!(
            stderr.contains("line 3: timezone «Mars/Olympus» is not an IANA time zone"),
            "{stderr}"
        );
        let export = text(&run(&["subscribers", "export"]).stdout);
        for line in [
            ",Africa/Casablanca,0",
            "b@example.com,,confirmed",
            "c@example.com,,confirmed",
        ] {
            assert!(export.contains(line), "{line}: {export}");
        }
        assert!(!export.contains("Mars"), "{export}");
    }
);
