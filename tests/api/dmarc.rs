//! DMARC aggregate reports, as Google, Outlook.com and Yahoo send them (zip and gzip
//! attachments, with and without a namespace), read from a real Dovecot over IMAP: the
//! bounce mailbox and `bounces.dmarc_folder`, with a malformed report and a zip bomb among
//! them → the pass rates on `GET /api/reputation`, the console's «السمعة» page and
//! `/metrics`; a second pass, and the same reports mailed again, change nothing.

use std::io::Write;

use base64::Engine as _;
use chrono::{Days, Utc};
use nashra::{
    bounces::{MailOutcome, dmarc::DmarcOutcome, feedback_from_mail},
    store::Role,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{dovecot::Dovecot, *};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dmarc");

/// A report fixture for the UTC day `days_ago` days back.
fn report_xml(fixture: &str, report_id: &str, days_ago: u64) -> Vec<u8> {
    let day = Utc::now().date_naive() - Days::new(days_ago);
    let begin = day.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    std::fs::read_to_string(format!("{FIXTURES}/{fixture}"))
        .unwrap()
        .replace("{REPORT_ID}", report_id)
        .replace("{BEGIN}", &begin.to_string())
        .replace("{END}", &(begin + 86_399).to_string())
        .into_bytes()
}

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(content).unwrap();
    enc.finish().unwrap()
}

/// A one-entry zip as Google makes them: a local header, the deflated entry, the central
/// directory and its end record.
fn zip(name: &str, content: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(content).unwrap();
    let packed = enc.finish().unwrap();
    let mut crc = flate2::Crc::new();
    crc.update(content);
    let (crc, size, packed_size) = (crc.sum(), content.len() as u32, packed.len() as u32);
    let le16 = |v: u16| v.to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    let mut z = Vec::new();
    z.extend_from_slice(&le32(0x0403_4b50));
    for v in [20, 0, 8, 0, 0x21] {
        z.extend_from_slice(&le16(v));
    }
    for v in [crc, packed_size, size] {
        z.extend_from_slice(&le32(v));
    }
    z.extend_from_slice(&le16(name.len() as u16));
    z.extend_from_slice(&le16(0));
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(&packed);
    let central_at = z.len() as u32;
    z.extend_from_slice(&le32(0x0201_4b50));
    for v in [20, 20, 0, 8, 0, 0x21] {
        z.extend_from_slice(&le16(v));
    }
    for v in [crc, packed_size, size] {
        z.extend_from_slice(&le32(v));
    }
    for v in [name.len() as u16, 0, 0, 0, 0] {
        z.extend_from_slice(&le16(v));
    }
    z.extend_from_slice(&le32(0));
    z.extend_from_slice(&le32(0));
    z.extend_from_slice(name.as_bytes());
    let central_len = z.len() as u32 - central_at;
    z.extend_from_slice(&le32(0x0605_4b50));
    for v in [0, 0, 1, 1] {
        z.extend_from_slice(&le16(v));
    }
    z.extend_from_slice(&le32(central_len));
    z.extend_from_slice(&le32(central_at));
    z.extend_from_slice(&le16(0));
    z
}

/// A report mail: the subject RFC 7489 asks for, a short text, and the report attached.
fn report_mail(
    from: &str,
    submitter: &str,
    id: &str,
    file: &str,
    mime: &str,
    body: &[u8],
) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "From: {from}\r\n\
         To: dmarc@example.org\r\n\
         Subject: Report Domain: example.org Submitter: {submitter} Report-ID: <{id}>\r\n\
         Message-ID: <{id}@{submitter}>\r\n\
         Date: Sun, 6 Dec 2026 03:12:44 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"=-report-=\"\r\n\r\n\
         --=-report-=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         This is a DMARC aggregate report for example.org from {submitter}.\r\n\
         --=-report-=\r\nContent-Type: {mime}; name=\"{file}\"\r\n\
         Content-Disposition: attachment; filename=\"{file}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--=-report-=--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

pub(crate) fn google(id: &str, days_ago: u64) -> Vec<u8> {
    report_mail(
        "noreply-dmarc-support@google.com",
        "google.com",
        id,
        &format!("google.com!example.org!{id}!0.zip"),
        "application/zip",
        &zip(
            &format!("google.com!example.org!{id}!0.xml"),
            &report_xml("google.xml", id, days_ago),
        ),
    )
}

pub(crate) fn microsoft() -> Vec<u8> {
    let id = "6f1e2a5b9c8d4e3f8a7b6c5d4e3f2a1b";
    report_mail(
        "DMARC Aggregate Report <dmarcreport@microsoft.com>",
        "enterprise.protection.outlook.com",
        id,
        "enterprise.protection.outlook.com!example.org!1!2.xml.gz",
        "application/gzip",
        &gzip(&report_xml("microsoft.xml", id, 2)),
    )
}

