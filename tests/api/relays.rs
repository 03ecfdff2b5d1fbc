//! Several relays (`[[relays]]`): two primaries weighted 3:1 and a fallback, each a real SMTP
//! server in the process. The split holds; a primary that answers 421 and then goes down
//! mid-send loses its share to the other and every reader still gets exactly one message; it
//! comes back and gets its share again; with both primaries down the fallback takes
//! everything, and the console, the API and `/metrics` say so. The ledger records which
//! relay took each message.

use std::{collections::HashMap, time::Duration};

use nashra::store::Role;
use serde_json::Value;

use crate::helpers::{
    smtp::{Fault, TestSmtp},
    *,
};

const READERS: usize = 400;

fn readers() -> Vec<String> {
    (0..READERS).map(|i| format!("r{i}@example.com")).collect()
}

/// Messages per recipient across the relays, minus what they had at `before`.
fn since(
    relays: &[&TestSmtp],
    before: &HashMap<String, usize>,
) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let mut now: HashMap<String, usize> = HashMap::new();
    for r in relays {
        for (to, n) in r.per_recipient() {
            *now.entry(to).or_default() += n;
        }
    }
    let delta = now
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    (now, delta)
}

async fn ledger_relays(t: &TestApp, id: i64) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    for name in ["alpha", "beta", "backup"] {
        let n = t
            .dir
            .scalar(&format!(
                "SELECT COUNT(*) FROM deliveries WHERE digest_id = {id} AND state = 'sent' AND relay = '{name}'"
            ))
            .await;
        out.insert(name.to_owned(), n);
    }
    out
}

