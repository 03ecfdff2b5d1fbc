//! Reads what lands in the bounce mailbox: delivery status notifications (RFC 3464), abuse
//! reports (ARF, RFC 5965), unsubscribe mails, and the rest (auto-replies, spam), which are
//! left alone.
//!
//! The MIME structure comes from `mail-parser`; the report fields (a `message/delivery-status`
//! or `message/feedback-report` part is blocks of header fields) are read here.
//!
//! What names the message: the per-message return path (`bounces+<tag>@…`, HMAC-signed) on the
//! envelope, in the original's quoted `Return-Path` or in the report's `Original-Mail-From`;
//! else our Message-ID quoted in the report. A recipient address alone is not trusted: anyone
//! can mail the bounce mailbox a report naming any reader.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use crate::store::FeedbackKind;

/// Largest message read; bounce reports are small, and a large one is not one.
pub const MAX_MAIL_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// `None`: nothing to do (an auto-reply, a stray mail); `ignored` says why.
    pub kind: Option<FeedbackKind>,
    pub ignored: &'static str,
    /// The tags found after `<return local>+`: candidates for the VERP check.
    pub verp_tags: Vec<String>,
    /// The token after `<unsubscribe local>+` in a recipient address.
    pub unsubscribe_token: Option<String>,
    /// Our Message-ID, as the report quotes it.
    pub original_message_id: Option<String>,
    /// Enhanced status code (5.1.1) or the feedback type.
    pub status: String,
    pub detail: String,
    /// Unique for this report: its Message-ID, or a hash of its bytes.
    pub report_id: String,
}

/// Headers that carry the address a message was delivered to.
const ENVELOPE_HEADERS: &[&str] = &[
    "To",
    "Cc",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Original-Delivered-To",
    "Original-Recipient",
];

pub fn parse(raw: &[u8], return_local: &str, unsubscribe_local: &str) -> Report {
    let mut r = Report {
        report_id: format!("sha256:{}", hex::encode(Sha256::digest(raw))),
        ..Report::default()
    };
    if raw.len() > MAX_MAIL_BYTES {
        r.ignored = "too large to be a report";
        return r;
    }
    let Some(msg) = MessageParser::default().parse(raw) else {
        r.ignored = "not a message";
        return r;
    };
    if let Some(id) = msg.message_id() {
        r.report_id = format!("mid:{}", id.chars().take(200).collect::<String>());
    }
    let ret = format!("{}+", return_local.to_ascii_lowercase());
    let uns = format!("{}+", unsubscribe_local.to_ascii_lowercase());
    for (name, value) in msg.headers_raw() {
        if ENVELOPE_HEADERS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            collect_tags(value, &ret, &mut r.verp_tags);
            if !unsubscribe_local.is_empty() && r.unsubscribe_token.is_none() {
                let mut t = Vec::new();
                collect_tags(value, &uns, &mut t);
                r.unsubscribe_token = t.into_iter().next();
            }
        }
    }
    if r.unsubscribe_token.is_some() {
        r.kind = Some(FeedbackKind::Unsubscribe);
        r.status = "mailto".into();
        return r;
    }

    let mut saw_report = false;
    for part in msg.parts.iter() {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        let ty = ct.ctype().to_ascii_lowercase();
        match (ty.as_str(), sub.as_str()) {
            ("message", "delivery-status") | ("message", "global-delivery-status") => {
                saw_report = true;
                delivery_status(part.contents(), &mut r, &ret);
            }
            ("message", "feedback-report") => {
                saw_report = true;
                feedback_report(part.contents(), &mut r, &ret);
            }
            ("message", "rfc822") | ("message", "global") => {
                if let PartType::Message(inner) = &part.body {
                    original(inner, &mut r, &ret);
                } else if let Some(inner) = MessageParser::default().parse(part.contents()) {
                    original(&inner, &mut r, &ret);
                }
            }
            ("text", "rfc822-headers") | ("message", "global-headers") => {
                // The part ends where the boundary begins, often right after its last
                // header with no blank line: the parser drops a header block's last field
                // unless the block is closed, so close it.
                let mut block = part.contents().to_vec();
                block.extend_from_slice(b"\r\n\r\n");
                if let Some(inner) = MessageParser::default().parse_headers(&block) {
                    original(&inner, &mut r, &ret);
                }
            }
            _ => {}
        }
    }
    if saw_report {
        if r.kind.is_none() {
            r.ignored = "a report that says nothing failed";
        }
        return r;
    }

    // Not a structured report: an auto-reply, or an old-style bounce in prose.
    let auto = msg
        .header_raw("Auto-Submitted")
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("auto-replied"));
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_ascii_lowercase();
    let subject = msg.subject().unwrap_or("").to_ascii_lowercase();
    let daemon = from.starts_with("mailer-daemon@")
        || from.starts_with("postmaster@")
        || from.is_empty()
            && msg
                .header_raw("Return-Path")
                .is_some_and(|v| v.contains("<>"));
    let bouncy = [
        "undeliver",
        "delivery status",
        "failure",
        "returned",
        "delivery failed",
    ]
    .iter()
    .any(|w| subject.contains(w));
    // Exim marks its bounces auto-replied too: the sender and subject decide first.
    if !(daemon || bouncy) {
        r.ignored = if auto {
            "an auto-reply"
        } else {
            "not a bounce"
        };
        return r;
    }
    let text = msg.body_text(0).unwrap_or_default();
    match enhanced_status(&text).or_else(|| basic_code(&text)) {
        Some(code) => {
            r.kind = Some(if code.starts_with('5') {
                FeedbackKind::Hard
            } else {
                FeedbackKind::Soft
            });
            r.status = code.to_owned();
            r.detail = first_line_with(&text, code);
        }
        None => r.ignored = "a bounce without a status",
    }
    r
}

