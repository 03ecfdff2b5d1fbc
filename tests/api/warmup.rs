//! A new domain's warm-up (`[delivery.warmup]`): on day 1 each mailbox provider takes at most
//! `start` messages; the rest wait for the next day's allowance (the send's page and the API
//! say how many, per provider), or go through a fallback relay when there is one; a message
//! held past `max_wait` is given up. Days are moved by rewinding what the store remembers of
//! them, across restarts, as a night would. A newsroom's own domain whose MX is Google's
//! (Workspace) counts as Gmail, its MX read from a real DNS server (dnsmasq).

use std::collections::HashMap;

use nashra::store::Role;
use serde_json::Value;

use crate::helpers::{
    dns::{TestDns, Zone},
    smtp::TestSmtp,
    *,
};

/// The warm-up, and DNS from `dns`: `newsroom.example` is on Google Workspace.
async fn warmup_config() -> (TestDns, String) {
    let dns = TestDns::start(
        &Zone::new()
            .mx("newsroom.example", "aspmx.l.google.com", 1)
            .txt("example.com", "v=spf1 -all"),
    )
    .await;
    let toml = format!(
        r#"
[delivery.warmup]
start = 50
growth = 2.0
until = 100000
max_wait = "3d"
[dns]
nameservers = ["{}"]
"#,
        dns.addr
    );
    (dns, toml)
}

/// 120 readers at Gmail (20 of them at a newsroom's own domain hosted there), 40 at
/// Outlook.com, 40 with a domain of their own.
fn readers() -> Vec<String> {
    (0..100)
        .map(|i| format!("g{i}@gmail.com"))
        .chain((0..20).map(|i| format!("w{i}@newsroom.example")))
        .chain((0..40).map(|i| format!("m{i}@outlook.com")))
        .chain((0..40).map(|i| format!("o{i}@example.com")))
        .collect()
}

/// Messages per provider in `got` (by the readers' domains above).
fn by_domain(got: &HashMap<String, usize>) -> HashMap<&'static str, usize> {
    let mut out = HashMap::new();
    for (to, n) in got {
        let d = if to.ends_with("@newsroom.example") {
            "gmail.com"
        } else {
            ["gmail.com", "outlook.com", "example.com"]
                .into_iter()
                .find(|d| to.ends_with(d))
                .unwrap()
        };
        *out.entry(d).or_default() += n;
    }
    out
}

/// Waits until the send has sent `n` and says it holds the rest.
async fn wait_sent(t: &TestApp, id: i64, n: i64) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        if v["sent"].as_i64() == Some(n) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn held(v: &Value, provider: &str) -> (i64, i64) {
    v["warmup"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["provider"] == provider)
        .map_or((0, 0), |w| {
            (
                w["waiting"].as_i64().unwrap(),
                w["skipped"].as_i64().unwrap(),
            )
        })
}

/// The warm-up's days one day earlier, and rows held for Gmail due now: the next morning.
async fn next_day(place: &TestPlace) {
    let days: Vec<String> = place.strings("SELECT DISTINCT day FROM warmup_days").await;
    for d in days {
        let prev = chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .unwrap()
            .pred_opt()
            .unwrap();
        place
            .exec(&format!(
                "UPDATE warmup_days SET day = '{prev}' WHERE day = '{d}'"
            ))
            .await;
    }
    place
        .exec(&format!(
            "UPDATE deliveries SET next_attempt_at = {} WHERE state = 'pending' AND last_error = 'warmup:gmail'",
            nashra::store::now_ms()
        ))
        .await;
}

