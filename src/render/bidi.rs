//! Right-to-left text done the way mail clients need it, decided by the Unicode
//! Bidirectional Algorithm itself rather than by guessing at characters.
//!
//! In HTML, every left-to-right run that holds a Latin letter («S-400», «Huawei»,
//! «info@alhal.net», «https://alhal.net/ar», «John Smith, Reuters») is wrapped in
//! `<span dir="ltr">`. A `dir` attribute makes the span an isolate, which the surrounding
//! Arabic treats as one neutral character, so a wrapper must cover exactly the run the
//! algorithm would have formed on its own: split an address at its «@» and the Arabic
//! paragraph lays the halves out right to left («alhal.net@info»). The runs are therefore
//! taken from the algorithm's resolved levels for the unwrapped text in a right-to-left
//! paragraph. Runs of digits and currency («$999», «2020») are left bare: Arabic text orders
//! them correctly on its own. `<bdi>` is not used because Gmail and Outlook drop it.
//!
//! In plain text there is no markup, and clients differ: some give each line the direction of
//! its first strong character, many lay every line out left to right. An Arabic line is
//! therefore sent as RLM + RLE … PDF: the mark makes a per-line viewer choose right-to-left,
//! and the embedding keeps the whole line right-to-left inside a left-to-right viewer, so a
//! full stop stays at the end, a leading «-» at the start, and «5G» in one piece.

use std::borrow::Cow;

use unicode_bidi::{BidiClass, BidiInfo, Level, bidi_class};

const RLM: char = '\u{200F}';
const RLE: char = '\u{202B}';
const PDF: char = '\u{202C}';

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

/// Byte ranges of `text` that the bidi algorithm lays out left to right inside a
/// right-to-left paragraph and that hold at least one strong left-to-right character.
pub fn ltr_runs(text: &str) -> Vec<std::ops::Range<usize>> {
    if !text.chars().any(|c| bidi_class(c) == BidiClass::L) {
        return vec![];
    }
    let info = BidiInfo::new(text, Some(Level::rtl()));
    let mut runs = Vec::new();
    let mut start: Option<usize> = None;
    let mut has_l = false;
    for (i, c) in text.char_indices() {
        if info.levels[i].is_ltr() && !matches!(c, '\n' | '\r') {
            start.get_or_insert(i);
            has_l |= bidi_class(c) == BidiClass::L;
        } else if let Some(s) = start.take() {
            if has_l {
                runs.push(s..i);
            }
            has_l = false;
        }
    }
    if let Some(s) = start
        && has_l
    {
        runs.push(s..text.len());
    }
    runs
}

