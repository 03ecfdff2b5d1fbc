//! A mail that carries a DMARC aggregate report: found, unpacked, read and stored once.
//!
//! A mail is taken for a report when one of its parts is an XML, gzip or zip file and either
//! the subject is the one RFC 7489 §7.2.1.1 asks for ("Report Domain: … Submitter: …") or
//! the file is named as the RFC asks (`receiver!policy-domain!begin!end.xml.gz`). Any other
//! mail goes on to the bounce reader. A report that cannot be read is refused, logged with
//! the reason (no value from it) and counted; the mail is then done with like any other,
//! never retried.

use std::{fmt, sync::atomic::Ordering::Relaxed};

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::{
    refused::Refused,
    unpack::{Packing, unpack},
    xml,
};
use crate::{
    app::App,
    store::{NewDmarcReport, now_ms},
};

/// What became of a report mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmarcOutcome {
    /// Stored, with this many records.
    Stored(usize),
    /// This organisation's report of that id was stored before: nothing changed.
    Duplicate,
    Refused(Refused),
}

impl fmt::Display for DmarcOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmarcOutcome::Stored(n) => write!(f, "DMARC report stored ({n} records)"),
            DmarcOutcome::Duplicate => write!(f, "DMARC report already stored; nothing changed"),
            DmarcOutcome::Refused(why) => write!(f, "DMARC report refused: {why}"),
        }
    }
}

/// The report a mail carries, read; `None` when the mail carries none.
pub fn read(raw: &[u8]) -> Option<Result<NewDmarcReport, Refused>> {
    let msg = MessageParser::default().parse(raw)?;
    let subject = msg.subject().unwrap_or("").to_ascii_lowercase();
    let by_subject = subject.contains("report domain") && subject.contains("submitter");
    for part in &msg.parts {
        let bytes: &[u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            PartType::Text(t) => t.as_bytes(),
            _ => continue,
        };
        let name = part.attachment_name().unwrap_or("");
        let mime = part
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .unwrap_or_default();
        let Some(packing) = Packing::of(bytes, name, &mime) else {
            continue;
        };
        if !(by_subject || name.contains('!')) {
            continue;
        }
        return Some(unpack(bytes, packing).and_then(|x| xml::parse(&x)));
    }
    None
}

/// A day, in the store's unit.
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The report's records about mail with our From domain (or one of its subdomains): the same
/// mailbox often gets a company's other reports, which would blur the newsletter's rates. A
/// report dated in the future, or ending before it begins, is refused: it would count for
/// ever among "the last 30 days".
fn ours(from: &str, mut r: NewDmarcReport, now: i64) -> Result<NewDmarcReport, Refused> {
    if r.begin_ms > now + DAY_MS || r.end_ms < r.begin_ms {
        return Err(Refused::Field(
            "date_range (in the future, or ending before it begins)",
        ));
    }
    let from = from.to_ascii_lowercase();
    let sub = format!(".{from}");
    r.records
        .retain(|rec| rec.header_from == from || rec.header_from.ends_with(&sub));
    if r.records.is_empty() {
        return Err(Refused::NotAReport(
            "no record about mail from our From domain",
        ));
    }
    Ok(r)
}

/// Stores the report `raw` carries; `None` when it carries none.
pub async fn report_from_mail(app: &App, raw: &[u8]) -> anyhow::Result<Option<DmarcOutcome>> {
    let raw = raw.to_vec();
    let Some(read) = tokio::task::spawn_blocking(move || read(&raw)).await? else {
        return Ok(None);
    };
    let read = read.and_then(|r| ours(app.mailer.from.email.domain(), r, now_ms()));
    let outcome = match read {
        Ok(report) => {
            if app.store.store_dmarc_report(&report, now_ms()).await? {
                DmarcOutcome::Stored(report.records.len())
            } else {
                DmarcOutcome::Duplicate
            }
        }
        Err(why) => {
            tracing::warn!(reason = %why, "a DMARC report cannot be read; refused");
            DmarcOutcome::Refused(why)
        }
    };
    let counter = match outcome {
        DmarcOutcome::Stored(_) => &app.metrics.dmarc_stored,
        DmarcOutcome::Duplicate => &app.metrics.dmarc_duplicate,
        DmarcOutcome::Refused(_) => &app.metrics.dmarc_refused,
    };
    counter.fetch_add(1, Relaxed);
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Disposition, DmarcRecord};

    fn report(begin_ms: i64, end_ms: i64, from: &[&str]) -> NewDmarcReport {
        NewDmarcReport {
            org: "google.com".into(),
            report_id: "1".into(),
            domain: "example.org".into(),
            begin_ms,
            end_ms,
            records: from
                .iter()
                .map(|f| DmarcRecord {
                    source_ip: "192.0.2.25".into(),
                    count: 10,
                    disposition: Disposition::None,
                    dkim_aligned: true,
                    spf_aligned: true,
                    header_from: f.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn only_reports_about_our_from_domain_and_dated_sensibly_are_kept() {
        let now = 1_796_000_000_000;
        let day = DAY_MS;
        let kept = ours(
            "example.org",
            report(
                now - day,
                now,
                &["example.org", "corp-mail.example", "news.example.org"],
            ),
            now,
        )
        .unwrap();
        assert_eq!(
            kept.records.len(),
            2,
            "the other domain's record is dropped"
        );
        assert!(matches!(
            ours(
                "example.org",
                report(now - day, now, &["corp-mail.example"]),
                now
            ),
            Err(Refused::NotAReport(_))
        ));
        assert!(matches!(
            ours(
                "example.org",
                report(now + 2 * day, now + 3 * day, &["example.org"]),
                now
            ),
            Err(Refused::Field(_))
        ));
        assert!(matches!(
            ours(
                "example.org",
                report(now - day, now - 2 * day, &["example.org"]),
                now
            ),
            Err(Refused::Field(_))
        ));
    }
}
