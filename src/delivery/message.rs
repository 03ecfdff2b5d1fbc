//! Builds the bytes of each message, cheaply.
//!
//! A digest goes to many readers and differs between them only in a few bytes (the To
//! address, the Message-ID, the unsubscribe link). So the shared part is encoded once: the
//! bodies are base64-encoded up front in pieces split at the personal slots, pre-computed for
//! each of the three alignments a piece can start at. Per recipient, only the slot's bytes
//! and the seams around them are encoded; the rest is copied.
//!
//! The output is what `check_eml.py` and the bulk-sender rules want: CRLF line endings,
//! `multipart/alternative` with text/plain before text/html, both UTF-8 base64, RFC 2047
//! subject and display names, a Message-ID on our domain, List-Id, List-Unsubscribe and
//! List-Unsubscribe-Post.
//!
//! A little over 500 lines, a third of them the tests that pin the encoding against a naive
//! one: the encoder and its proofs stay together.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};

use crate::{
    domain::Mailbox,
    render::{SlotMarkers, escape_html, wrap_latin},
};

/// Base64 line length (RFC 2045: at most 76).
const LINE: usize = 76;
/// Raw bytes per encoded-word: 36 bytes make 48 base64 characters, so a folded header line
/// stays under 78 characters.
const WORD_BYTES: usize = 36;

/// Encodes `s` as RFC 2047 encoded-words if it is not plain printable ASCII, folding long
/// values. `first_line_used` is how much of the first line the header name takes.
pub fn encode_words(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.len() <= 60 {
        return s.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > WORD_BYTES {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// `"Name" <addr>` with the name encoded as needed.
pub fn mailbox_header(m: &Mailbox) -> String {
    match &m.name {
        Some(n) if n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ') => {
            format!("{n} <{}>", m.email.as_str())
        }
        Some(n) => format!("{}\r\n <{}>", encode_words(n), m.email.as_str()),
        None => m.email.as_str().to_owned(),
    }
}

impl StaticPiece {
    fn new(raw: &[u8]) -> StaticPiece {
        let by_offset = [0, 1, 2].map(|k: usize| {
            let k = k.min(raw.len());
            let rest = &raw[k..];
            let full = rest.len() / 3 * 3;
            let mut b64 = Vec::with_capacity(full / 3 * 4 + full / 57 * 2 + 2);
            wrap_b64(&mut b64, &rest[..full]);
            Encoded {
                b64,
                tail: rest[full..].to_vec(),
            }
        });
        StaticPiece {
            raw: raw.to_vec(),
            by_offset,
        }
    }
}

/// A body piece, pre-encoded for each alignment it can start at.
struct StaticPiece {
    /// `raw[..k]` completes a 3-byte group left open by what came before (k = 0, 1 or 2).
    raw: Vec<u8>,
    by_offset: [Encoded; 3],
}

struct Encoded {
    /// Base64 of `raw[k..k + 3m]`, in lines ending CRLF.
    b64: Vec<u8>,
    /// The 0–2 bytes left over at the end.
    tail: Vec<u8>,
}

enum Piece {
    Static(StaticPiece),
    Slot(Slot),
}

/// What differs between recipients inside a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    UnsubscribeUrl,
    PreferencesUrl,
    /// The message's click key in `/r/<key>-<article>` links.
    Click,
    /// The reader's name after a greeting: " name" (HTML-escaped, Latin isolated), or nothing.
    Name,
}

/// What goes into a body's slots for one recipient.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fill<'a> {
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
    /// The reader's name, or "".
    pub name: &'a str,
    /// URL-safe characters only (see `Tokens::click_key`).
    pub click: &'a str,
}

/// A body split at its slots and encoded once.
pub struct BodyTemplate {
    pieces: Vec<Piece>,
}

