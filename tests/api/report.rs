//! A send's report by mailbox provider: readers at Gmail, Microsoft, Yahoo, iCloud, a domain
//! of their own and one the configuration counts as Gmail, in three editions; one message
//! fails, one bounces, one draws a complaint, one reader leaves, three click — and the API's
//! `providers`, the console's table «حسب مزوّد البريد» and the CSV say so. A reader who leaves
//! after the next send is that send's departure, not this one's.

use std::collections::BTreeMap;

use nashra::{
    bounces::{MailOutcome, feedback_from_mail},
    store::{FeedbackKind, Role},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    smtp::{Fault, Received},
    *,
};

const CONFIG: &str = r#"
[newsletter]
click_counts = true
[providers]
gmail = ["newsroom-mail.example"]
[bounces]
return_path = "bounces@example.org"
[[sections]]
slug = "politics"
name = "سياسة"
categories = ["سياسة"]
[[sections]]
slug = "culture"
name = "=ثقافة"
categories = ["ثقافة"]
"#;

const GMAIL: &str = "sara@gmail.com";
const OUTLOOK: &str = "omar@outlook.com";
const YAHOO: &str = "huda@yahoo.com";
const ICLOUD: &str = "ali@icloud.com";
const OWN: &str = "mona@example.org";
const MAPPED: &str = "desk@newsroom-mail.example";

/// (sections, provider) → [delivered, failed, bounced, complained, unsubscribed, clicked].
type Counts = BTreeMap<(String, String), [i64; 6]>;

const FIELDS: [&str; 6] = [
    "delivered",
    "failed",
    "bounced",
    "complained",
    "unsubscribed",
    "clicked",
];

fn counts(v: &Value) -> Counts {
    v["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|r| {
            let sections: Vec<&str> = r["sections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            let key = (
                sections.join(","),
                r["provider"].as_str().unwrap().to_owned(),
            );
            (key, FIELDS.map(|f| r[f].as_i64().unwrap()))
        })
        .collect()
}

fn expect(rows: &[(&str, &str, [i64; 6])]) -> Counts {
    rows.iter()
        .map(|(s, p, c)| ((s.to_string(), p.to_string()), *c))
        .collect()
}

/// The click links of a message's plain-text part.
fn click_links(m: &Received) -> Vec<String> {
    let text = parse(m).body_text(0).unwrap().to_string();
    text.lines()
        .filter(|l| l.contains("/r/"))
        .map(|l| l.trim().to_owned())
        .collect()
}

async fn sign_up_for(t: &TestApp, email: &str, section: Option<&str>) {
    let mut body = format!("email={}", email.replace('@', "%40"));
    if let Some(s) = section {
        body.push_str(&format!("&section={s}"));
    }
    assert_eq!(t.post_form("/subscribe", &body).await.status(), 200);
    let msg = t.wait_for_mail_to(email, 1).await;
    t.confirm(&confirm_link(&msg)).await;
}

async fn article_in(t: &TestApp, n: u32, section: &str) {
    let r = t
        .admin_post(
            "/api/articles",
            json!({"url": format!("https://example.org/{n}/"), "title": format!("خبر {n}"),
                   "summary": "نص", "section": section}),
        )
        .await;
    assert!(r.status().is_success(), "add article: {}", r.status());
}