both_engines!(
    multi_thread,
    day_one_caps_each_provider_and_the_next_day_continues,
    |engine| async move {
        let (_dns, warmup) = warmup_config().await;
        let t = spawn_app_with(engine, &warmup).await;
        t.import_confirmed(&readers()).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;

        // Day 1: 50 at Gmail, every Outlook.com and own-domain reader (40 each, under 50).
        let v = wait_sent(&t, id, 130).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let got = by_domain(&t.smtp.per_recipient());
        assert_eq!(got["gmail.com"], 50, "{got:?}");
        assert_eq!(got["outlook.com"], 40);
        assert_eq!(got["example.com"], 40);
        assert_eq!(v["status"], "sending", "the rest wait for tomorrow");
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(held(&v, "gmail"), (70, 0), "{v}");
        assert_eq!(held(&v, "microsoft"), (0, 0));
        add_account(&t, "editor@example.org", Role::Editor).await;
        let console = sign_in(&t, "editor@example.org").await;
        let (_, page) = console.get(&format!("/admin/sends/{id}")).await;
        assert!(page.contains("أمسكه التسخين"), "{page}");
        assert!(
            page.contains("<td>جيميل</td><td>70</td><td>0</td>"),
            "{page}"
        );
        drop(console);

        // Day 2: the cap is 100, so the 70 who waited get theirs; nobody twice.
        let (smtp, place) = t.stop().await;
        next_day(&place).await;
        let t = spawn_on(smtp, place, &warmup).await;
        assert_eq!(t.wait_send(id).await.status, "done");
        let per = t.smtp.per_recipient();
        assert_eq!(per.len(), 200);
        assert!(per.values().all(|n| *n == 1), "each reader once");

        // A second send on day 2: Gmail has 30 left of 100. The 90 held past max_wait (its
        // start moved 5 days back, across a restart) are given up, and the send ends.
        t.add_article("https://example.org/2/", "خبر ثان", "نص")
            .await;
        let id = t.send_now().await;
        let v = wait_sent(&t, id, 30 + 80).await;
        assert_eq!(held(&v, "gmail").0, 90, "{v}");
        let (smtp, place) = t.stop().await;
        let five_days = 5 * 86_400_000;
        place
            .exec(&format!(
                "UPDATE digests SET created_at = created_at - {five_days}, started_at = started_at - {five_days} WHERE id = {id}"
            ))
            .await;
        place
            .exec(&format!(
                "UPDATE deliveries SET next_attempt_at = {} WHERE digest_id = {id} AND state = 'pending'",
                nashra::store::now_ms()
            ))
            .await;
        let t = spawn_on(smtp, place, &warmup).await;
        let r = t.wait_send(id).await;
        assert_eq!(r.status, "done");
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(held(&v, "gmail"), (0, 90), "{v}");
        assert_eq!(v["skipped"], 90, "{v}");
        t.stop().await;
    }
);

both_engines!(
    multi_thread,
    the_overflow_goes_through_the_fallback_relay,
    |engine| async move {
        let (_dns, warmup) = warmup_config().await;
        let main = TestSmtp::start().await;
        let backup = TestSmtp::start().await;
        let extra = format!(
            "{warmup}
[[relays]]
name = \"main\"
host = \"127.0.0.1\"
port = {main}
[[relays]]
name = \"backup\"
host = \"127.0.0.1\"
port = {backup}
role = \"fallback\"
",
            main = main.addr.port(),
            backup = backup.addr.port(),
        );
        let t = spawn_on(main, TestPlace::new(engine).await, &extra).await;
        t.import_confirmed(&readers()).await;
        t.add_article("https://example.org/1/", "خبر", "نص").await;
        let id = t.send_now().await;
        assert_eq!(t.wait_send(id).await.status, "done", "nothing waits");
        let main = by_domain(&t.smtp.per_recipient());
        assert_eq!(main["gmail.com"], 50, "{main:?}");
        assert_eq!(main["outlook.com"], 40);
        assert_eq!(main["example.com"], 40);
        let over = by_domain(&backup.per_recipient());
        assert_eq!(over.get("gmail.com"), Some(&70), "{over:?}");
        assert_eq!(over.len(), 1, "only Gmail's overflow: {over:?}");
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(v["warmup"], serde_json::json!([]), "{v}");
        assert_eq!(
            v["relays"],
            serde_json::json!([{"relay": "backup", "sent": 70}, {"relay": "main", "sent": 130}])
        );
        t.stop().await;
    }
);