fn wrap_b64(out: &mut Vec<u8>, raw: &[u8]) {
    let enc = STANDARD.encode(raw);
    for line in enc.as_bytes().chunks(LINE) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

impl BodyTemplate {
    /// Splits `body` at every occurrence of the `slots`' markers.
    pub fn new(body: &str, slots: &[(&str, Slot)]) -> BodyTemplate {
        let mut pieces = Vec::new();
        let mut rest = body;
        loop {
            let next = slots
                .iter()
                .filter_map(|(m, slot)| rest.find(m).map(|i| (i, m.len(), *slot)))
                .min_by_key(|(i, _, _)| *i);
            let (part, after) = match next {
                Some((i, len, slot)) => (&rest[..i], Some((slot, &rest[i + len..]))),
                None => (rest, None),
            };
            pieces.push(Piece::Static(StaticPiece::new(part.as_bytes())));
            match after {
                Some((slot, tail)) => {
                    pieces.push(Piece::Slot(slot));
                    rest = tail;
                }
                None => break,
            }
        }
        BodyTemplate { pieces }
    }

    /// About how many bytes `write` produces, before the slots are filled.
    fn encoded_len(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Static(s) => s.by_offset[0].b64.len() + 8,
                Piece::Slot(_) => 0,
            })
            .sum()
    }

    /// Appends the base64 body with the recipient's values in its slots.
    pub fn write(&self, out: &mut Vec<u8>, fill: &Fill<'_>, html: bool) {
        let esc = |u: &'_ str| -> String {
            if html {
                escape_html(u).into_owned()
            } else {
                u.to_owned()
            }
        };
        let url = esc(fill.unsubscribe_url);
        let prefs = esc(fill.preferences_url);
        let name = match (fill.name.trim(), html) {
            ("", _) => String::new(),
            (n, true) => format!(" {}", wrap_latin(n)),
            (n, false) => format!(" {n}"),
        };
        let mut carry: Vec<u8> = Vec::with_capacity(256);
        for p in &self.pieces {
            match p {
                Piece::Slot(Slot::UnsubscribeUrl) => carry.extend_from_slice(url.as_bytes()),
                Piece::Slot(Slot::Name) => carry.extend_from_slice(name.as_bytes()),
                Piece::Slot(Slot::PreferencesUrl) => carry.extend_from_slice(prefs.as_bytes()),
                Piece::Slot(Slot::Click) => carry.extend_from_slice(fill.click.as_bytes()),
                Piece::Static(s) => {
                    let need = (3 - carry.len() % 3) % 3;
                    if s.raw.len() < need + 3 {
                        // Too short to be worth a seam: treat it as dynamic.
                        carry.extend_from_slice(&s.raw);
                        continue;
                    }
                    carry.extend_from_slice(&s.raw[..need]);
                    if !carry.is_empty() {
                        wrap_b64(out, &carry);
                    }
                    let e = &s.by_offset[need];
                    out.extend_from_slice(&e.b64);
                    carry.clear();
                    carry.extend_from_slice(&e.tail);
                }
            }
        }
        if !carry.is_empty() {
            wrap_b64(out, &carry);
        }
    }
}

/// Everything about a message that is the same for every recipient.
pub struct MessageTemplate {
    /// From, Subject, MIME-Version, List-Id, List-Unsubscribe-Post, Reply-To, … each CRLF-ended.
    shared_headers: String,
    boundary: String,
    text: BodyTemplate,
    html: BodyTemplate,
    domain: String,
}

/// The per-recipient inputs.
pub struct Personal<'a> {
    pub to: &'a str,
    pub unsubscribe_url: Option<&'a str>,
    /// `unsubscribe+<token>@domain`, offered beside the URL when a mailbox reads it.
    pub unsubscribe_mailto: Option<&'a str>,
    /// The reader's name, or "".
    pub name: &'a str,
    pub preferences_url: Option<&'a str>,
    /// The message's click key, or "" when clicks are not counted.
    pub click: &'a str,
    pub date: DateTime<Utc>,
}

impl<'a> Personal<'a> {
    /// A message that is not list mail (a confirmation): no unsubscribe link, no
    /// preferences, no name, no click key; dated now.
    pub fn transactional(to: &'a str) -> Personal<'a> {
        Personal {
            to,
            unsubscribe_url: None,
            unsubscribe_mailto: None,
            name: "",
            preferences_url: None,
            click: "",
            date: Utc::now(),
        }
    }
}

pub struct MessageSpec<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub html: &'a str,
    pub text: &'a str,
    /// `Some((list name, list id))` for list mail: adds List-Id and one-click unsubscribe.
    pub list: Option<(&'a str, &'a str)>,
    pub feedback_id: Option<String>,
    /// The digest's slot markers and its archive URL; `None` for a message without slots.
    pub slots: Option<(&'a SlotMarkers, &'a str)>,
}