pub(crate) fn yahoo() -> Vec<u8> {
    let id = "1733356800.482913";
    report_mail(
        "Yahoo DMARC <dmarchelp@yahooinc.com>",
        "yahoo.com",
        id,
        "yahoo.com!example.org!1!2.xml.gz",
        "application/gzip",
        &gzip(&report_xml("yahoo.xml", id, 1)),
    )
}

/// A report whose XML stops in the middle of a record.
fn malformed() -> Vec<u8> {
    let xml = report_xml("yahoo.xml", "1733356800.999", 1);
    report_mail(
        "Yahoo DMARC <dmarchelp@yahooinc.com>",
        "yahoo.com",
        "1733356800.999",
        "yahoo.com!example.org!3!4.xml.gz",
        "application/gzip",
        &gzip(&xml[..xml.len() / 2]),
    )
}

/// A zip of 50 KB whose one entry expands to 50 MB of zeros.
fn zip_bomb() -> Vec<u8> {
    let bomb = zip("bomb.example!example.org!1!2.xml", &vec![0u8; 50 << 20]);
    assert!(bomb.len() < 200_000, "the bomb is {} bytes", bomb.len());
    report_mail(
        "reports@bomb.example",
        "bomb.example",
        "bomb-1",
        "bomb.example!example.org!1!2.zip",
        "application/zip",
        &bomb,
    )
}

fn day(days_ago: u64) -> String {
    (Utc::now().date_naive() - Days::new(days_ago))
        .format("%Y-%m-%d")
        .to_string()
}

/// What the three reports of the window add up to (an old report is outside it):
/// Google 100 messages (98 DMARC, 98 DKIM, 90 SPF), Outlook.com 50 (45, 45, 45), Yahoo 50
/// (40, 40, 40).
fn expected_reputation() -> Value {
    let rates = |messages: i64, passed: i64, dkim: i64, spf: i64| {
        let r = |n: i64| n as f64 / messages as f64;
        json!({
            "messages": messages, "passed": passed, "dkim_aligned": dkim, "spf_aligned": spf,
            "pass_rate": r(passed), "dkim_rate": r(dkim), "spf_rate": r(spf),
        })
    };
    let with_key = |key: String, mut v: Value| {
        v["key"] = json!(key);
        v
    };
    json!({
        "days": 30,
        "since": day(29),
        "reports": 3,
        "total": rates(200, 183, 183, 175),
        "by_day": [
            with_key(day(2), rates(150, 143, 143, 135)),
            with_key(day(1), rates(50, 40, 40, 40)),
        ],
        "by_org": [
            with_key("google.com".into(), rates(100, 98, 98, 90)),
            with_key("Enterprise Outlook".into(), rates(50, 45, 45, 45)),
            with_key("Yahoo".into(), rates(50, 40, 40, 40)),
        ],
        "failing": [
            {"source_ip": "192.0.2.99", "messages": 10, "none": 0, "quarantine": 0, "reject": 10, "orgs": 1},
            {"source_ip": "198.51.100.7", "messages": 7, "none": 2, "quarantine": 5, "reject": 0, "orgs": 2},
        ],
    })
}

