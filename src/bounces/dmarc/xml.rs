//! The XML of a DMARC aggregate report (RFC 7489 appendix C), read as a stream of events
//! with quick-xml: only the fields the reputation page counts are kept, elements are
//! matched by local name (Outlook.com writes a default namespace, others none, some a
//! prefix), and the depth, the record count and each text are bounded. No DTD is read and
//! no entity beyond XML's five and character references is expanded.

use std::net::IpAddr;

use quick_xml::{Reader, events::Event};

use super::{
    limits::{MAX_COUNT, MAX_DEPTH, MAX_RECORDS, MAX_TEXT},
    refused::Refused,
};
use crate::store::{Disposition, DmarcRecord, NewDmarcReport};

/// The fields of one `<record>` as they are read.
#[derive(Default)]
struct Partial {
    source_ip: Option<String>,
    count: Option<String>,
    disposition: Option<String>,
    dkim: Option<String>,
    spf: Option<String>,
    header_from: Option<String>,
}

pub fn parse(xml: &[u8]) -> Result<NewDmarcReport, Refused> {
    // Texts are trimmed once whole: trimming each piece would eat the spaces around `&amp;`.
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    // Local names from the root down to the element being read.
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let (mut org, mut report_id, mut domain, mut begin, mut end) = (None, None, None, None, None);
    let mut records = Vec::new();
    let mut record = Partial::default();
    let err = |r: &Reader<&[u8]>| Refused::Xml(format!("at byte {}", r.error_position()));
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|_| err(&reader))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() && name != "feedback" {
                    return Err(Refused::NotAReport("its root element is not <feedback>"));
                }
                path.push(name);
                if path.len() > MAX_DEPTH {
                    return Err(Refused::TooDeep);
                }
                if path_is(&path, &["feedback", "record"]) {
                    if records.len() >= MAX_RECORDS {
                        return Err(Refused::TooManyRecords);
                    }
                    record = Partial::default();
                }
                text.clear();
            }
            Event::Empty(e) if path.is_empty() => {
                let _ = e;
                return Err(Refused::NotAReport("its root element is empty"));
            }
            Event::Text(t) => push_text(&mut text, &t.xml10_content().map_err(|_| err(&reader))?),
            Event::CData(t) => push_text(&mut text, &t.decode().map_err(|_| err(&reader))?),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match &*r as &[u8] {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                    Err(_) => None,
                };
                match c {
                    Some(c) => push_text(&mut text, c.encode_utf8(&mut [0; 4])),
                    None => return Err(err(&reader)),
                }
            }
            Event::End(_) => {
                let value = text.trim().to_owned();
                text.clear();
                let p: Vec<&str> = path.iter().map(String::as_str).collect();
                let slot = match p.as_slice() {
                    ["feedback", "report_metadata", "org_name"] => Some(&mut org),
                    ["feedback", "report_metadata", "report_id"] => Some(&mut report_id),
                    ["feedback", "report_metadata", "date_range", "begin"] => Some(&mut begin),
                    ["feedback", "report_metadata", "date_range", "end"] => Some(&mut end),
                    ["feedback", "policy_published", "domain"] => Some(&mut domain),
                    ["feedback", "record", "row", "source_ip"] => Some(&mut record.source_ip),
                    ["feedback", "record", "row", "count"] => Some(&mut record.count),
                    [
                        "feedback",
                        "record",
                        "row",
                        "policy_evaluated",
                        "disposition",
                    ] => Some(&mut record.disposition),
                    ["feedback", "record", "row", "policy_evaluated", "dkim"] => {
                        Some(&mut record.dkim)
                    }
                    ["feedback", "record", "row", "policy_evaluated", "spf"] => {
                        Some(&mut record.spf)
                    }
                    ["feedback", "record", "identifiers", "header_from"] => {
                        Some(&mut record.header_from)
                    }
                    _ => None,
                };
                if let Some(slot) = slot {
                    *slot = Some(value);
                }
                if p == ["feedback", "record"] {
                    records.push(finish(std::mem::take(&mut record))?);
                }
                path.pop();
            }
            Event::Eof => break,
            // Declarations, comments, processing instructions, a DOCTYPE (never read).
            _ => {}
        }
        buf.clear();
    }
    if !path.is_empty() {
        return Err(Refused::Xml("it ends inside an element".into()));
    }
    let org = org
        .filter(|s| !s.is_empty())
        .ok_or(Refused::Field("org_name"))?;
    let report_id = report_id
        .filter(|s| !s.is_empty())
        .ok_or(Refused::Field("report_id"))?;
    let seconds = |s: Option<String>, what| {
        s.and_then(|s| s.parse::<i64>().ok())
            .filter(|t| (0..=32_503_680_000).contains(t))
            .map(|t| t * 1000)
            .ok_or(Refused::Field(what))
    };
    let begin_ms = seconds(begin, "date_range begin")?;
    let end_ms = seconds(end, "date_range end")?;
    Ok(NewDmarcReport {
        org,
        report_id,
        domain: domain.unwrap_or_default().to_ascii_lowercase(),
        begin_ms,
        end_ms,
        records,
    })
}

fn path_is(path: &[String], want: &[&str]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a == b)
}

fn push_text(text: &mut String, s: &str) {
    for c in s.chars() {
        if text.len() + c.len_utf8() > MAX_TEXT {
            return;
        }
        text.push(c);
    }
}