impl MessageTemplate {
    pub fn new(spec: MessageSpec<'_>) -> MessageTemplate {
        let domain = spec.from.email.domain().to_owned();
        let mut h = String::with_capacity(512);
        h.push_str("From: ");
        h.push_str(&mailbox_header(spec.from));
        h.push_str("\r\n");
        if let Some(r) = spec.reply_to {
            h.push_str(&format!("Reply-To: {r}\r\n"));
        }
        h.push_str("Subject: ");
        h.push_str(&encode_words(spec.subject));
        h.push_str("\r\nMIME-Version: 1.0\r\n");
        if let Some((name, id)) = spec.list {
            h.push_str(&format!("List-Id: {}\r\n <{id}>\r\n", encode_words(name)));
            h.push_str("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
            h.push_str("Precedence: bulk\r\n");
        } else {
            h.push_str("Auto-Submitted: auto-generated\r\n");
        }
        if let Some(f) = spec.feedback_id {
            h.push_str(&format!("Feedback-ID: {f}\r\n"));
        }
        let boundary = format!("=_nashra_{}", uuid::Uuid::new_v4().simple());
        h.push_str(&format!(
            "Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n"
        ));
        let (text, html) = match spec.slots {
            Some((m, web_url)) => {
                let slots = [
                    (m.unsubscribe.as_str(), Slot::UnsubscribeUrl),
                    (m.name.as_str(), Slot::Name),
                    (m.preferences.as_str(), Slot::PreferencesUrl),
                    (m.click.as_str(), Slot::Click),
                ];
                let html_web = escape_html(web_url);
                (
                    BodyTemplate::new(&crlf(&spec.text.replace(&m.web, web_url)), &slots),
                    BodyTemplate::new(&crlf(&spec.html.replace(&m.web, &html_web)), &slots),
                )
            }
            None => (
                BodyTemplate::new(&crlf(spec.text), &[]),
                BodyTemplate::new(&crlf(spec.html), &[]),
            ),
        };
        MessageTemplate {
            shared_headers: h,
            text,
            html,
            boundary,
            domain,
        }
    }

    /// A fresh Message-ID on our domain.
    pub fn new_message_id(&self) -> String {
        format!("<{}@{}>", uuid::Uuid::new_v4().simple(), self.domain)
    }

    /// The whole message for one recipient. `to` must be an address that passed
    /// `SubscriberEmail::parse` (no CR, LF or commas), which every stored address did.
    pub fn build(&self, p: &Personal<'_>, message_id: &str) -> Vec<u8> {
        // Room for the personal headers, the slots, and the SMTP client's final ".".
        let mut out = Vec::with_capacity(
            self.shared_headers.len() + self.text.encoded_len() + self.html.encoded_len() + 2048,
        );
        let unsub = p.unsubscribe_url.unwrap_or("");
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(p.date.to_rfc2822().as_bytes());
        out.extend_from_slice(b"\r\nMessage-ID: ");
        out.extend_from_slice(message_id.as_bytes());
        out.extend_from_slice(b"\r\nTo: ");
        out.extend_from_slice(p.to.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(u) = p.unsubscribe_url {
            out.extend_from_slice(b"List-Unsubscribe:\r\n <");
            out.extend_from_slice(u.as_bytes());
            out.extend_from_slice(b">");
            if let Some(m) = p.unsubscribe_mailto {
                out.extend_from_slice(b",\r\n <mailto:");
                out.extend_from_slice(m.as_bytes());
                out.extend_from_slice(b"?subject=unsubscribe>");
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(self.shared_headers.as_bytes());
        out.extend_from_slice(b"\r\nThis is a multipart message in MIME format.\r\n");
        for (ctype, body, html) in [
            ("text/plain", &self.text, false),
            ("text/html", &self.html, true),
        ] {
            out.extend_from_slice(b"\r\n--");
            out.extend_from_slice(self.boundary.as_bytes());
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(ctype.as_bytes());
            out.extend_from_slice(b"; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
            let fill = Fill {
                unsubscribe_url: unsub,
                preferences_url: p.preferences_url.unwrap_or(unsub),
                name: p.name,
                click: p.click,
            };
            body.write(&mut out, &fill, html);
        }
        out.extend_from_slice(b"\r\n--");
        out.extend_from_slice(self.boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        // The SMTP client sends these bytes without dot-stuffing: no line may start with '.'.
        debug_assert!(!out.windows(2).any(|w| w == b"\n."));
        out
    }
}

/// Normalises line endings to CRLF (the body's base64 carries them; clients expect CRLF).
fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Mailbox;

    fn decode(b64_lines: &[u8]) -> Vec<u8> {
        let joined: Vec<u8> = b64_lines
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        STANDARD.decode(joined).unwrap()
    }

    #[test]
    fn body_template_matches_naive_encoding_for_every_alignment() {
        let slots = [("MARK", Slot::UnsubscribeUrl), ("NAME", Slot::Name)];
        for prefix in ["", "a", "ab", "abc", "نص عربي"] {
            for url in ["", "x", "xy", "https://example.org/unsubscribe/abc.def"] {
                for name in ["", "سارة", "Sara"] {
                    let body = format!("{prefix}مرحباًNAME، قبل MARK وسط MARK بعد النهاية{prefix}");
                    let t = BodyTemplate::new(&body, &slots);
                    let mut out = Vec::new();
                    let fill = Fill {
                        unsubscribe_url: url,
                        name,
                        ..Default::default()
                    };
                    t.write(&mut out, &fill, false);
                    assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= LINE + 1));
                    let name_part = if name.is_empty() {
                        String::new()
                    } else {
                        format!(" {name}")
                    };
                    let expected = body.replace("MARK", url).replace("NAME", &name_part);
                    assert_eq!(
                        String::from_utf8(decode(&out)).unwrap(),
                        expected,
                        "{prefix:?} {url:?} {name:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn html_slots_are_escaped_and_latin_names_isolated() {
        let slots = [("MARK", Slot::UnsubscribeUrl), ("NAME", Slot::Name)];
        let t = BodyTemplate::new("<p>مرحباًNAME،</p><a href=\"MARK\">x</a>", &slots);
        let mut out = Vec::new();
        let fill = Fill {
            unsubscribe_url: "https://e.org/u?a=1&b=2",
            name: "Sara O'Neil",
            ..Default::default()
        };
        t.write(&mut out, &fill, true);
        assert_eq!(
            String::from_utf8(decode(&out)).unwrap(),
            "<p>مرحباً <span dir=\"ltr\">Sara O&#39;Neil</span>،</p><a href=\"https://e.org/u?a=1&amp;b=2\">x</a>"
        );
    }

    #[test]
    fn encoded_words_are_short_and_decode() {
        let s = "نشرة الحل نت — 12 يونيو/ حزيران 2020 وأخبار أخرى كثيرة جداً";
        let enc = encode_words(s);
        let mut decoded = Vec::new();
        for w in enc.split("\r\n ") {
            assert!(w.len() <= 75, "{w}");
            let b64 = w.trim_start_matches("=?UTF-8?B?").trim_end_matches("?=");
            decoded.extend(STANDARD.decode(b64).unwrap());
        }
        assert_eq!(String::from_utf8(decoded).unwrap(), s);
    }

    #[test]
    fn message_has_crlf_and_headers() {
        let from = Mailbox::parse("نشرة <n@example.org>").unwrap();
        let m = SlotMarkers::random();
        let html = format!("<p>{}</p><a href=\"{}\">web</a>\n", m.unsubscribe, m.web);
        let text = format!("نص\n{}\n", m.unsubscribe);
        let t = MessageTemplate::new(MessageSpec {
            from: &from,
            reply_to: None,
            subject: "عنوان",
            html: &html,
            text: &text,
            list: Some(("نشرة", "digest.example.org")),
            feedback_id: None,
            slots: Some((&m, "https://e.org/archive/1")),
        });
        let id = t.new_message_id();
        let bytes = t.build(
            &Personal {
                to: "r@example.com",
                unsubscribe_url: Some("https://e.org/u/1"),
                unsubscribe_mailto: None,
                name: "",
                preferences_url: None,
                click: "",
                date: Utc::now(),
            },
            &id,
        );
        let s = String::from_utf8(bytes).unwrap();
        assert!(!s.replace("\r\n", "").contains('\n'));
        assert!(s.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(s.contains(&format!("Message-ID: {id}\r\n")));
        assert!(id.ends_with("@example.org>"));
        assert!(s.is_ascii(), "7-bit on the wire");
        assert!(
            !s.contains("\n."),
            "no line starts with a dot, so no dot-stuffing is needed"
        );
        assert!(!s.contains(&m.key), "every slot filled");
    }

    #[test]
    fn content_cannot_forge_a_slot() {
        // An article image whose URL carries what used to be the fixed marker, or the shape of
        // a marker with another key, reaches the reader as it was written.
        let m = SlotMarkers::random();
        let other = SlotMarkers::random();
        let legacy = SlotMarkers::from_key("");
        let body = format!(
            "<img src=\"https://evil.test/p.gif?t={}\"><img src=\"https://evil.test/p.gif?t={}\"> {}",
            legacy.unsubscribe, other.unsubscribe, m.unsubscribe
        );
        let t = BodyTemplate::new(
            &body,
            &[
                (m.unsubscribe.as_str(), Slot::UnsubscribeUrl),
                (m.name.as_str(), Slot::Name),
            ],
        );
        let mut out = Vec::new();
        let fill = Fill {
            unsubscribe_url: "https://n.org/unsubscribe/SECRET",
            ..Default::default()
        };
        t.write(&mut out, &fill, false);
        let s = String::from_utf8(decode(&out)).unwrap();
        assert_eq!(s.matches("SECRET").count(), 1, "{s}");
        assert!(s.ends_with("https://n.org/unsubscribe/SECRET"));
    }
}