/// The original message (or its headers) a report quotes.
fn original(inner: &Message<'_>, r: &mut Report, ret: &str) {
    if r.original_message_id.is_none() {
        r.original_message_id = inner.message_id().map(|s| s.to_owned());
    }
    for (name, value) in inner.headers_raw() {
        if name.eq_ignore_ascii_case("Return-Path") || name.eq_ignore_ascii_case("Sender") {
            collect_tags(value, ret, &mut r.verp_tags);
        }
    }
}

/// RFC 3464: a per-message block, then one block per recipient.
fn delivery_status(body: &[u8], r: &mut Report, ret: &str) {
    let text = String::from_utf8_lossy(body);
    // The worst outcome among the recipients (we send one recipient per message).
    let mut rank = 0;
    for block in blocks(&text) {
        let get = |k: &str| {
            block
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        if let Some(v) = get("Original-Envelope-Id") {
            collect_tags(v, ret, &mut r.verp_tags);
        }
        let Some(action) = get("Action").map(|a| a.to_ascii_lowercase()) else {
            continue;
        };
        let status = get("Status").unwrap_or("").trim().to_owned();
        let (kind, this_rank) = match action.as_str() {
            "failed" if status.starts_with('5') => (FeedbackKind::Hard, 4),
            "failed" => (FeedbackKind::Soft, 3),
            "delayed" => (FeedbackKind::Soft, 2),
            "delivered" | "relayed" | "expanded" => (FeedbackKind::Delivered, 1),
            _ => continue,
        };
        if this_rank > rank {
            rank = this_rank;
            r.kind = Some(kind);
            r.status = status.chars().take(16).collect();
            r.detail = get("Diagnostic-Code")
                .unwrap_or("")
                .chars()
                .take(300)
                .collect();
        }
    }
}

/// RFC 5965: `Feedback-Type: abuse` and where the complained-about message came from.
fn feedback_report(body: &[u8], r: &mut Report, ret: &str) {
    let text = String::from_utf8_lossy(body);
    for block in blocks(&text) {
        for (name, value) in &block {
            if name.eq_ignore_ascii_case("Feedback-Type") {
                let t = value.trim().to_ascii_lowercase();
                if t != "not-spam" {
                    r.kind = Some(FeedbackKind::Complaint);
                    r.status = t.chars().take(16).collect();
                }
            } else if name.eq_ignore_ascii_case("Original-Mail-From") {
                collect_tags(value, ret, &mut r.verp_tags);
            }
        }
    }
    if r.kind.is_none() {
        r.ignored = "a not-spam report";
    }
}

/// Blank-line separated blocks of (unfolded) header fields.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines().take(2000) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            cur.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Every `<prefix><tag>@` in `value` (case-insensitive prefix), the tags lower-cased.
fn collect_tags(value: &str, prefix: &str, out: &mut Vec<String>) {
    let lower = value.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(prefix) {
        let start = from + i;
        // The prefix must begin a local part.
        let boundary = start == 0
            || matches!(
                lower.as_bytes()[start - 1],
                b'<' | b' ' | b':' | b',' | b';' | b'\t' | b'"' | b'='
            );
        let tag_start = start + prefix.len();
        let tag: String = value[tag_start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        if boundary && !tag.is_empty() && value[tag_start + tag.len()..].starts_with('@') {
            let t = tag.to_owned();
            if !out.contains(&t) && out.len() < 8 {
                out.push(t);
            }
        }
        from = tag_start;
    }
}

/// The first `5.x.x` or `4.x.x` enhanced status code in prose.
fn enhanced_status(text: &str) -> Option<&str> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b([45]\.\d{1,3}\.\d{1,3})\b").expect("valid regex")
    });
    RE.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str())
}

