//! Signing in to the console over HTTP: one answer for every failure, the lockout and the
//! per-client limit, a new session id at each sign-in, the idle and absolute limits of a
//! session, and its cookie's name under https.

use nashra::{app::Actor, store::Role};
use reqwest::{StatusCode, header};
use std::time::Duration;

use crate::helpers::*;

both_engines!(
    signing_in_answers_the_same_for_every_failure_and_locks_an_account,
    |engine| async move {
        let t = spawn_app_with(engine, "[security]\nlogin_attempts = 3\nlockout = \"1h\"").await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        let answer = |email: &'static str, password: &'static str| {
            let t = &t;
            async move {
                let r = post_from_page(
                    t,
                    "/admin/login",
                    None,
                    &form(&[("email", email), ("password", password)]),
                )
                .await;
                let status = r.status();
                let cookie = set_cookie(&r);
                let body = r.text().await.unwrap().replace(email, "EMAIL");
                (status, cookie, body)
            }
        };
        let unknown = answer("nobody@example.org", PASSWORD).await;
        let wrong = answer("desk@example.org", "not the password at all").await;
        assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            unknown, wrong,
            "an unknown account answers as a wrong password"
        );
        assert!(unknown.2.contains("غير صحيحة"), "{}", unknown.2);
        // Third failure in a row: locked. Then even the right password gets the same answer.
        answer("desk@example.org", "wrong again, twice").await;
        answer("desk@example.org", "and a third time").await;
        let locked = answer("desk@example.org", PASSWORD).await;
        assert_eq!(
            locked, wrong,
            "a locked account answers as a wrong password"
        );
        let log = audit_actions(&t).await;
        assert!(has_action(&log, "unknown", "login_failed"), "{log:?}");
        assert!(
            has_action(&log, "desk@example.org", "account_locked"),
            "{log:?}"
        );
        assert!(
            has_action(&log, "desk@example.org", "login_locked"),
            "{log:?}"
        );
        assert!(
            !log.iter().any(|(_, _, _, d)| d.contains("nobody@")),
            "an unknown address is not kept in clear: {log:?}"
        );
        // A new password (from the command line) lifts the lock.
        t.app
            .set_password(
                &Actor::cli(),
                "desk@example.org",
                None,
                "a brand new password",
            )
            .await
            .unwrap();
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[
                ("email", "DESK@example.org"),
                ("password", "a brand new password"),
            ]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/admin");
    }
);

both_engines!(
    a_client_that_signs_in_too_often_waits,
    |engine| async move {
        let t = spawn_app_with(engine, "[security]\nlogins_per_hour = 3").await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        for _ in 0..3 {
            let r = post_from_page(
                &t,
                "/admin/login",
                None,
                &form(&[("email", "desk@example.org"), ("password", "wrong")]),
            )
            .await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        // The fourth try waits, right password or not, whatever the account.
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        assert!(set_cookie(&r).is_none());
        assert!(r.text().await.unwrap().contains("محاولات دخول كثيرة"));
    }
);

both_engines!(
    the_session_id_changes_at_login_and_logout_ends_it_everywhere,
    |engine| async move {
        let t = spawn_app(engine).await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        // Session fixation: a cookie the attacker chose before the login is not the session.
        let planted = "attacker-chosen-value-0123456789abcdef";
        let r = post_from_page(
            &t,
            "/admin/login",
            Some(planted),
            &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
        )
        .await;
        let set = set_cookie(&r).expect("a new session cookie");
        // `Path=/`: the `__Host-` prefix (https) asks for it.
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/;", "Secure"] {
            assert!(set.contains(flag), "{flag} in {set}");
        }
        let first = Session {
            t: &t,
            cookie: cookie_value(&set),
        };
        assert_ne!(first.cookie, planted);
        let planted_session = Session {
            t: &t,
            cookie: planted.into(),
        };
        assert_eq!(planted_session.get("/admin").await.0, StatusCode::SEE_OTHER);
        assert_eq!(first.get("/admin").await.0, StatusCode::OK);
        // Signing in again from the same browser ends the session it had.
        let r = post_from_page(
            &t,
            "/admin/login",
            Some(&first.cookie),
            &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
        )
        .await;
        let second = Session {
            t: &t,
            cookie: cookie_value(&set_cookie(&r).unwrap()),
        };
        assert_ne!(second.cookie, first.cookie);
        assert_eq!(first.get("/admin").await.0, StatusCode::SEE_OTHER);
        // Another device; then "log out everywhere" from this one ends both.
        let other = sign_in(&t, "desk@example.org").await;
        assert_eq!(other.get("/admin").await.0, StatusCode::OK);
        assert_eq!(
            second.post_to("/admin/logout/all", &[]).await,
            "/admin/login"
        );
        assert_eq!(other.get("/admin").await.0, StatusCode::SEE_OTHER);
        assert_eq!(second.get("/admin").await.0, StatusCode::SEE_OTHER);
        // A plain logout ends that session only.
        let a = sign_in(&t, "desk@example.org").await;
        let b = sign_in(&t, "desk@example.org").await;
        a.post_to("/admin/logout", &[]).await;
        assert_eq!(a.get("/admin").await.0, StatusCode::SEE_OTHER);
        assert_eq!(b.get("/admin").await.0, StatusCode::OK);
        let log = audit_actions(&t).await;
        assert!(has_action(&log, "desk@example.org", "logout_all"));
        assert!(has_action(&log, "desk@example.org", "logout"));
    }
);

