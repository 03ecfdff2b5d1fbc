//! The second factor: signing in with a code, turning it on, changing it or turning it off
//! (each asks for the password or a code), a code used only once, the password forms' lockout,
//! and an owner resetting an account's lost second factor.

use nashra::store::Role;
use reqwest::StatusCode;

use crate::helpers::*;

both_engines!(two_factor_sign_in, |engine| async move {
    let t = spawn_app(engine).await;
    add_account(&t, "owner@example.org", Role::Owner).await;
    let s = sign_in(&t, "owner@example.org").await;
    let (_, page) = s.get("/admin/account").await;
    let secret = page
        .split("name=\"secret\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let now = || chrono::Utc::now().timestamp();
    let code = nashra::auth::totp::code_at(&secret, now()).unwrap();
    let r = s
        .post(
            "/admin/account/totp/on",
            &[("secret", &secret), ("code", "000000"), ("proof", PASSWORD)],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong code does not turn it on"
    );
    s.post_to(
        "/admin/account/totp/on",
        &[("secret", &secret), ("code", &code), ("proof", PASSWORD)],
    )
    .await;
    s.post_to("/admin/logout", &[]).await;
    // The password alone opens only the code step.
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "owner@example.org"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(location(&r), "/admin/login/code");
    let pending = cookie_value(&set_cookie(&r).unwrap());
    let half = Session {
        t: &t,
        cookie: pending.clone(),
    };
    let (status, _) = half.get("/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let r = post_from_page(
        &t,
        "/admin/login/code",
        Some(&pending),
        &form(&[("code", "123456")]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The next step's code (clocks drift, so it is taken): the one that turned the factor
    // on is used up.
    let code = nashra::auth::totp::code_at(&secret, now() + 30).unwrap();
    let r = post_from_page(
        &t,
        "/admin/login/code",
        Some(&pending),
        &form(&[("code", &code)]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let full = cookie_value(&set_cookie(&r).unwrap());
    assert_ne!(full, pending, "a new session id once the code is right");
    assert_eq!(half.get("/admin").await.0, StatusCode::SEE_OTHER);
    let done = Session {
        t: &t,
        cookie: full,
    };
    assert_eq!(done.get("/admin").await.0, StatusCode::OK);
    let log = audit_actions(&t).await;
    assert!(has_action(&log, "owner@example.org", "totp_on"));
    assert!(
        log.iter()
            .any(|e| e.1 == "login" && e.3 == "بالتحقق بخطوتين")
    );
});

/// The secret the account page offers.
fn offered_secret(page: &str) -> String {
    page.split("name=\"secret\" value=\"")
        .nth(1)
        .expect("a secret on offer")
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

both_engines!(
    changing_or_turning_off_the_second_factor_asks_for_the_password_or_code,
    |engine| async move {
        let t = spawn_app(engine).await;
        add_account(&t, "owner@example.org", Role::Owner).await;
        let s = sign_in(&t, "owner@example.org").await;
        let stored = || {
            t.dir
                .scalar("SELECT COUNT(*) FROM admins WHERE totp_secret IS NOT NULL")
        };
        let (_, page) = s.get("/admin/account").await;
        assert!(page.contains("name=\"proof\""), "{page}");
        let first = offered_secret(&page);
        let code = nashra::auth::totp::code_at(&first, unix_now()).unwrap();
        // The session alone, or with a wrong password: nothing changes.
        for proof in ["", "not the password at all"] {
            let r = s
                .post(
                    "/admin/account/totp/on",
                    &[("secret", &first), ("code", &code), ("proof", proof)],
                )
                .await;
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{proof:?}");
            assert!(r.text().await.unwrap().contains("لم نتحقق منك"));
        }
        assert_eq!(stored().await, 0);
        s.post_to(
            "/admin/account/totp/on",
            &[("secret", &first), ("code", &code), ("proof", PASSWORD)],
        )
        .await;
        assert_eq!(stored().await, 1);
        // Replacing it (a cookie thief's own authenticator) needs the proof too.
        let other = nashra::auth::totp::new_secret();
        let other_code = nashra::auth::totp::code_at(&other, unix_now()).unwrap();
        let r = s
            .post(
                "/admin/account/totp/on",
                &[("secret", &other), ("code", &other_code), ("proof", "")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let kept = t
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM admins WHERE totp_secret = '{first}'"
            ))
            .await;
        assert_eq!(kept, 1, "the owner's factor stays");
        // Off: not without the proof; with the password it goes.
        let r = s.post("/admin/account/totp/off", &[("proof", "")]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(stored().await, 1);
        s.post_to("/admin/account/totp/off", &[("proof", PASSWORD)])
            .await;
        assert_eq!(stored().await, 0);
        let log = audit_actions(&t).await;
        assert!(
            has_action(&log, "owner@example.org", "reauth_failed"),
            "{log:?}"
        );
        assert!(has_action(&log, "owner@example.org", "totp_off"), "{log:?}");
    }
);

both_engines!(
    a_code_once_used_is_refused_for_the_rest_of_its_window,
    |engine| async move {
        let t = spawn_app_with(engine, "[security]\nlogin_attempts = 10").await;
        add_account(&t, "owner@example.org", Role::Owner).await;
        let s = sign_in(&t, "owner@example.org").await;
        let (_, page) = s.get("/admin/account").await;
        let secret = offered_secret(&page);
        let now = unix_now();
        let used = nashra::auth::totp::code_at(&secret, now).unwrap();
        s.post_to(
            "/admin/account/totp/on",
            &[("secret", &secret), ("code", &used), ("proof", PASSWORD)],
        )
        .await;
        let code_step = |code: String| {
            let t = &t;
            async move {
                let r = post_from_page(
                    t,
                    "/admin/login",
                    None,
                    &form(&[("email", "owner@example.org"), ("password", PASSWORD)]),
                )
                .await;
                assert_eq!(location(&r), "/admin/login/code");
                let pending = cookie_value(&set_cookie(&r).unwrap());
                post_from_page(
                    t,
                    "/admin/login/code",
                    Some(&pending),
                    &form(&[("code", &code)]),
                )
                .await
                .status()
            }
        };
        // The code that turned the factor on, seen over a shoulder: refused.
        assert_eq!(code_step(used.clone()).await, StatusCode::UNAUTHORIZED);
        let next = nashra::auth::totp::code_at(&secret, now + 30).unwrap();
        assert_eq!(code_step(next.clone()).await, StatusCode::SEE_OTHER);
        // The same code again, within its window: refused.
        assert_eq!(code_step(next).await, StatusCode::UNAUTHORIZED);
    }
);

both_engines!(
    the_password_forms_check_locks_like_signing_in_and_is_audited,
    |engine| async move {
        let t = spawn_app_with(engine, "[security]\nlogin_attempts = 3\nlockout = \"1h\"").await;
        add_account(&t, "desk@example.org", Role::Editor).await;
        let s = sign_in(&t, "desk@example.org").await;
        for _ in 0..2 {
            let r = s
                .post(
                    "/admin/account/password",
                    &[
                        ("current", "a guess at the password"),
                        ("new", "a new long password"),
                    ],
                )
                .await;
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("كلمة المرور الحالية غير صحيحة")
            );
        }
        // The third wrong answer locks the account and ends its sessions, this one too.
        let r = s
            .post(
                "/admin/account/password",
                &[("current", "a third guess"), ("new", "a new long password")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("قُفل الحساب"));
        assert_eq!(s.get("/admin").await.0, StatusCode::SEE_OTHER);
        let r = post_from_page(
            &t,
            "/admin/login",
            None,
            &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "locked");
        let log = audit_actions(&t).await;
        let failed = log
            .iter()
            .filter(|e| e.0 == "desk@example.org" && e.1 == "reauth_failed")
            .count();
        assert_eq!(failed, 2, "{log:?}");
        assert!(has_action(&log, "desk@example.org", "account_locked"));
        assert_eq!(
            t.dir
                .scalar("SELECT COUNT(*) FROM admins WHERE password_hash LIKE '$argon2id$%' AND locked_until > 0")
                .await,
            1
        );
    }
);

both_engines!(an_owner_resets_a_lost_second_factor, |engine| async move {
    let t = spawn_app(engine).await;
    add_account(&t, "owner@example.org", Role::Owner).await;
    add_account(&t, "desk@example.org", Role::Editor).await;
    let secret = nashra::auth::totp::new_secret();
    t.dir
        .exec(&format!(
            "UPDATE admins SET totp_secret = '{secret}' WHERE email IN ('desk@example.org', 'owner@example.org')"
        ))
        .await;
    let desk = t
        .dir
        .scalar("SELECT id FROM admins WHERE email = 'desk@example.org'")
        .await;
    let owner_id = t
        .dir
        .scalar("SELECT id FROM admins WHERE email = 'owner@example.org'")
        .await;
    // The owner signs in with the factor.
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "owner@example.org"), ("password", PASSWORD)]),
    )
    .await;
    let pending = cookie_value(&set_cookie(&r).unwrap());
    let code = nashra::auth::totp::code_at(&secret, unix_now()).unwrap();
    let r = post_from_page(
        &t,
        "/admin/login/code",
        Some(&pending),
        &form(&[("code", &code)]),
    )
    .await;
    let owner = Session {
        t: &t,
        cookie: cookie_value(&set_cookie(&r).unwrap()),
    };
    let (_, page) = owner.get("/admin/accounts").await;
    assert!(
        page.contains(&format!("/admin/accounts/{desk}/totp-reset"))
            && !page.contains(&format!("/admin/accounts/{owner_id}/totp-reset")),
        "a button for others, not for oneself: {page}"
    );
    // Not one's own (that is «حسابي», with proof).
    let r = owner
        .post(&format!("/admin/accounts/{owner_id}/totp-reset"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let to = owner
        .post_to(&format!("/admin/accounts/{desk}/totp-reset"), &[])
        .await;
    assert_eq!(to, "/admin/accounts?done=totp_reset");
    assert_eq!(
        t.dir
            .scalar("SELECT COUNT(*) FROM admins WHERE totp_secret IS NULL")
            .await,
        1
    );
    // The desk signs in with the password alone now.
    let r = post_from_page(
        &t,
        "/admin/login",
        None,
        &form(&[("email", "desk@example.org"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(location(&r), "/admin");
    let log = audit_actions(&t).await;
    let reset = log.iter().find(|e| e.1 == "totp_reset").expect("audited");
    assert_eq!(
        (reset.0.as_str(), reset.2.clone()),
        ("owner@example.org", format!("account:{desk}"))
    );
    let (_, audit) = owner.get("/admin/audit").await;
    assert!(audit.contains("إعادة ضبط التحقق بخطوتين لحساب"), "{audit}");
    // An editor cannot.
    let d = Session {
        t: &t,
        cookie: cookie_value(&set_cookie(&r).unwrap()),
    };
    let r = d
        .post(&format!("/admin/accounts/{owner_id}/totp-reset"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
});