async fn click(t: &TestApp, link: &str) {
    let r = t.http.get(t.local(link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{link}");
}

/// The mail client's one-click unsubscribe on message `m`.
async fn leave(t: &TestApp, m: &Received) {
    let r = t
        .http
        .post(t.local(&unsubscribe_link(m)))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

both_engines!(
    a_send_is_counted_per_edition_and_mailbox_provider,
    |engine| async move {
        let t = spawn_app_with(engine, CONFIG).await;
        for (reader, section) in [
            (GMAIL, None),
            (OUTLOOK, None),
            (YAHOO, Some("politics")),
            (ICLOUD, Some("politics")),
            (OWN, Some("culture")),
            (MAPPED, Some("culture")),
        ] {
            sign_up_for(&t, reader, section).await;
        }
        t.smtp.fault(OWN, Fault::Code(550), usize::MAX);
        article_in(&t, 1, "سياسة").await;
        article_in(&t, 2, "ثقافة").await;
        let id = t.send_now().await;
        t.wait_send(id).await;
        let mut mail = BTreeMap::new();
        for r in [GMAIL, OUTLOOK, YAHOO, ICLOUD, MAPPED] {
            mail.insert(r, t.wait_for_mail_to(r, 2).await);
        }

        // What comes back: a bounce, a complaint, a reader who leaves.
        for (fixture, reader, kind) in [
            ("gmail-hard.eml", OUTLOOK, FeedbackKind::Hard),
            ("yahoo-arf.eml", YAHOO, FeedbackKind::Complaint),
        ] {
            let raw = report_about(fixture, &mail[reader], reader);
            let out = feedback_from_mail(&t.app, &raw, "file").await.unwrap();
            assert!(
                matches!(out, MailOutcome::Recorded(k, _) if k == kind),
                "{out}"
            );
        }
        leave(&t, &mail[ICLOUD]).await;

        // Clicks: a scanner's in the first minute is not counted; a reader who clicks two
        // articles is one reader who clicked.
        click(&t, &click_links(&mail[GMAIL])[0]).await;
        assert!(
            counts(&t.admin_get(&format!("/api/sends/{id}")).await)
                .values()
                .all(|c| c[5] == 0)
        );
        t.dir
            .exec(&format!(
                "UPDATE deliveries SET sent_at = sent_at - 120000 WHERE digest_id = {id}"
            ))
            .await;
        let gmail_links = click_links(&mail[GMAIL]);
        assert_eq!(gmail_links.len(), 2, "the main edition has both articles");
        for link in gmail_links.iter().chain(gmail_links.iter()) {
            click(&t, link).await;
        }
        for r in [ICLOUD, MAPPED] {
            click(&t, &click_links(&mail[r])[0]).await;
        }

        let expected = expect(&[
            ("", "gmail", [1, 0, 0, 0, 0, 1]),
            ("", "microsoft", [1, 0, 1, 0, 0, 0]),
            ("culture", "gmail", [1, 0, 0, 0, 0, 1]),
            ("culture", "other", [0, 1, 0, 0, 0, 0]),
            ("politics", "yahoo", [1, 0, 0, 1, 0, 0]),
            ("politics", "icloud", [1, 0, 0, 0, 1, 1]),
        ]);
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(counts(&v), expected, "{v}");
        assert_eq!(
            t.send(id)
                .await
                .clicks
                .iter()
                .map(|c| c.clicks)
                .sum::<i64>(),
            4,
            "per article: Gmail's two, iCloud's and the mapped domain's one"
        );

        // The CSV: English header, one line per row, a formula-looking name neutralised.
        let r = t
            .http
            .get(t.url(&format!("/api/sends/{id}/report.csv")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = r.text().await.unwrap();
        let edition = |slug: &str| {
            v["providers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["sections"][0] == slug)
                .unwrap()["edition"]
                .as_i64()
                .unwrap()
        };
        let (politics, culture) = (edition("politics"), edition("culture"));
        let mut lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines.remove(0),
            "edition,sections,provider,delivered,failed,bounced,complained,unsubscribed,clicked"
        );
        let mut want = vec![
            "0,كل الأقسام,gmail,1,0,0,0,0,1".to_owned(),
            "0,كل الأقسام,microsoft,1,0,1,0,0,0".to_owned(),
            format!("{culture},'=ثقافة,gmail,1,0,0,0,0,1"),
            format!("{culture},'=ثقافة,other,0,1,0,0,0,0"),
            format!("{politics},سياسة,yahoo,1,0,0,1,0,0"),
            format!("{politics},سياسة,icloud,1,0,0,0,1,1"),
        ];
        want.sort_by_key(|l| l.split(',').next().unwrap().parse::<i64>().unwrap());
        assert_eq!(lines, want, "{csv}");
        let r = t
            .http
            .get(t.url("/api/sends/999/report.csv"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = t
            .http
            .get(t.url(&format!("/api/sends/{id}/report.csv")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

        // The console: the table with its totals, and the same CSV.
        add_account(&t, "desk@example.org", Role::Viewer).await;
        let s = sign_in(&t, "desk@example.org").await;
        let (_, page) = s.get(&format!("/admin/sends/{id}")).await;
        let table = page
            .split("حسب مزوّد البريد")
            .nth(1)
            .expect("a table by provider")
            .split("</section>")
            .next()
            .unwrap();
        for text in [
            "كل الأقسام",
            "سياسة",
            "=ثقافة",
            "جيميل",
            "مايكروسوفت",
            "ياهو",
            "آي كلاود",
            "غيرها",
            "كل النسخ",
            &format!("/admin/sends/{id}/report.csv"),
        ] {
            assert!(table.contains(text), "{text}: {table}");
        }
        let total = table.split("class=\"total\"").nth(1).expect("a total row");
        let cells: Vec<&str> = total
            .split("<td>")
            .skip(1)
            .map(|c| c.split("</td>").next().unwrap())
            .collect();
        assert_eq!(cells, ["5", "1", "1", "1", "1", "3"], "{total}");
        let (status, console_csv) = s.get(&format!("/admin/sends/{id}/report.csv")).await;
        assert_eq!(status, 200);
        assert_eq!(console_csv, csv);

        // The next send reaches Gmail's reader, who leaves then: that send's departure.
        article_in(&t, 3, "سياسة").await;
        let next = t.send_now().await;
        t.wait_send(next).await;
        let again = t.wait_for_mail_to(GMAIL, 3).await;
        leave(&t, &again).await;
        let later = counts(&t.admin_get(&format!("/api/sends/{next}")).await);
        assert_eq!(later[&(String::new(), "gmail".into())][4], 1, "{later:?}");
        let v: Value = t.admin_get(&format!("/api/sends/{id}")).await;
        assert_eq!(counts(&v), expected, "the first send's count stays: {v}");
    }
);