async fn relay_status(t: &TestApp) -> HashMap<String, Value> {
    let v: Value = t.admin_get("/api/relays").await;
    v["relays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

both_engines!(
    multi_thread,
    weights_failover_and_the_fallback,
    |engine| async move {
        let alpha = TestSmtp::start().await;
        let beta = TestSmtp::start().await;
        let backup = TestSmtp::start().await;
        let extra = format!(
            r#"
[delivery]
max_per_second = 300
[[relays]]
name = "alpha"
host = "127.0.0.1"
port = {a}
weight = 3
[[relays]]
name = "beta"
host = "127.0.0.1"
port = {b}
weight = 1
[[relays]]
name = "backup"
host = "127.0.0.1"
port = {c}
role = "fallback"
"#,
            a = alpha.addr.port(),
            b = beta.addr.port(),
            c = backup.addr.port(),
        );
        let t = spawn_on(alpha, TestPlace::new(engine).await, &extra).await;
        t.import_confirmed(&readers()).await;
        let all = [&t.smtp, &beta, &backup];

        // 1. The split: 3:1 within 10 % (of the whole), nothing to the fallback.
        t.add_article("https://example.org/1/", "خبر أول", "نص")
            .await;
        let id = t.send_now().await;
        assert_eq!(t.wait_send(id).await.status, "done");
        let (seen, delta) = since(&all, &HashMap::new());
        assert_eq!(delta.len(), READERS);
        assert!(delta.values().all(|n| *n == 1), "one message each");
        let (a, b) = (t.smtp.count() as i64, beta.count() as i64);
        assert_eq!(a + b, READERS as i64);
        assert!(
            (b - 100).abs() <= 10,
            "beta's share of 400 at weight 1 of 4: {b}"
        );
        assert_eq!(
            backup.count(),
            0,
            "the fallback waits while a primary is healthy"
        );
        let ledger = ledger_relays(&t, id).await;
        assert_eq!(
            ledger["alpha"], a,
            "the ledger names the relay that took each"
        );
        assert_eq!(ledger["beta"], b);

        // 2. Mid-send beta answers 421 and hangs up, then goes down entirely: its share goes
        //    to alpha, and every reader still gets exactly one message.
        t.add_article("https://example.org/2/", "خبر ثان", "نص")
            .await;
        let id = t.send_now().await;
        let beta_before = beta.count();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while since(&all, &seen).1.len() < 100 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the send never started"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        beta.fault_all(Some(Fault::Code(421)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        beta.go_down();
        assert_eq!(t.wait_send(id).await.status, "done");
        let (seen, delta) = since(&all, &seen);
        assert_eq!(delta.len(), READERS, "every reader");
        assert!(
            delta.values().all(|n| *n == 1),
            "nobody twice: {:?}",
            delta.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
        );
        let beta_took = beta.count() - beta_before;
        assert!(
            beta_took < 60,
            "beta took only what it took before it failed: {beta_took}"
        );
        assert_eq!(backup.count(), 0, "a primary was healthy all along");
        let status = relay_status(&t).await;
        assert_eq!(status["beta"]["healthy"], false, "{status:?}");
        assert_eq!(status["alpha"]["healthy"], true);
        assert!(status["beta"]["deferred"].as_u64().unwrap() >= 3);
        add_account(&t, "editor@example.org", Role::Editor).await;
        let console = sign_in(&t, "editor@example.org").await;
        let (_, page) = console.get("/admin").await;
        assert!(page.contains("مرحّل متوقف مؤقتاً"), "{page}");
        assert!(page.contains("<span dir=\"ltr\">beta</span>"));

        // 3. Beta comes back: once its cool-off ends a message tries it, and it takes its
        //    share again.
        beta.fault_all(None);
        beta.come_back().await;
        // Its cool-off ends (it may have doubled if a retry probed it): then a message tries it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while relay_status(&t).await["beta"]["retry_in_s"].as_u64() != Some(0) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "beta never cooled off"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        t.add_article("https://example.org/3/", "خبر ثالث", "نص")
            .await;
        let id = t.send_now().await;
        let beta_before = beta.count();
        assert_eq!(t.wait_send(id).await.status, "done");
        let (seen, delta) = since(&all, &seen);
        assert_eq!(delta.len(), READERS);
        assert!(delta.values().all(|n| *n == 1));
        let b = (beta.count() - beta_before) as i64;
        assert!((b - 100).abs() <= 10, "beta's share again: {b}");
        assert_eq!(relay_status(&t).await["beta"]["healthy"], true);
        let (_, page) = console.get("/admin").await;
        assert!(!page.contains("relay-warning"), "healthy again: no warning");

        // 4. Both primaries down: the fallback takes every message, and the console says so.
        // A connection still open when a server goes down takes nothing more either.
        t.smtp.fault_all(Some(Fault::Drop));
        beta.fault_all(Some(Fault::Drop));
        t.smtp.go_down();
        beta.go_down();
        t.add_article("https://example.org/4/", "خبر رابع", "نص")
            .await;
        let id = t.send_now().await;
        let backup_before = backup.count();
        assert_eq!(t.wait_send(id).await.status, "done");
        let (_, delta) = since(&all, &seen);
        assert_eq!(delta.len(), READERS);
        assert!(delta.values().all(|n| *n == 1));
        assert_eq!(
            backup.count() - backup_before,
            READERS,
            "ledger: {:?}, alpha {} beta {}",
            ledger_relays(&t, id).await,
            t.smtp.count(),
            beta.count()
        );
        assert_eq!(ledger_relays(&t, id).await["backup"], READERS as i64);
        let (_, page) = console.get("/admin").await;
        assert!(
            page.contains("يُرسَل البريد الآن عبر المرحّل الاحتياطي"),
            "{page}"
        );
        let status = relay_status(&t).await;
        assert_eq!(status["alpha"]["healthy"], false);
        assert_eq!(status["backup"]["role"], "fallback");
        assert_eq!(status["backup"]["sent"], READERS as u64);
        let metrics = t.get_text("/metrics").await;
        assert!(
            metrics.contains(&format!(
                "nashra_relay_messages_total{{relay=\"backup\",result=\"sent\"}} {READERS}"
            )),
            "{metrics}"
        );
        assert!(metrics.contains("nashra_relay_healthy{relay=\"alpha\",role=\"primary\"} 0"));
        drop(console);
        t.stop().await;
    }
);
