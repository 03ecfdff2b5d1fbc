//! Right-to-left text done the way mail clients need it.
//!
//! In HTML, every Latin run («S-400», «Huawei», «New York Times») is wrapped in
//! `<span dir="ltr">` so its punctuation stays with it inside an Arabic sentence; `<bdi>` is
//! not used because Gmail and Outlook drop it. Numbers are left bare: Arabic text orders them
//! correctly on its own. In plain text there is no markup, so a line that holds Arabic but
//! would start left-to-right gets a RIGHT-TO-LEFT MARK in front.

use std::{borrow::Cow, sync::LazyLock};

use regex::Regex;

/// A Latin run: starts with a letter (or digits glued to a letter, as in «5G») and may go on
/// through digits and joiners, as long as it ends on a letter or digit.
static LATIN_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:[0-9]+[A-Za-z\u{00C0}-\u{024F}]|[A-Za-z\u{00C0}-\u{024F}])[A-Za-z\u{00C0}-\u{024F}0-9]*(?:[-‐–.&'’/+_ ]+[A-Za-z\u{00C0}-\u{024F}0-9]+)*")
        .expect("valid regex")
});

const RLM: char = '\u{200F}';

pub fn escape_html(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes `text` for HTML and wraps its Latin runs in `<span dir="ltr">`.
pub fn wrap_latin(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut last = 0;
    for m in LATIN_RUN.find_iter(text) {
        out.push_str(&escape_html(&text[last..m.start()]));
        out.push_str("<span dir=\"ltr\">");
        out.push_str(&escape_html(m.as_str()));
        out.push_str("</span>");
        last = m.end();
    }
    out.push_str(&escape_html(&text[last..]));
    out
}

fn is_arabic(c: char) -> bool {
    matches!(c, '\u{0600}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}')
}

/// Direction of the first strongly directional character (Unicode bidi rule P2), roughly:
/// Arabic and Hebrew are right-to-left, Latin letters left-to-right, the rest neutral.
fn first_strong_is_rtl(line: &str) -> Option<bool> {
    line.chars().find_map(|c| {
        if is_arabic(c) || ('\u{0590}'..='\u{05FF}').contains(&c) || c == RLM {
            Some(true)
        } else if c.is_alphabetic() {
            Some(false)
        } else {
            None
        }
    })
}

/// Prefixes RLM to every line that holds Arabic but would otherwise be laid out
/// left-to-right (it starts with Latin, or with digits). URL-only lines stay as they are so
/// clients still turn them into links.
pub fn rtl_plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let starts_ltr_or_digit = body
            .trim_start()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if body.chars().any(is_arabic)
            && (starts_ltr_or_digit || first_strong_is_rtl(body) == Some(false))
        {
            out.push(RLM);
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_runs_are_isolated_numbers_are_not() {
        assert_eq!(
            wrap_latin("نظام صواريخ “S-400” الروسي عام 2015"),
            "نظام صواريخ “<span dir=\"ltr\">S-400</span>” الروسي عام 2015"
        );
        assert_eq!(
            wrap_latin("شركة Huawei و New York Times"),
            "شركة <span dir=\"ltr\">Huawei</span> و <span dir=\"ltr\">New York Times</span>"
        );
        assert_eq!(wrap_latin("شبكات 5G"), "شبكات <span dir=\"ltr\">5G</span>");
    }

    #[test]
    fn wrap_escapes_everything() {
        let out = wrap_latin("<script>alert(1)</script> & \"x\"");
        assert!(!out.contains("<script>"));
        assert!(out.contains("&lt;"));
        assert!(out.contains("&amp;"));
    }

    #[test]
    fn plain_text_lines_get_rlm_when_they_start_ltr() {
        let t = rtl_plain_text("S-400 منظومة روسية\nمرحبا\n2020 عام\nhttps://example.org/x\n");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with(RLM));
        assert!(!lines[1].starts_with(RLM));
        assert!(lines[2].starts_with(RLM));
        assert_eq!(lines[3], "https://example.org/x");
    }
}
