//! Sign-up, confirmation and unsubscribe links: every bad input gets a clear answer and
//! changes nothing.

use serde_json::{Value, json};

use crate::helpers::{smtp::TestSmtp, *};

const BAD: &[&str] = &[
    "",
    "not-an-address",
    "a@x.test\r\nBcc: b@y.test",
    "a@x.test\nBcc: b@y.test",
    "Reader <reader@example.com>",
    "\"Reader\" <reader@example.com>",
    "reader@[127.0.0.1]",
    "reader@localhost",
    "reader@example",
    "a@example.com, b@example.com",
];

both_engines!(
    bad_addresses_get_422_in_arabic_and_store_nothing,
    |engine| async move {
        let t = spawn_app(engine).await;
        let long = format!("{}@example.com", "a".repeat(300));
        for bad in BAD.iter().copied().chain([long.as_str()]) {
            let r = t.post_json("/subscribe", json!({"email": bad})).await;
            assert_eq!(r.status(), 422, "{bad:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "invalid_email", "{bad:?}");
            let msg = v["message"].as_str().unwrap();
            assert!(
                msg.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
                "Arabic message for {bad:?}: {msg}"
            );

            let form = format!("email={}", urlencode(bad));
            let r = t.post_form("/subscribe", &form).await;
            assert_eq!(r.status(), 422, "form {bad:?}");
            let page = r.text().await.unwrap();
            assert!(
                page.contains("role=\"alert\"") && page.contains("dir=\"rtl\""),
                "{page}"
            );
            assert!(!page.contains("Bcc: b@y.test\r\n"));
        }
        // Malformed bodies too.
        let r = t
            .http
            .post(t.url("/subscribe"))
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let subs = t.readers("").await;
        assert_eq!(subs.total, 0, "nothing stored: {subs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(t.smtp.count(), 0, "no mail sent for bad input");
    }
);

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

both_engines!(
    the_answer_never_reveals_whether_an_address_is_known,
    |engine| async move {
        let t = spawn_app(engine).await;
        let fresh = t
            .post_json("/subscribe", json!({"email": "new@example.com"}))
            .await;
        assert_eq!(fresh.status(), 200);
        let fresh = fresh.text().await.unwrap();
        t.wait_for_mail_to("new@example.com", 1).await;
        let pending = t
            .post_json("/subscribe", json!({"email": "NEW@example.com"}))
            .await
            .text()
            .await
            .unwrap();
        t.subscribe_and_confirm("known@example.com").await;
        let confirmed = t
            .post_json("/subscribe", json!({"email": "known@example.com"}))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(fresh, pending);
        assert_eq!(fresh, confirmed);
        // Re-submitting a pending address does not flood its inbox with confirmations.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(t.smtp.messages_to("new@example.com").len(), 1);
        // One row per address whatever the case.
        let subs = t.readers("q=new@").await;
        assert_eq!(subs.total, 1);
        // The stored consent says where it came from.
        assert_eq!(subs.subscribers[0].source, "page");
        assert_eq!(subs.subscribers[0].status, "pending");
    }
);

both_engines!(
    signup_pages_are_rtl_arabic_with_the_prompt,
    |engine| async move {
        let t = spawn_app(engine).await;
        for path in ["/subscribe", "/subscribe/embed"] {
            let r = t.http.get(t.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let html = r.text().await.unwrap();
            assert!(html.contains("dir=\"rtl\""), "{path}");
            assert!(
                html.contains("انضم إلى قائمة من يقدّرون محتوى الحل\u{a0}نت"),
                "{path}"
            );
            assert!(html.contains("اشترك</button>"), "{path}");
            assert!(html.contains("type=\"email\""), "{path}");
        }
        let embed = t
            .http
            .get(t.url("/subscribe/embed"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            embed.contains("action=\"https://news.example.org/subscribe\""),
            "{embed}"
        );
        assert!(!embed.contains("<html"), "a fragment, not a page");
    }
);

both_engines!(forged_or_changed_tokens_do_nothing, |engine| async move {
    let t = spawn_app(engine).await;
    t.subscribe_and_confirm("reader@example.com").await;
    t.add_article("https://example.org/x/", "خبر", "نص").await;
    let id = t.send_now().await;
    t.wait_send(id).await;
    let digest = t.wait_for_mail_to("reader@example.com", 2).await;
    let unsub = t.local(&unsubscribe_link(&digest));
    let token = unsub.rsplit('/').next().unwrap().to_owned();
    let (payload, mac) = token.split_once('.').unwrap();
    let mut bad_mac = mac.to_owned().into_bytes();
    bad_mac[0] = if bad_mac[0] == b'A' { b'B' } else { b'A' };
    let forged_other = format!("{}.{mac}", base64_url("u:2:0"));
    for bad in [
        format!("{payload}.{}", String::from_utf8(bad_mac).unwrap()),
        forged_other,
        "garbage".into(),
        payload.to_string(),
        "a.b".into(),
    ] {
        let r = t
            .http
            .post(t.url(&format!("/unsubscribe/{bad}")))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let r = t
            .http
            .get(t.url(&format!("/confirm/{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "confirm {bad}");
        assert!(r.text().await.unwrap().contains("غير صالح"));
    }
    // An unsubscribe token is not a confirm token.
    let r = t
        .http
        .get(t.url(&format!("/confirm/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let subs = t.readers("status=confirmed").await;
    assert_eq!(subs.total, 1, "still subscribed");
});

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

both_engines!(
    a_confirm_link_from_before_leaving_does_not_resubscribe,
    |engine| async move {
        let t = spawn_app(engine).await;
        t.post_json("/subscribe", json!({"email": "r@example.com"}))
            .await;
        let first = confirm_link(&t.wait_for_mail_to("r@example.com", 1).await);
        t.confirm(&first).await;
        // Leaves.
        t.add_article("https://example.org/x/", "خبر", "نص").await;
        let id = t.send_now().await;
        t.wait_send(id).await;
        let unsub = unsubscribe_link(&t.wait_for_mail_to("r@example.com", 2).await);
        assert_eq!(
            t.http.post(t.local(&unsub)).send().await.unwrap().status(),
            200
        );
        // The old confirm link must not bring them back: only a fresh opt-in does.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let r = t.http.get(t.local(&first)).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let r = t.http.post(t.local(&first)).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let subs = t.readers("status=unsubscribed").await;
        assert_eq!(subs.total, 1);
    }
);

both_engines!(a_stranger_cannot_rename_a_subscriber, |engine| async move {
    let t = spawn_app(engine).await;
    let r = t
        .post_json(
            "/subscribe",
            json!({"email": "sara@example.com", "name": "سارة"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let link = confirm_link(&t.wait_for_mail_to("sara@example.com", 1).await);
    t.confirm(&link).await;
    let r = t
        .post_json(
            "/subscribe",
            json!({"email": "SARA@example.com", "name": "زوروا موقعنا المزيّف"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let subs = t.readers("q=sara@").await;
    assert_eq!(subs.subscribers[0].name, "سارة");
});

both_engines!(
    one_client_cannot_flood_the_signup_form,
    |engine| async move {
        let t = spawn_app_with(engine, "[server]\nsignups_per_hour = 2\n").await;
        for i in 0..2 {
            let r = t
                .post_json("/subscribe", json!({"email": format!("a{i}@example.com")}))
                .await;
            assert_eq!(r.status(), 200);
        }
        let r = t
            .post_json("/subscribe", json!({"email": "a2@example.com"}))
            .await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "rate_limited");
        assert!(v["message"].as_str().unwrap().contains("يرجى المحاولة"));
        let r = t.post_form("/subscribe", "email=a3%40example.com").await;
        assert_eq!(r.status(), 429);
        assert!(r.text().await.unwrap().contains("role=\"alert\""));
        assert_eq!(
            t.readers("").await.total,
            2,
            "nothing stored past the limit"
        );
    }
);

/// Sign-up answers and confirmation mails for `n` requests made by `make(i)`.
async fn signups_through_proxy(
    t: &TestApp,
    n: usize,
    make: impl Fn(usize) -> (String, String),
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let (forwarded, email) = make(i);
        let r = t
            .http
            .post(t.url("/subscribe"))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    statuses
}

both_engines!(
    a_forged_forwarded_for_does_not_escape_the_limit,
    |engine| async move {
        // Issue 6, item 10: behind one proxy, the client is the right-most hop; whatever the
        // client wrote to its left changes nothing.
        let t = spawn_app_with(
        engine,
        "[server]\nsignups_per_hour = 3\nclient_ip_header = \"X-Forwarded-For\"\ntrusted_proxy_hops = 1\n",
    )
    .await;
        let statuses = signups_through_proxy(&t, 10, |i| {
            (
                format!("10.9.{i}.1, 198.51.100.7"),
                format!("a{i}@example.com"),
            )
        })
        .await;
        assert_eq!(&statuses[..3], &[200, 200, 200]);
        assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
        // Another real client (another right-most hop) is not affected.
        let other =
            signups_through_proxy(&t, 1, |_| ("198.51.100.8".into(), "b@example.com".into())).await;
        assert_eq!(other, vec![200]);
    }
);

both_engines!(
    a_client_reaching_the_port_directly_cannot_name_itself,
    |engine| async move {
        // Issue 15, item 7: the header is believed only from `server.trusted_proxies`. Here the
        // proxy is elsewhere (10.0.0.0/8) and the test connects from 127.0.0.1, as a client
        // that bypasses it: each forged address is still the one client it is.
        let t = spawn_app_with(
        engine,
        "[server]\nsignups_per_hour = 3\nclient_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
    )
    .await;
        let statuses = signups_through_proxy(&t, 6, |i| {
            (format!("198.51.100.{i}"), format!("d{i}@example.com"))
        })
        .await;
        assert_eq!(&statuses[..3], &[200, 200, 200]);
        assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    }
);

both_engines!(
    one_inbox_gets_one_confirmation_however_it_is_spelled_and_whoever_asks,
    |engine| async move {
        // Issue 6, item 10: a victim's inbox is not flooded through plus-address and case
        // variants from many clients.
        let t = spawn_app_with(
            engine,
            "[server]\nsignups_per_hour = 1000\nclient_ip_header = \"X-Forwarded-For\"\n",
        )
        .await;
        let statuses = signups_through_proxy(&t, 30, |i| {
            let email = match i % 3 {
                0 => format!("victim+{i}@example.com"),
                1 => format!("VICTIM+x{i}@Example.com"),
                _ => "Victim@example.com".to_owned(),
            };
            (format!("203.0.113.{}", i + 1), email)
        })
        .await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "same answer: {statuses:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        let to_the_inbox = t
            .smtp
            .messages()
            .into_iter()
            .filter(|m| m.to[0].starts_with("victim"))
            .count();
        assert_eq!(to_the_inbox, 1, "one confirmation per inbox per window");
    }
);

both_engines!(
    opening_a_confirm_link_confirms_nothing_until_the_button,
    |engine| async move {
        // Issue 6, item 11: link scanners and prefetchers GET and HEAD what they find in mail.
        let t = spawn_app(engine).await;
        t.post_json("/subscribe", json!({"email": "scanned@example.com"}))
            .await;
        let link = t.local(&confirm_link(
            &t.wait_for_mail_to("scanned@example.com", 1).await,
        ));
        for _ in 0..3 {
            assert_eq!(t.http.get(&link).send().await.unwrap().status(), 200);
            assert_eq!(t.http.head(&link).send().await.unwrap().status(), 200);
        }
        let subs = t.readers("q=scanned@").await;
        assert_eq!(subs.subscribers[0].status, "pending", "{subs:?}");
        let r = t.http.post(&link).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let subs = t.readers("q=scanned@").await;
        assert_eq!(subs.subscribers[0].status, "confirmed", "{subs:?}");
    }
);

both_engines!(a_name_is_a_name, |engine| async move {
    // Issue 6, item 11 (and 14): the signer chooses the greeting's text, so it is kept to
    // letters, spaces and simple punctuation.
    let t = spawn_app(engine).await;
    for bad in [
        "\"><a href=https://evil.test>اضغط</a>",
        "زوروا evil.test",
        "سارة\u{202E}ةراس",
        "https://evil.test",
    ] {
        let r = t
            .post_json("/subscribe", json!({"email": "n@example.com", "name": bad}))
            .await;
        assert_eq!(r.status(), 422, "{bad:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_name");
    }
    assert_eq!(t.readers("").await.total, 0);
    // The form keeps what was typed, so the reader can correct it.
    let r = t
        .post_form(
            "/subscribe",
            "email=not-an-email&name=%D8%B3%D8%A7%D8%B1%D8%A9",
        )
        .await;
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("value=\"سارة\""), "{page}");
    assert!(page.contains("value=\"not-an-email\""), "{page}");
    let r = t
        .post_json(
            "/subscribe",
            json!({"email": "n@example.com", "name": "سارة  O'Neil"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let subs = t.readers("").await;
    assert_eq!(subs.subscribers[0].name, "سارة O'Neil");
});

both_engines!(
    internationalised_addresses_are_one_reader_and_travel_as_the_relay_needs,
    |engine| async move {
        // Issue 6, item 13.
        let t = spawn_app(engine).await;
        for spelling in [
            "user@مثال.إختبار",
            "user@xn--mgbh0fb.xn--kgbechtv",
            "User@XN--MGBH0FB.XN--KGBECHTV",
        ] {
            let r = t
                .post_json("/subscribe", json!({ "email": spelling }))
                .await;
            assert_eq!(r.status(), 200, "{spelling}");
        }
        let m = t.wait_for_mail_to("user@xn--mgbh0fb.xn--kgbechtv", 1).await;
        assert_eq!(
            m.to,
            vec!["user@xn--mgbh0fb.xn--kgbechtv"],
            "RCPT TO is the A-label"
        );
        assert!(
            m.mail_params.is_empty(),
            "no SMTPUTF8 needed: {}",
            m.mail_params
        );
        // NFC and NFD spellings of a non-ASCII local part: one reader, sent with SMTPUTF8.
        for spelling in ["s\u{e9}bastien@example.com", "se\u{301}bastien@example.com"] {
            let r = t
                .post_json("/subscribe", json!({ "email": spelling }))
                .await;
            assert_eq!(r.status(), 200, "{spelling}");
        }
        let m = t.wait_for_mail_to("s\u{e9}bastien@example.com", 1).await;
        assert_eq!(m.mail_params, "SMTPUTF8");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(t.smtp.count(), 2, "one confirmation each");
        assert_eq!(t.readers("").await.total, 2);
    }
);

both_engines!(
    a_relay_without_smtputf8_means_no_unicode_local_parts,
    |engine| async move {
        let smtp = TestSmtp::start().await;
        smtp.set_smtputf8(false);
        let t = spawn_on(smtp, TestPlace::new(engine).await, "").await;
        // The relay is greeted once at start, in the background, to learn what it offers.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let r = t
            .post_json("/subscribe", json!({"email": "سارة@example.com"}))
            .await;
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("حروف غير لاتينية"),
            "{v}"
        );
        // An IDN domain is fine: it travels as its A-label.
        let r = t
            .post_json("/subscribe", json!({"email": "sara@مثال.إختبار"}))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(t.readers("").await.total, 1);
    }
);

both_engines!(
    the_embed_under_an_article_on_another_host_leads_back_to_it,
    |engine| async move {
        // Issue 15, item 12: a browser sends another host only the site's origin as Referer,
        // so the article comes from a field the site's template fills.
        let t = spawn_app(engine).await;
        let article = "https://example.org/2026/12/06/news/";
        let embed = t
            .get_text(&format!("/subscribe/embed?article={article}"))
            .await;
        assert!(
            embed.contains(&format!("name=\"article\" value=\"{article}\"")),
            "the fragment carries its article: {embed}"
        );
        // A page of another site is not an article of ours.
        let foreign = t
            .get_text("/subscribe/embed?article=https://evil.test/x/")
            .await;
        assert!(foreign.contains("name=\"article\" value=\"\""), "{foreign}");
        let r = t
            .http
            .post(t.url("/subscribe"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Referer", "https://example.org/")
            .body(format!(
                "email=embedded%40example.com&source=embed&article={}",
                article.replace(':', "%3A").replace('/', "%2F")
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(
            page.contains(&format!("href=\"{article}\">العودة إلى المقال</a>")),
            "{page}"
        );
        let subs = t.readers("q=embedded@").await;
        assert_eq!(subs.subscribers[0].source, format!("embed:{article}"));
        // The sign-up page linked from an article carries it into its form.
        let signup = t.get_text(&format!("/subscribe?article={article}")).await;
        assert!(
            signup.contains(&format!("name=\"article\" value=\"{article}\"")),
            "{signup}"
        );
    }
);
