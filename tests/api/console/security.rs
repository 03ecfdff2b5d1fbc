//! The console's defences as an attacker's page meets them: cross-site requests change
//! nothing, every response carries the security headers, requests are bounded and read
//! strictly, the sign-up form answers people and programs alike, and the CSV export is a POST
//! from our own pages.

use nashra::store::Role;
use reqwest::{StatusCode, header};
use std::time::Duration;

use crate::helpers::*;

both_engines!(cross_site_requests_change_nothing, |engine| async move {
    let t = spawn_app(engine).await;
    add_account(&t, "desk@example.org", Role::Editor).await;
    let s = sign_in(&t, "desk@example.org").await;
    let attempts: [&[(&str, &str)]; 4] = [
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Origin", "https://evil.example")],
        &[],
    ];
    for headers in attempts {
        let mut req = t
            .http
            .post(t.url("/admin/schedules/daily/pause"))
            .header(header::COOKIE, format!("{COOKIE}={}", s.cookie));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(r.text().await.unwrap().contains("طلب مرفوض"));
    }
    // Signing in is a state change too (login CSRF).
    let r = t
        .http
        .post(t.url("/admin/login"))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", "desk@example.org"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let paused = |t: &TestApp| {
        let store = t.app.store.clone();
        async move {
            store
                .schedule_states()
                .await
                .unwrap()
                .iter()
                .any(|s| s.name == "daily" && s.paused != 0)
        }
    };
    assert!(!paused(&t).await, "nothing changed");
    // The same request from our own page goes through.
    let mut req = t
        .http
        .post(t.url("/admin/schedules/daily/pause"))
        .header(header::COOKIE, format!("{COOKIE}={}", s.cookie));
    req = req.header("Sec-Fetch-Site", "same-origin");
    assert_eq!(req.send().await.unwrap().status(), StatusCode::SEE_OTHER);
    assert!(paused(&t).await);
});

both_engines!(
    every_response_carries_the_security_headers,
    |engine| async move {
        let t = spawn_app(engine).await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let mut paths: Vec<String> = [
            "/subscribe",
            "/confirm/not-a-token",
            "/unsubscribe/not-a-token",
            "/archive",
            "/health",
            "/metrics",
            "/api/sends/1",
            "/admin",
            "/admin/login",
            "/nothing-here",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        let (_, page) = s.get("/admin").await;
        let css = page
            .split("href=\"/admin/static/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        paths.push(format!("/admin/static/{css}"));
        for path in &paths {
            let r = t.http.get(t.url(path)).send().await.unwrap();
            let h = r.headers();
            let csp = h
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("'unsafe-eval'"),
                "{path}: {csp}"
            );
            let script_src = csp
                .split(';')
                .find(|d| d.trim().starts_with("script-src"))
                .unwrap();
            assert!(
                !script_src.contains("unsafe-inline"),
                "{path}: no inline script"
            );
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert_eq!(
                h.get("x-content-type-options").unwrap(),
                "nosniff",
                "{path}"
            );
            assert_eq!(h.get("referrer-policy").unwrap(), "same-origin", "{path}");
            assert!(
                h.contains_key("strict-transport-security"),
                "{path}: public_url is https"
            );
        }
        // The embeddable form is the one thing another site may frame.
        let r = t.http.get(t.url("/subscribe/embed")).send().await.unwrap();
        let csp = r
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors *"), "{csp}");
        assert_eq!(
            r.headers().get("x-content-type-options").unwrap(),
            "nosniff"
        );
        // The console's pages are not cached.
        let r = t
            .http
            .get(t.url("/admin"))
            .header(header::COOKIE, format!("{COOKIE}={}", s.cookie))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    }
);

both_engines!(
    the_sign_up_form_takes_people_and_answers_programs_the_same,
    |engine| async move {
        let t = spawn_app_with(engine, "[server]\nmin_fill_time = \"400ms\"").await;
        let page = t.get_text("/subscribe").await;
        let stamp = page
            .split("name=\"t\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            page.contains("name=\"website\""),
            "the honeypot is in the form"
        );
        let embed = t.get_text("/subscribe/embed").await;
        assert!(embed.contains("name=\"website\"") && embed.contains("name=\"t\""));
        let person = form(&[("email", "person@example.net"), ("t", &stamp)]);
        let answers = [
            // A program fills every field, the hidden one too.
            form(&[
                ("email", "bot1@example.net"),
                ("website", "https://spam.example"),
                ("t", &stamp),
            ]),
            // Too fast for a person.
            form(&[("email", "bot2@example.net"), ("t", &stamp)]),
            // A stamp we did not sign.
            form(&[
                ("email", "bot3@example.net"),
                ("t", "1.AAAAAAAAAAAAAAAAAAAAAA"),
            ]),
        ];
        let mut bodies = vec![];
        for body in &answers {
            let r = t.post_form("/subscribe", body).await;
            assert_eq!(r.status(), StatusCode::OK);
            bodies.push(r.text().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = t.post_form("/subscribe", &person).await;
        assert_eq!(r.status(), StatusCode::OK);
        let real = r.text().await.unwrap();
        for b in &bodies {
            assert_eq!(b, &real, "a program gets the answer a person gets");
        }
        t.wait_for_mail_to("person@example.net", 1).await;
        assert_eq!(
            t.dir.scalar("SELECT COUNT(*) FROM subscribers").await,
            1,
            "only the person"
        );
        assert_eq!(t.smtp.count(), 1, "no confirmation for the programs");
    }
);

both_engines!(
    console_requests_are_bounded_and_read_strictly,
    |engine| async move {
        let t = spawn_app(engine).await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let big = "x".repeat(100 * 1024);
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[("email", &big), ("password", "p")]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let r = s
            .post(
                "/admin/preview/test",
                &[("schedule", "daily"), ("to", &big)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Invalid UTF-8 in a form is refused, not guessed at.
        let r = post_from_page(
            &t,
            "/admin/sends",
            Some(&s.cookie),
            "schedule=%FF&confirm=yes",
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(t.dir.scalar("SELECT COUNT(*) FROM digests").await, 0);
        let r = post_from_page(&t, "/subscribe", None, "email=a%FF@example.net").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
);

both_engines!(
    the_csv_export_is_a_post_from_our_own_pages,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.subscribe_and_confirm("reader@example.net").await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let s = sign_in(&t, "editor@example.org").await;
        let exports = || t.app.store.audit_log(None, Some("export"), 100);
        // A link or an image on another site is a GET: it downloads nothing.
        let (status, body) = s.get("/admin/readers/export.csv").await;
        assert_ne!(status, StatusCode::OK);
        assert!(!body.contains("reader@example.net"), "{body}");
        // A cross-site form is refused like every console POST.
        for (k, v) in [
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", "https://evil.example"),
        ] {
            let r = t
                .http
                .post(t.url("/admin/readers/export.csv"))
                .header(header::COOKIE, format!("{COOKIE}={}", s.cookie))
                .header(k, v)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{k}: {v}");
            assert!(!r.text().await.unwrap().contains("reader@example.net"));
        }
        assert!(exports().await.unwrap().is_empty());
        // The readers page's button is a form that posts from our page.
        let (_, page) = s.get("/admin/readers").await;
        assert!(
            page.contains(r#"<form method="post" action="/admin/readers/export.csv">"#),
            "{page}"
        );
        let r = s.post("/admin/readers/export.csv", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert!(r.text().await.unwrap().contains("reader@example.net"));
        assert_eq!(exports().await.unwrap().len(), 1);
    }
);
