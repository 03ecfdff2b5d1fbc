//! Deliverability: DKIM checked by an independent verifier (dkimpy, through tools/check_eml.py),
//! per-message return paths, mailto unsubscribe, and bounces, complaints and unsubscribe
//! mails read from real-shaped reports, from files and from a real Dovecot over IMAP.

use std::path::{Path, PathBuf};

use nashra::{
    bounces::{MailOutcome, feedback_from_mail},
    dkim::{Algorithm, Key},
    domain::VerpTarget,
    store::{FeedbackKind, SubscriberStatus},
};

use crate::helpers::{dovecot::Dovecot, smtp::Received, *};

struct Keys {
    _dir: tempfile::TempDir,
    rsa: PathBuf,
    ed: PathBuf,
    rsa_txt: String,
    ed_txt: String,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    let mut txts = Vec::new();
    for (alg, name) in [
        (Algorithm::RsaSha256, "rsa.pem"),
        (Algorithm::Ed25519Sha256, "ed.pem"),
    ] {
        let pem = nashra::dkim::generate(alg).unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, &pem).unwrap();
        txts.push(
            Key::from_pem("example.org", "s", pem.as_bytes())
                .unwrap()
                .txt_record(),
        );
        paths.push(p);
    }
    Keys {
        rsa: paths[0].clone(),
        ed: paths[1].clone(),
        rsa_txt: txts[0].clone(),
        ed_txt: txts[1].clone(),
        _dir: dir,
    }
}

fn signed_config(k: &Keys, extra: &str) -> String {
    format!(
        r#"
[bounces]
return_path = "bounces@example.org"
unsubscribe_address = "unsubscribe@example.org"
{extra}
[[dkim]]
domain = "example.org"
selector = "rsa1"
private_key_file = "{}"

[[dkim]]
domain = "example.org"
selector = "ed1"
private_key_file = "{}"
algorithm = "ed25519-sha256"
"#,
        k.rsa.display(),
        k.ed.display()
    )
}