fn finish(p: Partial) -> Result<DmarcRecord, Refused> {
    let source_ip: IpAddr = p
        .source_ip
        .and_then(|s| s.trim().parse().ok())
        .ok_or(Refused::Field("record's source_ip"))?;
    let count = p
        .count
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|n| (0..=MAX_COUNT).contains(n))
        .ok_or(Refused::Field("record's count"))?;
    let disposition = p
        .disposition
        .as_deref()
        .and_then(Disposition::parse)
        .ok_or(Refused::Field("record's disposition"))?;
    let pass = |s: Option<String>| s.is_some_and(|s| s.trim().eq_ignore_ascii_case("pass"));
    Ok(DmarcRecord {
        source_ip: source_ip.to_string(),
        count,
        disposition,
        dkim_aligned: pass(p.dkim),
        spf_aligned: pass(p.spf),
        header_from: p
            .header_from
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(records: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <report_id>1234567890</report_id>
    <date_range><begin>1764979200</begin><end>1765065599</end></date_range>
  </report_metadata>
  <policy_published><domain>Example.org</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>
  {records}
</feedback>"#
        )
    }

    fn record(ip: &str, count: u32, disposition: &str, dkim: &str, spf: &str) -> String {
        format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated><disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row><identifiers><header_from>example.org</header_from></identifiers><auth_results><dkim><domain>example.org</domain><result>pass</result><selector>s1</selector></dkim><spf><domain>example.org</domain><result>pass</result></spf></auth_results></record>"
        )
    }

    #[test]
    fn a_report_gives_its_metadata_and_records() {
        let xml = report(&format!(
            "{}{}",
            record("209.85.220.41", 12, "none", "pass", "fail"),
            record("2001:db8::1", 3, "Quarantine", "fail", "fail"),
        ));
        let r = parse(xml.as_bytes()).unwrap();
        assert_eq!(r.org, "google.com");
        assert_eq!(r.report_id, "1234567890");
        assert_eq!(r.domain, "example.org");
        assert_eq!(r.begin_ms, 1_764_979_200_000);
        assert_eq!(r.records.len(), 2);
        assert_eq!(
            r.records[1],
            DmarcRecord {
                source_ip: "2001:db8::1".into(),
                count: 3,
                disposition: Disposition::Quarantine,
                dkim_aligned: false,
                spf_aligned: false,
                header_from: "example.org".into(),
            }
        );
        assert!(r.records[0].dkim_aligned && !r.records[0].spf_aligned);
    }

    #[test]
    fn namespaces_and_prefixes_do_not_change_the_names() {
        let xml = report(&record("40.92.0.1", 1, "none", "pass", "pass")).replace(
            "<feedback>",
            r#"<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">"#,
        );
        assert_eq!(parse(xml.as_bytes()).unwrap().records.len(), 1);
        let prefixed = report(&record("40.92.0.1", 1, "none", "pass", "pass"))
            .replace(
                "<feedback>",
                r#"<d:feedback xmlns:d="http://dmarc.org/dmarc-xml/0.1">"#,
            )
            .replace("</feedback>", "</d:feedback>");
        assert_eq!(parse(prefixed.as_bytes()).unwrap().records.len(), 1);
    }

    #[test]
    fn entities_are_read_and_nothing_else_is_expanded() {
        let xml = report("").replace("google.com", "A &amp; B &#x41;");
        assert_eq!(parse(xml.as_bytes()).unwrap().org, "A & B A");
        let xxe = format!(
            "<!DOCTYPE feedback [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
            report("").replace("google.com", "&x;")
        );
        assert!(matches!(parse(xxe.as_bytes()), Err(Refused::Xml(_))));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = format!(
            "<feedback>{}{}</feedback>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        assert_eq!(parse(deep.as_bytes()), Err(Refused::TooDeep));
        let ok = report(&format!("<x>{}{}</x>", "<a>".repeat(5), "</a>".repeat(5)));
        assert!(parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn records_are_bounded() {
        let one = record("192.0.2.1", 1, "none", "pass", "pass");
        let at_limit = report(&one.repeat(MAX_RECORDS));
        assert_eq!(
            parse(at_limit.as_bytes()).unwrap().records.len(),
            MAX_RECORDS
        );
        let over = report(&one.repeat(MAX_RECORDS + 1));
        assert_eq!(parse(over.as_bytes()), Err(Refused::TooManyRecords));
    }

    #[test]
    fn a_long_text_is_cut_not_kept() {
        let xml = report("").replace("1234567890", &"9".repeat(100_000));
        assert_eq!(parse(xml.as_bytes()).unwrap().report_id.len(), MAX_TEXT);
    }

    #[test]
    fn malformed_reports_are_refused_with_a_reason() {
        type Check = fn(&Refused) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (report("").replace("</feedback>", ""), |e| {
                matches!(e, Refused::Xml(_))
            }),
            (
                report("").replace("</report_metadata>", "</report_metadatx>"),
                |e| matches!(e, Refused::Xml(_)),
            ),
            ("<html><body/></html>".into(), |e| {
                matches!(e, Refused::NotAReport(_))
            }),
            (
                report("").replace("<report_id>1234567890</report_id>", ""),
                |e| *e == Refused::Field("report_id"),
            ),
            (
                report(&record("not-an-ip", 1, "none", "pass", "pass")),
                |e| *e == Refused::Field("record's source_ip"),
            ),
            (
                report(&record("192.0.2.1", 1, "discard", "pass", "pass")),
                |e| *e == Refused::Field("record's disposition"),
            ),
            (report("").replace("1764979200", "yesterday"), |e| {
                *e == Refused::Field("date_range begin")
            }),
            (String::new(), |e| matches!(e, Refused::Field(_))),
        ];
        for (xml, ok) in cases {
            let got = parse(xml.as_bytes());
            assert!(got.as_ref().is_err_and(ok), "{xml:.80} gave {got:?}");
        }
    }
}