/// The app's own reader takes its turn as it starts (then not for an hour): the test's passes
/// must not race it. Takes the turn first, or waits until that first pass has logged out.
async fn reader_is_done(t: &TestApp, dovecot: &Dovecot) {
    let hour = std::time::Duration::from_secs(3600);
    let now = nashra::store::now_ms();
    if t.app
        .store
        .take_feed_turn("imap:bounces", hour, now)
        .await
        .unwrap()
    {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dovecot.log().contains("Logged out") {
        assert!(std::time::Instant::now() < deadline, "{}", dovecot.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn metrics(t: &TestApp) -> String {
    t.get_text("/metrics").await
}

both_engines!(
    reports_from_the_mailbox_give_the_pass_rates_once,
    |engine| async move {
        let dovecot = Dovecot::start().await;
        let t = spawn_app_with(
            engine,
            &format!(
                "[bounces]\nimap_url = \"{}\"\nca_file = \"{}\"\npoll_every = \"1h\"\ndmarc_folder = \"DMARC\"\n",
                dovecot.url(),
                dovecot.ca_file.display()
            ),
        )
        .await;
        reader_is_done(&t, &dovecot).await;
        let empty: Value = t.admin_get("/api/reputation").await;
        assert_eq!(empty["reports"], 0, "{empty}");
        assert_eq!(empty["total"]["pass_rate"], Value::Null, "{empty}");

        // Google's (zip) in the bounce mailbox, with last month's and a malformed one;
        // Outlook.com's and Yahoo's (gzip) and a zip bomb filed in the DMARC folder.
        dovecot.deliver(&google("10572418493827163540", 2));
        dovecot.deliver(&google("9385720193847561234", 40));
        dovecot.deliver(&malformed());
        dovecot.deliver_to("DMARC", &microsoft());
        dovecot.deliver_to("DMARC", &yahoo());
        dovecot.deliver_to("DMARC", &zip_bomb());
        let pass = nashra::bounces::imap::poll_once(&t.app).await.unwrap();
        assert_eq!(
            (pass.read, pass.dmarc, pass.dmarc_refused, pass.set_aside),
            (6, 4, 2, 0),
            "{pass:?}"
        );
        assert!(dovecot.seen("INBOX").is_empty(), "the inbox is read");
        assert!(dovecot.seen("DMARC").is_empty(), "the DMARC folder is read");
        let done = dovecot.seen("Processed");
        assert_eq!(done.len(), 6, "the refused ones too: never read again");
        assert!(done.iter().all(|s| *s));

        let rep: Value = t.admin_get("/api/reputation").await;
        assert_eq!(rep, expected_reputation());
        let m = metrics(&t).await;
        for line in [
            "nashra_dmarc_messages_30d 200",
            "nashra_dmarc_pass_messages_30d 183",
            "nashra_dmarc_spf_aligned_messages_30d 175",
            "nashra_dmarc_pass_ratio_30d 0.915",
            "nashra_dmarc_spf_aligned_ratio_30d 0.875",
            "nashra_dmarc_reports_total{outcome=\"stored\"} 4",
            "nashra_dmarc_reports_total{outcome=\"refused\"} 2",
        ] {
            assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
        }

        // The console's page says the same, in Arabic, right to left, linked from the nav.
        add_account(&t, "viewer@example.org", Role::Viewer).await;
        let s = sign_in(&t, "viewer@example.org").await;
        let (status, page) = s.get("/admin/reputation").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#"<html lang="ar" dir="rtl">"#));
        assert!(page.contains(r#"<a href="/admin/reputation" aria-current="page">السمعة</a>"#));
        let between = |from: &str, to: &str| {
            let a = page
                .find(from)
                .unwrap_or_else(|| panic!("{from} in {page}"));
            let b = a + page[a..].find(to).unwrap();
            page[a..b].to_owned()
        };
        let rates = between(r#"id="rates""#, "</section>");
        for want in ["91.5%", "87.5%", ">200<"] {
            assert!(rates.contains(want), "{want} in {rates}");
        }
        let orgs = between(r#"id="by-org""#, "</section>");
        let (g, o, y) = (
            orgs.find("google.com").unwrap(),
            orgs.find("Enterprise Outlook").unwrap(),
            orgs.find("Yahoo").unwrap(),
        );
        assert!(g < o && o < y, "most messages first: {orgs}");
        assert!(orgs.contains("98.0%") && orgs.contains("80.0%"), "{orgs}");
        let failing = between(r#"id="failing""#, "</section>");
        let (a, b) = (
            failing.find("192.0.2.99").unwrap(),
            failing.find("198.51.100.7").unwrap(),
        );
        assert!(a < b, "{failing}");
        assert!(
            !failing.contains("203.0.113.10"),
            "a passing source is not failing"
        );
        let days = between(r#"id="by-day""#, "</section>");
        assert_eq!(
            days.matches("<tr>").count(),
            3,
            "a header and two days: {days}"
        );

        // A second pass finds nothing; the same reports mailed again change nothing.
        let again = nashra::bounces::imap::poll_once(&t.app).await.unwrap();
        assert_eq!(again.read, 0, "{again:?}");
        dovecot.deliver(&google("10572418493827163540", 2));
        dovecot.deliver_to("DMARC", &yahoo());
        let again = nashra::bounces::imap::poll_once(&t.app).await.unwrap();
        assert_eq!((again.read, again.dmarc), (2, 0), "{again:?}");
        let after: Value = t.admin_get("/api/reputation").await;
        assert_eq!(after, expected_reputation());
        assert!(
            metrics(&t)
                .await
                .contains("nashra_dmarc_reports_total{outcome=\"duplicate\"} 2")
        );
    }
);

both_engines!(
    a_report_saved_as_a_file_is_read_as_from_the_mailbox,
    |engine| async move {
        // What `nashra bounces ingest FILE.eml` does with each file.
        let t = spawn_app(engine).await;
        let got = feedback_from_mail(&t.app, &yahoo(), "file").await.unwrap();
        assert_eq!(got, MailOutcome::Dmarc(DmarcOutcome::Stored(2)));
        let got = feedback_from_mail(&t.app, &yahoo(), "file").await.unwrap();
        assert_eq!(got, MailOutcome::Dmarc(DmarcOutcome::Duplicate));
        let got = feedback_from_mail(&t.app, &zip_bomb(), "file")
            .await
            .unwrap();
        assert!(
            matches!(got, MailOutcome::Dmarc(DmarcOutcome::Refused(_))),
            "{got:?}"
        );
        assert!(got.to_string().contains("expands past"), "{got}");
        let rep: Value = t.admin_get("/api/reputation").await;
        assert_eq!(rep["total"]["messages"], 50, "{rep}");
        assert_eq!(rep["total"]["pass_rate"], 0.8, "{rep}");
        // The API wants the admin's token like the rest.
        let r = t.http.get(t.url("/api/reputation")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
);
