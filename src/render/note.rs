//! «كلمة التحرير»: an editor's short note under a digest's masthead. Paragraphs, bold and
//! links only, sanitised like articles; in the email each paragraph is an RTL block with its
//! Latin runs isolated, and in the plain part it is text with each link's address after it.

use std::sync::LazyLock;

use regex::Regex;

use super::bidi::{escape_html, wrap_latin};

/// The longest note an editor may write (characters, before sanitising).
pub const MAX_NOTE: usize = 4000;

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<(/?)([a-z]+)([^>]*)>").expect("valid"));
/// Markup the note keeps: text with none of it is typed text, even with a `<` in it.
static MARKUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)</?(p|br|b|strong|a)\b").expect("valid"));
static HREF: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"href="([^"]*)""#).expect("valid"));

const P_STYLE: &str = "margin:0 0 10px 0;direction:rtl;text-align:right;color:#1a1a1a;font-size:16px;line-height:1.8;";

/// What is kept of an editor's note: `<p>`, `<br>`, `<b>`, `<strong>` and `<a href>` (http,
/// https, mailto). Text typed without tags becomes paragraphs (a blank line between them)
/// and line breaks. Empty when nothing is left.
pub fn sanitize_note(input: &str) -> String {
    let html = if MARKUP.is_match(input) {
        input.to_owned()
    } else {
        input
            .replace("\r\n", "\n")
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| format!("<p>{}</p>", escape_html(p).replace('\n', "<br>")))
            .collect()
    };
    let clean = ammonia::Builder::empty()
        .add_tags(["p", "br", "b", "strong", "a"])
        .add_tag_attributes("a", ["href"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(None)
        .clean(&html)
        .to_string();
    let clean = clean.trim();
    // Markup with no text (an empty paragraph, a lone break) is no note.
    if TAG.replace_all(clean, "").trim().is_empty() {
        String::new()
    } else {
        clean.to_owned()
    }
}

/// The text between tags, as the sanitiser escaped it, back to plain characters.
fn unescape(s: &str) -> String {
    s.replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A sanitised note for the email: paragraphs with `dir="rtl"` and inline direction, links
/// styled, Latin runs in `<span dir="ltr">`.
pub fn note_email_html(clean: &str) -> String {
    let mut out = String::with_capacity(clean.len() * 2);
    let mut last = 0;
    let mut open_p = false;
    for c in TAG.captures_iter(clean) {
        let m = c.get(0).expect("whole match");
        let text = &clean[last..m.start()];
        if !text.trim().is_empty() && !open_p {
            // Text outside a paragraph (after a break at the top level) gets one.
            out.push_str(&format!("<p dir=\"rtl\" style=\"{P_STYLE}\">"));
            open_p = true;
        }
        out.push_str(&wrap_latin(&unescape(text)));
        last = m.end();
        match (&c[1], &c[2]) {
            ("", "p") => {
                if open_p {
                    out.push_str("</p>");
                }
                out.push_str(&format!("<p dir=\"rtl\" style=\"{P_STYLE}\">"));
                open_p = true;
            }
            ("/", "p") => {
                if open_p {
                    out.push_str("</p>");
                }
                open_p = false;
            }
            ("", "a") => {
                let href = HREF
                    .captures(&c[3])
                    .map(|h| h[1].to_owned())
                    .unwrap_or_default();
                out.push_str(&format!(
                    "<a href=\"{href}\" style=\"color:#0b5394;text-decoration:underline;\">"
                ));
            }
            ("", "br") => out.push_str("<br>"),
            (close, tag @ ("a" | "b" | "strong")) => out.push_str(&format!("<{close}{tag}>")),
            _ => {}
        }
    }
    let text = &clean[last..];
    if !text.trim().is_empty() && !open_p {
        out.push_str(&format!("<p dir=\"rtl\" style=\"{P_STYLE}\">"));
        open_p = true;
    }
    out.push_str(&wrap_latin(&unescape(text)));
    if open_p {
        out.push_str("</p>");
    }
    out
}

/// A sanitised note as an editor edits it again: plain text when it is only paragraphs and
/// line breaks (which typing makes again), else its HTML.
pub fn note_for_editing(clean: &str) -> String {
    let only_text = TAG
        .captures_iter(clean)
        .all(|c| matches!(&c[2], "p" | "br"));
    if only_text {
        note_text(clean)
    } else {
        clean.to_owned()
    }
}

/// A sanitised note as plain text: a blank line between paragraphs, a link's address in
/// parentheses after its text.
pub fn note_text(clean: &str) -> String {
    let mut out = String::with_capacity(clean.len());
    let mut last = 0;
    let mut href = None;
    for c in TAG.captures_iter(clean) {
        let m = c.get(0).expect("whole match");
        out.push_str(&unescape(&clean[last..m.start()]));
        last = m.end();
        match (&c[1], &c[2]) {
            ("/", "p") => out.push_str("\n\n"),
            ("", "br") => out.push('\n'),
            ("", "a") => href = HREF.captures(&c[3]).map(|h| unescape(&h[1])),
            ("/", "a") => {
                if let Some(h) = href.take() {
                    out.push_str(&format!(" ({h})"));
                }
            }
            _ => {}
        }
    }
    out.push_str(&unescape(&clean[last..]));
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_keeps_paragraphs_bold_and_links_only() {
        let clean = sanitize_note(
            "<p onclick=\"x()\">أهلاً <b>بكم</b> <script>alert(1)</script></p>\
             <p><a href=\"javascript:alert(1)\">خطر</a> <a href=\"https://example.org/a?b=1&amp;c=2\">رابط</a></p>\
             <img src=x onerror=y><style>p{}</style>",
        );
        assert!(!clean.contains("script") && !clean.contains("onclick") && !clean.contains("img"));
        assert!(!clean.contains("javascript"), "{clean}");
        assert!(clean.contains("<b>بكم</b>"), "{clean}");
        assert!(
            clean.contains(r#"<a href="https://example.org/a?b=1&amp;c=2">رابط</a>"#),
            "{clean}"
        );
    }

    #[test]
    fn typed_text_becomes_paragraphs() {
        let clean = sanitize_note("سطر أول\nسطر ثان\n\nفقرة <ثانية> & Reuters");
        assert_eq!(
            clean,
            "<p>سطر أول<br>سطر ثان</p><p>فقرة &lt;ثانية&gt; &amp; Reuters</p>"
        );
        assert_eq!(
            note_text(&clean),
            "سطر أول\nسطر ثان\n\nفقرة <ثانية> & Reuters"
        );
        let html = note_email_html(&clean);
        assert_eq!(html.matches("<p dir=\"rtl\"").count(), 2, "{html}");
        assert!(html.contains("<span dir=\"ltr\">Reuters</span>"), "{html}");
        assert!(html.contains("&lt;ثانية&gt; &amp;"), "{html}");
        assert_eq!(sanitize_note("  <p> </p><br> "), "");
        assert_eq!(sanitize_note(""), "");
    }

    #[test]
    fn links_show_their_address_in_the_plain_part() {
        let clean = sanitize_note("<p>اقرأ <a href=\"https://example.org/x\">التحقيق</a> كاملاً</p>");
        assert_eq!(
            note_text(&clean),
            "اقرأ التحقيق (https://example.org/x) كاملاً"
        );
        let html = note_email_html(&clean);
        assert!(
            html.contains("<a href=\"https://example.org/x\" style="),
            "{html}"
        );
    }
}