/// A bare SMTP reply code (550, 452) at the start of a line or after "said:".
fn basic_code(text: &str) -> Option<&str> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?m)(?:^|said:\s*|:\s)([45][0-5]\d)[\s-]").expect("valid regex")
    });
    RE.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str())
}

fn first_line_with(text: &str, needle: &str) -> String {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or("")
        .trim()
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_only_at_the_start_of_a_local_part() {
        let mut t = Vec::new();
        collect_tags(
            "<bounces+d12-abcdef012345@news.example.org>, xbounces+no@x, BOUNCES+d3-00@x",
            "bounces+",
            &mut t,
        );
        assert_eq!(t, vec!["d12-abcdef012345".to_owned(), "d3-00".to_owned()]);
    }

    #[test]
    fn a_dsn_names_its_worst_outcome() {
        let raw = "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+d5-0011223344ff@news.example.org\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.net>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nsorry\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; reader@example.com\r\nAction: failed\r\n\
Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n--b--\r\n";
        let r = parse(raw.as_bytes(), "bounces", "unsubscribe");
        assert_eq!(r.kind, Some(FeedbackKind::Hard));
        assert_eq!(r.status, "5.1.1");
        assert_eq!(r.verp_tags, vec!["d5-0011223344ff".to_owned()]);
        assert_eq!(r.report_id, "mid:dsn1@mx.example.net");
    }

    #[test]
    fn a_headers_part_keeps_its_last_header_without_a_blank_line_after_it() {
        let raw = "From: MAILER-DAEMON@mx.example.net\r\nTo: postmaster@news.example.org\r\n\
Message-ID: <dsn2@mx.example.net>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
Final-Recipient: rfc822; reader@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\n\
Content-Type: text/rfc822-headers\r\n\r\nSubject: x\r\n\
Message-ID: <orig7@news.example.org>\r\n--b--\r\n";
        let r = parse(raw.as_bytes(), "bounces", "unsubscribe");
        assert_eq!(
            r.original_message_id.as_deref(),
            Some("orig7@news.example.org")
        );
    }
}
