//! The admin API: bearer auth, articles in, feeds that fail, subscribers and erasure.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::helpers::*;

both_engines!(
    admin_api_answers_401_without_the_token,
    |engine| async move {
        let t = spawn_app(engine).await;
        let routes: &[(&str, &str)] = &[
            ("POST", "/api/articles"),
            ("POST", "/api/ingest"),
            ("POST", "/api/sends"),
            ("GET", "/api/sends/1"),
            ("POST", "/api/sends/1/pause"),
            ("POST", "/api/sends/1/resume"),
            ("POST", "/api/sends/1/cancel"),
            ("POST", "/api/sends/1/retry"),
            ("GET", "/api/sends/1/failures"),
            ("GET", "/api/subscribers"),
            ("DELETE", "/api/subscribers/a@example.com"),
        ];
        for (method, path) in routes {
            for auth in [
                None,
                Some("Bearer wrong-token-wrong-token"),
                Some("test-admin-token-0123456789"),
                Some("Bearer "),
            ] {
                let mut req = t
                    .http
                    .request(method.parse().unwrap(), t.url(path))
                    .json(&json!({}));
                if let Some(a) = auth {
                    req = req.header("Authorization", a);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 401, "{method} {path} with {auth:?}");
            }
        }
        assert_eq!(t.readers("").await.total, 0);
    }
);

both_engines!(
    articles_pushed_through_the_api_are_sanitized_and_deduplicated,
    |engine| async move {
        let t = spawn_app(engine).await;
        let a = json!({
            "url": "https://example.org/2020/06/x/",
            "title": "<b>عنوان</b> S-400",
            "content_html": "<p dir=\"rtl\" onclick=\"evil()\">نص #مصطفى_الكاظمي و #بغداد<script>alert(1)</script><iframe src=\"https://e.org\"></iframe></p>",
            "tags": ["سياسة"],
        });
        let r = t.admin_post("/api/articles", a.clone()).await;
        assert_eq!(r.status(), 201);
        let r = t.admin_post("/api/articles", a).await;
        assert_eq!(r.status(), 200, "same URL: already known");
        // Same guid, new URL: still the same article.
        let g = json!({"url": "https://example.org/a/", "title": "أ", "guid": "g-1"});
        assert_eq!(t.admin_post("/api/articles", g).await.status(), 201);
        let g = json!({"url": "https://example.org/a-edited/", "title": "أ محدّث", "guid": "g-1"});
        assert_eq!(t.admin_post("/api/articles", g).await.status(), 200);
        assert_eq!(t.app.store.article_count().await.unwrap(), 2);

        let sched = t.app.settings.schedule(None).unwrap();
        let d = t.app.preview(sched).await.unwrap().unwrap();
        assert!(
            !d.html.contains("<script")
                && !d.html.contains("onclick")
                && !d.html.contains("<iframe")
        );
        assert!(d.html.contains("#مصطفى_الكاظمي") && d.html.contains("#سياسة"));
        assert!(d.html.contains("<span dir=\"ltr\">S-400</span>"));
        assert!(!d.html.contains("<b>عنوان</b>"), "titles are plain text");
        assert!(
            !d.html.contains("NASHRAxSLOT") && !d.text.contains("NASHRAxSLOT"),
            "a preview has no placeholders"
        );

        for bad in [
            json!({"url": "javascript:alert(1)", "title": "x"}),
            json!({"url": "https://example.org/y", "title": ""}),
            json!({"title": "no url"}),
        ] {
            let r = t.admin_post("/api/articles", bad.clone()).await;
            assert_eq!(r.status(), 422, "{bad}");
            let v: Value = r.json().await.unwrap();
            assert!(v["error"].is_string() && v["message"].is_string());
        }
        assert_eq!(
            t.app.store.article_count().await.unwrap(),
            2,
            "bad input stored nothing"
        );
    }
);

both_engines!(
    a_feed_that_is_down_or_malformed_does_not_stop_the_others,
    |engine| async move {
        let feed = Arc::new(Mutex::new(rss(&[
            ("f1", "خبر أول", "نص"),
            ("f2", "خبر ثان", "نص"),
        ])));
        let addr = serve_feed(feed).await;
        let t = spawn_app_with(engine, &format!(
        "[[feeds]]\nurl = \"http://{addr}/down.xml\"\n[[feeds]]\nurl = \"http://{addr}/broken.xml\"\n[[feeds]]\nurl = \"http://{addr}/feed.xml\"\n[[feeds]]\nurl = \"http://127.0.0.1:1/none.xml\"\n"
    ))
    .await;
        let v: Value = t.admin_json("/api/ingest", json!({})).await;
        assert_eq!(v["feeds"], 4);
        assert_eq!(v["failed"], 3, "{v}");
        assert_eq!(t.app.store.article_count().await.unwrap(), 2);
        // Polling again finds nothing new: deduplicated by guid.
        let v: Value = t.admin_json("/api/ingest", json!({})).await;
        assert_eq!(v["new"], 0, "{v}");
    }
);

