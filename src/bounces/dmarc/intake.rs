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

/// Stores the report `raw` carries; `None` when it carries none.
pub async fn report_from_mail(app: &App, raw: &[u8]) -> anyhow::Result<Option<DmarcOutcome>> {
    let raw = raw.to_vec();
    let Some(read) = tokio::task::spawn_blocking(move || read(&raw)).await? else {
        return Ok(None);
    };
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