both_engines!(
    sessions_end_when_idle_and_after_their_limit,
    |engine| async move {
        let t = spawn_app_with(
            engine,
            "[security]\nsession_idle = \"1s\"\nsession_max = \"3s\"",
        )
        .await;
        add_account(&t, "desk@example.org", Role::Viewer).await;
        let idle = sign_in(&t, "desk@example.org").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            idle.get("/admin").await.0,
            StatusCode::SEE_OTHER,
            "idle too long"
        );
        // Used often, a session still ends at its absolute limit.
        let busy = sign_in(&t, "desk@example.org").await;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(2500) {
            assert_eq!(busy.get("/admin").await.0, StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        loop {
            let (status, _) = busy.get("/admin").await;
            if started.elapsed() > Duration::from_millis(3300) {
                assert_eq!(status, StatusCode::SEE_OTHER, "past the absolute limit");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
);

both_engines!(
    the_session_cookie_is_host_prefixed_under_https,
    |engine| async move {
        let t = spawn_app(engine).await;
        add_account(&t, "editor@example.org", Role::Editor).await;
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[("email", "editor@example.org"), ("password", PASSWORD)]),
        )
        .await;
        let cookie = set_cookie(&r).expect("a session cookie");
        assert!(cookie.starts_with("__Host-nashra_session="), "{cookie}");
        let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
        for a in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
            assert!(attrs.contains(&a), "{a}: {cookie}");
        }
        assert!(!cookie.contains("Domain"), "{cookie}");
        let value = cookie_value(&cookie);
        let s = Session {
            t: &t,
            cookie: value.clone(),
        };
        assert_eq!(s.get("/admin").await.0, StatusCode::OK);
        // The unprefixed name opens nothing here (a sibling subdomain could set that one).
        let r = t
            .http
            .get(t.url("/admin"))
            .header(header::COOKIE, format!("nashra_session={value}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        // Over plain http (a developer's machine) the browser would refuse the prefix.
        let home = spawn_at_home(engine, "").await;
        add_account(&home, "editor@example.org", Role::Editor).await;
        let r = home
            .http
            .post(home.url("/admin/login"))
            .header("Sec-Fetch-Site", "same-origin")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("email", "editor@example.org"),
                ("password", PASSWORD),
            ]))
            .send()
            .await
            .unwrap();
        let plain = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("nashra_session="))
            .expect("the plain cookie")
            .to_owned();
        assert!(
            plain.contains("Path=/admin") && !plain.contains("Secure"),
            "{plain}"
        );
    }
);