both_engines!(subscribers_are_listed_and_erased, |engine| async move {
    let t = spawn_app(engine).await;
    t.subscribe_and_confirm("one@example.com").await;
    t.post_json("/subscribe", json!({"email": "two@example.com"}))
        .await;
    let all = t.readers("").await;
    assert_eq!(all.total, 2);
    assert_eq!(t.readers("status=pending").await.total, 1);
    assert_eq!(
        t.admin_status(reqwest::Method::GET, "/api/subscribers?status=nonsense")
            .await,
        422
    );
    // Issue 6, item 14: a bad page number gets this API's JSON error, not a plain-text 400.
    for bad in ["abc", "0", "-1", "99999999999999999999"] {
        let r = t
            .http
            .get(t.url(&format!("/api/subscribers?page={bad}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "page={bad}");
        let v: Value = r.json().await.expect("a JSON body");
        assert_eq!(v["error"], "invalid_page", "{v}");
    }

    assert_eq!(
        t.admin_status(reqwest::Method::DELETE, "/api/subscribers/ONE@example.com")
            .await,
        200
    );
    assert_eq!(
        t.admin_status(reqwest::Method::DELETE, "/api/subscribers/one@example.com")
            .await,
        404
    );
    // Raw on purpose: no trace of the erased reader anywhere in the answer.
    let left: Value = t.admin_get("/api/subscribers").await;
    assert_eq!(left["total"], 1);
    assert!(!left.to_string().contains("one@example.com"));
});

both_engines!(health_and_metrics_answer, |engine| async move {
    let t = spawn_app(engine).await;
    let r = t.http.get(t.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let m = t.get_text("/metrics").await;
    for name in [
        "nashra_messages_sent_total",
        "nashra_messages_failed_total{reason=\"permanent\"}",
        "nashra_queue_depth",
        "nashra_smtp_latency_seconds_bucket",
    ] {
        assert!(m.contains(name), "{name} missing:\n{m}");
    }
});

both_engines!(
    metrics_answers_only_its_bearer_token_when_one_is_set,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[server]\nmetrics_token = \"scrape-token-0123456789\"\n",
        )
        .await;
        let metrics = |auth: Option<String>| {
            let mut r = t.http.get(t.url("/metrics"));
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            async move {
                let r = r.send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        for (what, auth) in [
            ("no token", None),
            (
                "a wrong token",
                Some("Bearer scrape-token-012345678".to_owned()),
            ),
            ("the admin token", Some(format!("Bearer {ADMIN}"))),
            ("not a bearer", Some("scrape-token-0123456789".to_owned())),
        ] {
            let (status, body) = metrics(auth).await;
            assert_eq!(status, 401, "{what}");
            assert!(!body.contains("nashra_"), "{what}: {body}");
        }
        let (status, body) = metrics(Some("Bearer scrape-token-0123456789".to_owned())).await;
        assert_eq!(status, 200);
        assert!(body.contains("nashra_messages_sent_total"), "{body}");
        // /health stays open for load balancers.
        assert_eq!(
            t.http.get(t.url("/health")).send().await.unwrap().status(),
            200
        );
    }
);

both_engines!(
    metrics_reads_the_store_at_most_once_a_second,
    |engine| async move {
        let t = spawn_app(engine).await;
        let confirmed = |m: String| -> i64 {
            m.lines()
                .find_map(|l| l.strip_prefix("nashra_subscribers_confirmed "))
                .unwrap_or_else(|| panic!("no gauge in {m}"))
                .parse()
                .unwrap()
        };
        let before = confirmed(t.get_text("/metrics").await);
        let reader = nashra::domain::SubscriberEmail::parse("new@example.com").unwrap();
        let name = nashra::domain::SubscriberName::parse("").unwrap();
        t.app
            .store
            .import(&[(reader, name)], true, "test")
            .await
            .unwrap();
        // A flood of scrapes within the second gets the count already read.
        for _ in 0..20 {
            assert_eq!(confirmed(t.get_text("/metrics").await), before);
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_eq!(confirmed(t.get_text("/metrics").await), before + 1);
    }
);

both_engines!(
    a_search_pages_through_every_match_newest_first,
    |engine| async move {
        // Issue 15, item 18: a page the newest readers fill and one that needs every match agree.
        let t = spawn_app(engine).await;
        let rows: Vec<_> = (0..130)
            .map(|i| {
                let email = if i % 10 == 3 {
                    format!("other{i}@example.com")
                } else {
                    format!("w{i}@window.example")
                };
                (
                    nashra::domain::SubscriberEmail::parse(&email).unwrap(),
                    nashra::domain::SubscriberName::default(),
                )
            })
            .collect();
        t.app.store.import(&rows, true, "test").await.unwrap();
        let mut seen: Vec<i64> = Vec::new();
        for page in [1, 2] {
            let v = t.readers(&format!("q=window&page={page}")).await;
            assert_eq!(v.total, 117, "{v:?}");
            for r in v.subscribers {
                assert!(r.email.ends_with("@window.example"));
                seen.push(r.id);
            }
        }
        assert_eq!(seen.len(), 117);
        let mut sorted = seen.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(seen, sorted, "newest first, each once, across both pages");
    }
);