/// Escapes `text` for HTML and wraps its left-to-right runs in `<span dir="ltr">`. Text with
/// no Arabic at all is one left-to-right span, punctuation included: in the digest's
/// right-to-left paragraph a Latin title's closing full stop would otherwise jump to its start.
pub fn wrap_latin(text: &str) -> String {
    if !text.chars().any(is_arabic) && text.chars().any(|c| bidi_class(c) == BidiClass::L) {
        return format!("<span dir=\"ltr\">{}</span>", escape_html(text));
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut last = 0;
    for r in ltr_runs(text) {
        out.push_str(&escape_html(&text[last..r.start]));
        out.push_str("<span dir=\"ltr\">");
        out.push_str(&escape_html(&text[r.clone()]));
        out.push_str("</span>");
        last = r.end;
    }
    out.push_str(&escape_html(&text[last..]));
    out
}

fn is_arabic(c: char) -> bool {
    matches!(bidi_class(c), BidiClass::AL | BidiClass::R)
}

/// Makes every line that holds Arabic read right to left in any plain-text viewer (see the
/// module documentation). Lines without Arabic, such as a URL on its own line, stay as they
/// are so clients still turn them into links.
pub fn rtl_plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        if body.chars().any(is_arabic) && !body.starts_with(RLM) {
            out.push(RLM);
            out.push(RLE);
            out.push_str(body);
            out.push(PDF);
            out.push_str(ending);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// What a reader sees, left to right on the screen, for one line laid out in a
/// paragraph of the given direction (`None`: the direction of its first strong character, as
/// per-line plain-text viewers do). Invisible formatting characters are dropped.
#[cfg(test)]
fn visual(line: &str, direction: Option<Level>) -> String {
    let info = BidiInfo::new(line, direction);
    let Some(para) = info.paragraphs.first() else {
        return String::new();
    };
    info.reorder_line(para, para.range.clone())
        .chars()
        .filter(|c| !is_bidi_format(*c))
        .collect()
}

#[cfg(test)]
fn is_bidi_format(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `html` from [`wrap_latin`] as plain text, each `<span dir="ltr">` becoming
/// the isolate it is in a browser (LRI … PDI).
#[cfg(test)]
fn spans_as_isolates(html: &str) -> String {
    html.replace("<span dir=\"ltr\">", "\u{2066}")
        .replace("</span>", "\u{2069}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[&str] = &[
        "راسلونا على info@alhal.net للاستفسار.",
        "تابعوا https://alhal.net/ar يومياً.",
        "قال John Smith, Reuters إن الأمر انتهى.",
        "السعر $999 فقط.",
        "نظام صواريخ “S-400” الروسي عام 2015.",
        "شبكات 5G الجديدة.",
        "شركة Huawei و New York Times.",
        "- عنوان الخبر: S-400 (2020).",
        "تقرير Windows 10 الجديد",
        "Reuters: مقتل 5 أشخاص.",
        "(2020) ما حدث في بغداد؟",
    ];

    #[test]
    fn a_wrapped_run_reads_as_the_bidi_algorithm_reads_the_plain_text() {
        for text in MIXED {
            let expected = visual(text, Some(Level::rtl()));
            let wrapped = spans_as_isolates(&wrap_latin(text));
            assert_eq!(
                visual(&wrapped, Some(Level::rtl())),
                expected,
                "{text} → {}",
                wrap_latin(text)
            );
        }
    }

    #[test]
    fn one_run_each() {
        assert_eq!(
            wrap_latin("راسلونا على info@alhal.net للاستفسار."),
            "راسلونا على <span dir=\"ltr\">info@alhal.net</span> للاستفسار."
        );
        assert_eq!(
            wrap_latin("تابعوا https://alhal.net/ar يومياً"),
            "تابعوا <span dir=\"ltr\">https://alhal.net/ar</span> يومياً"
        );
        assert_eq!(
            wrap_latin("قال John Smith, Reuters إن"),
            "قال <span dir=\"ltr\">John Smith, Reuters</span> إن"
        );
        assert_eq!(wrap_latin("السعر $999 فقط"), "السعر $999 فقط");
        assert_eq!(
            wrap_latin("نظام صواريخ “S-400” الروسي عام 2015"),
            "نظام صواريخ “<span dir=\"ltr\">S-400</span>” الروسي عام 2015"
        );
        assert_eq!(wrap_latin("شبكات 5G"), "شبكات <span dir=\"ltr\">5G</span>");
    }

    #[test]
    fn latin_only_text_reads_left_to_right_with_its_full_stop_at_the_end() {
        // Issue 15, item 11: «.3.4 million…» in the digest.
        let title = "3.4 million people were displaced.";
        let html = wrap_latin(title);
        assert_eq!(html, format!("<span dir=\"ltr\">{title}</span>"));
        assert_eq!(
            visual(&spans_as_isolates(&html), Some(Level::rtl())),
            title,
            "seen as written, in a right-to-left paragraph"
        );
        assert_eq!(wrap_latin("2020"), "2020", "digits alone stay bare");
    }

    #[test]
    fn wrap_escapes_everything() {
        let out = wrap_latin("<script>alert(1)</script> & \"x\"");
        assert!(!out.contains("<script>"));
        assert!(out.contains("&lt;"));
        assert!(out.contains("&amp;"));
    }

    #[test]
    fn plain_text_lines_read_in_order_in_both_kinds_of_viewer() {
        let text = MIXED.join("\n") + "\nhttps://example.org/x\nمرحبا\n";
        let out = rtl_plain_text(&text);
        for (orig, line) in text.lines().zip(out.lines()) {
            let expected = visual(orig, Some(Level::rtl()));
            if !orig.chars().any(is_arabic) {
                assert_eq!(line, orig, "lines without Arabic are left alone");
                continue;
            }
            assert_eq!(visual(line, None), expected, "per-line viewer: {orig}");
            assert_eq!(
                visual(line, Some(Level::ltr())),
                expected,
                "left-to-right viewer: {orig}"
            );
        }
        // The unmarked line breaks in a left-to-right viewer: the test can tell.
        let bare = "شبكات 5G الجديدة.";
        assert_ne!(
            visual(bare, Some(Level::ltr())),
            visual(bare, Some(Level::rtl()))
        );
    }
}