/// check_eml.py with the public key given offline: (success, report).
fn check_signed(data: &[u8], txt: &str, transactional: bool) -> (bool, String) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(checker()).arg(f.path()).arg("--dkim-txt").arg(txt);
    if transactional {
        cmd.arg("--transactional");
    }
    let out = cmd
        .output()
        .expect("python3 runs (scripts/test installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// dkimpy directly, for the `idx`-th signature (check_eml.py checks the first).
fn dkimpy_verifies(data: &[u8], idx: usize, txt: &str) -> bool {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    let script = format!(
        "import dkim,sys\nraw=open(sys.argv[1],'rb').read()\n\
         d=dkim.DKIM(raw)\nok=d.verify(idx={idx},dnsfunc=lambda n,timeout=5: sys.argv[2].encode())\n\
         sys.exit(0 if ok else 1)"
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(f.path())
        .arg(txt)
        .output()
        .expect("python3 runs");
    if !out.status.success() && !out.stderr.is_empty() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

fn verp_tag(m: &Received) -> String {
    let (local, domain) = m.from.split_once('@').expect("an envelope sender");
    assert_eq!(domain, "example.org");
    local
        .strip_prefix("bounces+")
        .unwrap_or_else(|| panic!("a per-message return path, not {local}"))
        .to_owned()
}

both_engines!(
    a_signed_digest_verifies_independently_and_names_its_delivery,
    |engine| async move {
        let k = keys();
        let t = spawn_app_with(engine, &signed_config(&k, "")).await;
        t.subscribe_and_confirm("reader@example.com").await;

        // The confirmation: signed, transactional rules, a return path naming the reader.
        let confirm = t.wait_for_mail_to("reader@example.com", 1).await;
        let (ok, report) = check_signed(&confirm.data, &k.rsa_txt, true);
        assert!(ok && report.contains(" 0 failed"), "{report}");
        assert!(report.contains("D4"), "dkimpy ran: {report}");
        assert!(!report.contains("WARN D4"), "{report}");
        assert!(
            dkimpy_verifies(&confirm.data, 0, &k.rsa_txt),
            "the confirmation's signature"
        );
        let tag = verp_tag(&confirm);
        assert!(matches!(
            t.app.tokens.verify_verp_tag(&tag),
            Some(VerpTarget::Subscriber(_))
        ));

        t.add_article("https://example.org/1/", "خبر", "نص الخبر")
            .await;
        let id = t.send_now().await;
        t.wait_send(id).await;
        let m = t.wait_for_mail_to("reader@example.com", 2).await;
        let (ok, report) = check_signed(&m.data, &k.rsa_txt, false);
        assert!(ok && report.contains(" 0 failed"), "{report}");
        for warn in ["WARN D1", "WARN D4", "WARN L"] {
            assert!(!report.contains(warn), "{warn}: {report}");
        }
        assert!(dkimpy_verifies(&m.data, 0, &k.rsa_txt), "RSA signature");
        assert!(dkimpy_verifies(&m.data, 1, &k.ed_txt), "Ed25519 signature");
        // The wrong key does not verify: the check is real.
        assert!(!dkimpy_verifies(&m.data, 1, &k.rsa_txt));

        // The return path names this delivery; the mailto link is there.
        let tag = verp_tag(&m);
        let Some(VerpTarget::Delivery(row)) = t.app.tokens.verify_verp_tag(&tag) else {
            panic!("tag {tag} names no delivery");
        };
        let digest_of_row = t
            .dir
            .scalar(&format!(
                "SELECT digest_id FROM deliveries WHERE id = {row}"
            ))
            .await;
        assert_eq!(digest_of_row, id);
        let lu = header(&m, "List-Unsubscribe");
        assert!(lu.contains("<mailto:unsubscribe+"), "{lu}");
        // A forged tag is not ours.
        let forged = format!("d{row}-000000000000");
        assert_eq!(t.app.tokens.verify_verp_tag(&forged), None);

        // Swapping the unsubscribe link after signing breaks the signature.
        let text = String::from_utf8(m.data.clone()).unwrap();
        let url = unsubscribe_link(&m);
        let tampered = text.replacen(&url, "https://evil.example.net/u", 1);
        assert_ne!(tampered, text);
        let (_, report) = check_signed(tampered.as_bytes(), &k.rsa_txt, false);
        assert!(report.contains("FAIL D4"), "{report}");
        assert!(!dkimpy_verifies(tampered.as_bytes(), 0, &k.rsa_txt));
        assert!(!dkimpy_verifies(tampered.as_bytes(), 1, &k.ed_txt));
    }
);

/// A fixture with the placeholders of tests/fixtures/bounces/README filled in.
fn fixture(name: &str, m: &Received, reader: &str, unsub: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap();
    text.replace("{{RETURN_PATH}}", &m.from)
        .replace("{{RECIPIENT}}", reader)
        .replace("{{MESSAGE_ID}}", &format!("<{}>", message_id(m)))
        .replace("{{UNSUBSCRIBE_ADDRESS}}", unsub)
        .into_bytes()
}

fn mailto(m: &Received) -> String {
    let lu = header(m, "List-Unsubscribe");
    let start = lu.find("mailto:").unwrap() + "mailto:".len();
    lu[start..].split(['?', '>']).next().unwrap().to_owned()
}

const READERS: [&str; 8] = [
    "gmail@example.com",
    "outlook@example.com",
    "postfix@example.com",
    "soft@example.com",
    "bare@example.com",
    "yahoo@example.com",
    "jmrp@example.com",
    "leaver@example.com",
];

/// Which fixture goes with which reader, and what it must do.
const CASES: [(&str, usize, FeedbackKind, SubscriberStatus); 8] = [
    (
        "gmail-hard.eml",
        0,
        FeedbackKind::Hard,
        SubscriberStatus::Bounced,
    ),
    (
        "outlook-hard.eml",
        1,
        FeedbackKind::Hard,
        SubscriberStatus::Bounced,
    ),
    (
        "postfix-hard.eml",
        2,
        FeedbackKind::Hard,
        SubscriberStatus::Bounced,
    ),
    (
        "postfix-soft.eml",
        3,
        FeedbackKind::Soft,
        SubscriberStatus::Confirmed,
    ),
    (
        "bare-hard.eml",
        4,
        FeedbackKind::Hard,
        SubscriberStatus::Bounced,
    ),
    (
        "yahoo-arf.eml",
        5,
        FeedbackKind::Complaint,
        SubscriberStatus::Unsubscribed,
    ),
    (
        "outlook-arf.eml",
        6,
        FeedbackKind::Complaint,
        SubscriberStatus::Unsubscribed,
    ),
    (
        "unsubscribe.eml",
        7,
        FeedbackKind::Unsubscribe,
        SubscriberStatus::Unsubscribed,
    ),
];

/// A send to every reader; returns the app, the send and each reader's digest.
async fn sent_to_readers(engine: Engine, extra: &str) -> (TestApp, i64, Vec<Received>) {
    let k = keys();
    let t = spawn_app_with(
        engine,
        &signed_config(&k, &format!("{extra}\n[delivery]\nbounce_after = 1\n")),
    )
    .await;
    let (id, msgs) = t.send_digest_to(&READERS).await;
    (t, id, msgs)
}

async fn assert_outcomes(t: &TestApp, id: i64) {
    for (_, reader, _, status) in CASES {
        assert_eq!(
            t.status_of(READERS[reader]).await,
            status,
            "{}",
            READERS[reader]
        );
    }
    let v = t.send(id).await;
    let f = &v.feedback;
    assert_eq!(f.hard_bounces, 4, "{v:?}");
    assert_eq!(f.soft_bounces, 1, "{v:?}");
    assert_eq!(f.complaints, 2, "{v:?}");
    assert_eq!(
        f.unsubscribed_by_mail, 0,
        "mailed unsubscribes name the reader: {v:?}"
    );
    let metrics = t.get_text("/metrics").await;
    assert!(
        metrics.contains("nashra_feedback_total{kind=\"hard\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nashra_feedback_total{kind=\"complaint\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nashra_feedback_total{kind=\"unsubscribe\"} 1"),
        "{metrics}"
    );
}

both_engines!(
    bounces_complaints_and_unsubscribe_mails_from_files_clean_the_list_once,
    |engine| async move {
        let (t, id, msgs) = sent_to_readers(engine, "").await;
        let files: Vec<Vec<u8>> = CASES
            .iter()
            .map(|(f, r, _, _)| fixture(f, &msgs[*r], READERS[*r], &mailto(&msgs[*r])))
            .collect();
        for ((name, _, kind, _), raw) in CASES.iter().zip(&files) {
            let out = feedback_from_mail(&t.app, raw, "file").await.unwrap();
            assert!(
                matches!(out, MailOutcome::Recorded(k, _) if k == *kind),
                "{name}: {out}"
            );
        }
        // An auto-reply to the return path is no bounce.
        let auto = fixture("autoreply.eml", &msgs[3], READERS[3], "");
        assert!(matches!(
            feedback_from_mail(&t.app, &auto, "file").await.unwrap(),
            MailOutcome::Ignored(_)
        ));
        assert_outcomes(&t, id).await;

        // Read again: nothing changes.
        for raw in &files {
            let out = feedback_from_mail(&t.app, raw, "file").await.unwrap();
            assert!(matches!(out, MailOutcome::Duplicate(_)), "{out}");
        }
        assert_outcomes(&t, id).await;

        // A report with a forged return path and a made-up Message-ID changes nothing.
        let mut forged = msgs[3].clone();
        forged.from = "bounces+d1-0123456789ab@example.org".into();
        let raw = String::from_utf8(fixture("gmail-hard.eml", &forged, READERS[3], ""))
            .unwrap()
            .replace(
                header(&msgs[3], "Message-ID").trim(),
                "<forged@example.org>",
            );
        assert!(matches!(
            feedback_from_mail(&t.app, raw.as_bytes(), "file")
                .await
                .unwrap(),
            MailOutcome::Unknown(_)
        ));
        assert_eq!(t.status_of(READERS[3]).await, SubscriberStatus::Confirmed);

        // A complainer is suppressed: an import cannot bring them back; their own sign-up
        // and confirmation can.
        let yahoo = READERS[5];
        let e = nashra::domain::SubscriberEmail::parse(yahoo).unwrap();
        assert!(t.app.store.is_suppressed(&e.normalized()).await.unwrap());
        let sid = t.reader_id(yahoo).await;
        t.app.store.erase_subscriber(sid).await.unwrap();
        let (added, _) = t
            .app
            .store
            .import(
                &[(e.clone(), nashra::domain::SubscriberName::default())],
                true,
                "import",
            )
            .await
            .unwrap();
        assert_eq!(added, 0, "a suppressed address is not imported");
        t.subscribe_and_confirm(yahoo).await;
        assert_eq!(t.status_of(yahoo).await, SubscriberStatus::Confirmed);
        assert!(!t.app.store.is_suppressed(&e.normalized()).await.unwrap());
    }
);

both_engines!(
    the_bounce_mailbox_is_read_over_imap_once,
    |engine| async move {
        let dovecot = Dovecot::start().await;
        let extra = format!(
            "imap_url = \"{}\"\nca_file = \"{}\"\npoll_every = \"1h\"\n",
            dovecot.url(),
            dovecot.ca_file.display()
        );
        let (t, id, msgs) = sent_to_readers(engine, &extra).await;
        for (f, r, _, _) in CASES {
            dovecot.deliver(&fixture(f, &msgs[r], READERS[r], &mailto(&msgs[r])));
        }
        dovecot.deliver(&fixture("autoreply.eml", &msgs[3], READERS[3], ""));
        let pass = nashra::bounces::imap::poll_once(&t.app).await.unwrap();
        assert_eq!(pass.read, 9, "{pass:?}");
        assert_eq!(pass.recorded, 8, "{pass:?}");
        assert_outcomes(&t, id).await;
        // Every message was moved out of the inbox.
        assert!(
            dovecot.seen("INBOX").is_empty(),
            "every message left the inbox"
        );
        let done = dovecot.seen("Processed");
        assert_eq!(done.len(), 9);
        assert!(done.iter().all(|s| *s), "each flagged \\Seen");
        let again = nashra::bounces::imap::poll_once(&t.app).await.unwrap();
        assert_eq!(again.read, 0, "{again:?}");
        assert_outcomes(&t, id).await;
    }
);

/// A DSN from anyone whose returned message quotes a Message-ID with a NUL in it.
fn dsn_quoting_a_nul() -> Vec<u8> {
    use base64::Engine;
    let original =
        b"Message-ID: <a\0b@example.org>\r\nFrom: x@example.org\r\nSubject: hi\r\n\r\nbody\r\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(original);
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
         To: bounces@news.example.org\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <nul-dsn-1@mx.example.net>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; someone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --B\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--B--\r\n"
    )
    .into_bytes()
}

both_engines!(
    one_mail_quoting_a_nul_does_not_stop_the_bounce_mailbox,
    |engine| async move {
        // Issue 15, item 2: on PostgreSQL the NUL aborted every pass, and each genuine bounce
        // behind it was never applied.
        let dovecot = Dovecot::start().await;
        let extra = format!(
            "imap_url = \"{}\"\nca_file = \"{}\"\npoll_every = \"1h\"\n",
            dovecot.url(),
            dovecot.ca_file.display()
        );
        let (t, _id, msgs) = sent_to_readers(engine, &extra).await;
        let nul = dsn_quoting_a_nul();
        let out = feedback_from_mail(&t.app, &nul, "file").await.unwrap();
        assert_eq!(
            out,
            MailOutcome::Unknown(FeedbackKind::Hard),
            "as a file: names nothing of ours"
        );
        dovecot.deliver(&nul);
        dovecot.deliver(&fixture(
            "gmail-hard.eml",
            &msgs[0],
            READERS[0],
            &mailto(&msgs[0]),
        ));
        let pass = nashra::bounces::imap::poll_once(&t.app).await.unwrap();
        assert_eq!((pass.read, pass.recorded), (2, 1), "{pass:?}");
        assert_eq!(t.status_of(READERS[0]).await, SubscriberStatus::Bounced);
        assert!(dovecot.seen("INBOX").is_empty(), "both handled");
    }
);
