//! Text helpers: an article's excerpt (plain text, direction controls and trailing hashtags
//! gone, cut at a word), the preheader, and the site's name kept on one line.

use crate::store::Article;

/// `text` with the site's name kept on one line (no-break spaces inside it): «الحل نت» split
/// at a line's end reads as two words.
pub(super) fn keep_site_name(text: &str, n: &crate::config::Newsletter) -> String {
    let site = n.site_name.trim();
    if site.is_empty() || !site.contains(' ') || site.split(' ').count() > 3 {
        return text.to_owned();
    }
    text.replace(site, &site.replace(' ', "\u{a0}"))
}

/// The article's summary, or the start of its text, cut at a word near `max` characters.
pub fn excerpt(a: &Article, max: usize) -> String {
    let source = if a.summary.trim().is_empty() {
        &a.content_html
    } else {
        &a.summary
    };
    let text = strip_bidi_controls(&html_to_text(source));
    truncate_words(strip_trailing_hashtags(&text), max)
}

/// Explicit direction controls (embeddings, overrides, isolates) in content are unbalanced
/// more often than not, and an unclosed U+202E reverses everything after it: they go. The
/// layout's own direction comes from markup and from marks Nashra adds.
pub fn strip_bidi_controls(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .collect()
}

/// Hashtags at the end of a text are shown as the article's tags; the excerpt drops them.
fn strip_trailing_hashtags(text: &str) -> &str {
    let full = text.trim_end();
    let mut t = full;
    // Peel off a trailing run of bare hashtags ("#العراق #الكهرباء")…
    while let Some(i) = t.rfind(char::is_whitespace).map(|i| i + 1) {
        let token = &t[i..];
        if !token.starts_with('#')
            || !token
                .chars()
                .skip(1)
                .all(|c| c.is_alphanumeric() || c == '_')
        {
            break;
        }
        t = t[..i].trim_end();
    }
    // …but only when it stands after a finished sentence; "بين #الصين و #أمريكا" keeps its tags.
    let finished = t.ends_with(['.', '!', '?', '؟', '…', '»', ')', '"', '”']);
    if t.len() < full.len() && finished {
        t
    } else {
        full
    }
}

/// Plain text of an HTML fragment, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    let text = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .string_from_read(html.as_bytes(), 100_000)
        .unwrap_or_else(|_| html.to_owned());
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn truncate_words(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => &cut[..],
    };
    format!("{}…", cut.trim_end_matches([' ', '،', ',', '.', ':', '؛']))
}

/// The hidden line clients show after the subject: the lead titles.
pub(super) fn preheader(articles: &[Article]) -> String {
    let titles: Vec<&str> = articles.iter().take(3).map(|a| a.title.as_str()).collect();
    truncate_words(&titles.join(" • "), 140)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_at_a_word() {
        let t = truncate_words("كلمة ".repeat(200).trim(), 50);
        assert!(t.ends_with('…'));
        assert!(t.chars().count() <= 51);
        assert!(!t.contains("كل…"));
    }

    #[test]
    fn html_to_text_drops_markup() {
        assert_eq!(
            html_to_text("<p>مرحبا <b>بكم</b></p><p>في <a href=\"x\">الموقع</a></p>"),
            "مرحبا بكم في الموقع"
        );
    }

    #[test]
    fn trailing_hashtags_leave_the_excerpt() {
        assert_eq!(
            strip_trailing_hashtags("الكهرباء يومياً. #العراق #الكهرباء"),
            "الكهرباء يومياً."
        );
        assert_eq!(
            strip_trailing_hashtags("بين #بغداد و #واشنطن، قال"),
            "بين #بغداد و #واشنطن، قال"
        );
        assert_eq!(strip_trailing_hashtags("#وحده"), "#وحده");
        assert_eq!(
            strip_trailing_hashtags("تنافس بين #الصين و #الولايات_المتحدة."),
            "تنافس بين #الصين و #الولايات_المتحدة."
        );
        assert_eq!(
            strip_trailing_hashtags("تنافس بين #الصين و #الولايات_المتحدة"),
            "تنافس بين #الصين و #الولايات_المتحدة"
        );
    }
}
