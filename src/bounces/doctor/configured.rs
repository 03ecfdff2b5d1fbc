//! What the configuration alone tells: the DNS records the sending domain needs, and the
//! settings checked against what Gmail, Yahoo and Outlook.com ask of bulk senders (2024
//! rules): DKIM present and aligned with From (DMARC), one-click unsubscribe covered by the
//! signature, a postal address, Feedback-ID, TLS to the relay, and somewhere for bounces to
//! come back to.

use secrecy::ExposeSecret;

use super::{
    check::{Check, Level},
    spf,
};
use crate::{
    config::{Settings, Tls},
    delivery::message::{MessageSpec, MessageTemplate, Personal},
    dkim,
    domain::Mailbox,
};

/// The records to publish and the checks, without printing (tests read these).
pub fn examine(s: &Settings) -> anyhow::Result<(Vec<String>, Vec<Check>)> {
    let from = Mailbox::parse(&s.newsletter.from)?;
    let from_domain = from.email.domain().to_owned();
    let signer = dkim::Signer::from_config(&s.dkim)?;
    let mut records = Vec::new();
    let mut checks = Vec::new();
    let mut check = |level, what: &str, detail: String| {
        checks.push(Check {
            level,
            what: what.to_owned(),
            detail,
        })
    };

    let return_domain = s
        .return_path_base()
        .map(|(_, d)| d)
        .unwrap_or_else(|| from_domain.clone());
    let relays: Vec<String> = s.relays().iter().map(|r| spf::term_for(&r.host)).collect();
    let relay = relays.join(" ");
    records.push(format!(
        "{return_domain}. IN TXT \"v=spf1 {relay} -all\"   (SPF: the relays' addresses; use your provider's include: instead when it sends for you)"
    ));
    if let Some(signer) = &signer {
        for k in signer.keys() {
            records.push(format!(
                "{}. IN TXT \"{}\"",
                k.record_name(),
                k.txt_record()
            ));
        }
    }
    records.push(format!(
        "_dmarc.{from_domain}. IN TXT \"v=DMARC1; p=none; rua=mailto:dmarc@{from_domain}\"   (start at p=none; move to quarantine once reports are clean)"
    ));

    match &signer {
        None => check(
            Level::Fail,
            "DKIM",
            "no [[dkim]] key: unless the relay signs with d=".to_owned()
                + &from_domain
                + ", Gmail and Yahoo refuse or junk bulk mail (make one: nashra dkim keygen)",
        ),
        Some(sg) => {
            if sg.aligned(&from_domain) {
                check(
                    Level::Pass,
                    "DKIM aligned with From",
                    format!("d={} for From {from_domain}", sg.keys()[0].domain),
                );
            } else {
                check(
                    Level::Fail,
                    "DKIM aligned with From",
                    format!(
                        "no key signs for {from_domain} or its parent: DMARC fails (keys: {})",
                        sg.keys()
                            .iter()
                            .map(|k| k.domain.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            // Sign a sample message and read what the signature covers.
            let t = MessageTemplate::new(MessageSpec {
                from: &from,
                reply_to: None,
                subject: "doctor",
                html: "<p>x</p>",
                text: "x",
                list: Some((&s.newsletter.name, &s.newsletter.list_id)),
                feedback_id: Some("1:doctor:nashra".into()),
                slots: None,
            });
            let msg = t.build(
                &Personal {
                    to: "reader@example.com",
                    unsubscribe_url: Some("https://example.org/unsubscribe/x"),
                    unsubscribe_mailto: None,
                    name: "",
                    preferences_url: None,
                    click: "",
                    date: chrono::Utc::now(),
                },
                "<doctor@example.org>",
            );
            let signed = String::from_utf8_lossy(&sg.sign(&msg, 0)).to_ascii_lowercase();
            let h: String = signed
                .split("h=")
                .nth(1)
                .and_then(|r| r.split(';').next())
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let covered = [
                "list-unsubscribe",
                "list-unsubscribe-post",
                "from",
                "feedback-id",
            ]
            .iter()
            .all(|n| h.split(':').any(|x| x == *n));
            check(
                if covered { Level::Pass } else { Level::Fail },
                "one-click unsubscribe covered by DKIM (RFC 8058)",
                format!("h={h}"),
            );
        }
    }
    if return_domain == from_domain
        || return_domain.ends_with(&format!(".{from_domain}"))
        || from_domain.ends_with(&format!(".{return_domain}"))
    {
        check(
            Level::Pass,
            "SPF domain (return path) aligned with From",
            return_domain.clone(),
        );
    } else {
        check(
            Level::Warn,
            "SPF domain (return path) aligned with From",
            format!("{return_domain} vs {from_domain}: DMARC then rests on DKIM alone"),
        );
    }
    check(
        if s.newsletter.postal_address.trim().is_empty() {
            Level::Fail
        } else {
            Level::Pass
        },
        "postal address in every digest (CAN-SPAM, Yahoo)",
        s.newsletter.postal_address.clone(),
    );
    check(
        Level::Pass,
        "Feedback-ID on every digest (Gmail's feedback loop)",
        "<digest>:<schedule>:<list id>:nashra".into(),
    );
    for r in s.relays() {
        let local = matches!(r.host.as_str(), "127.0.0.1" | "localhost" | "::1");
        check(
            match (r.tls, local) {
                (Tls::None, false) => Level::Fail,
                (Tls::None, true) => Level::Warn,
                _ => Level::Pass,
            },
            "TLS to the relay",
            format!("{}: tls = {:?}, host {}", r.name, r.tls, r.host),
        );
    }
    let w = &s.webhooks;
    let ways: Vec<&str> = [
        (s.bounces.has_mailbox(), "IMAP mailbox"),
        (!w.ses_topic_arns.is_empty(), "SES"),
        (!w.postmark_password.expose_secret().is_empty(), "Postmark"),
        (!w.mailgun_signing_key.expose_secret().is_empty(), "Mailgun"),
        (!w.sendgrid_public_key.is_empty(), "SendGrid"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect();
    check(
        if ways.is_empty() {
            Level::Warn
        } else {
            Level::Pass
        },
        "bounces and complaints come back",
        if ways.is_empty() {
            "none configured: addresses that bounce after the relay's 250, and readers who complain, stay on the list".into()
        } else {
            ways.join(", ")
        },
    );
    Ok((records, checks))
}
