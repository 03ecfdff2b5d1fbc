//! URLs from outside (feeds, the API, a Referer): accepted only as plain http(s), and
//! reduced to the form that identifies an article whatever link it came with.

/// An http(s) URL with no control characters or spaces, else `None`.
pub fn safe_url(u: &str) -> Option<String> {
    let u = u.trim();
    let lower = u.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && u.len() <= 2048
        && !u
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '<' || c == '>');
    ok.then(|| u.to_owned())
}

/// The URL that identifies an article whatever link it came with: scheme and host in lower
/// case, default port, path percent-encoded one way, no fragment, no tracking parameters
/// (`utm_*`, `fbclid`, `gclid`), no trailing slash.
pub fn canonical_url(u: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(u.trim()) else {
        return u.trim().to_owned();
    };
    parsed.set_fragment(None);
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !(k.starts_with("utm_") || k == "fbclid" || k == "gclid")
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let path = parsed.path().to_owned();
    if path.len() > 1 && path.ends_with('/') {
        parsed.set_path(path.trim_end_matches('/'));
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_links_are_refused() {
        assert!(safe_url("javascript:alert(1)").is_none());
        assert!(safe_url("https://e.org/a b").is_none());
        assert!(safe_url("https://e.org/a\"onmouseover=").is_none());
        assert_eq!(
            safe_url(" https://e.org/a ").as_deref(),
            Some("https://e.org/a")
        );
    }

    #[test]
    fn canonical_urls() {
        for (a, b) in [
            (
                "https://Example.org/a/?utm_source=x#top",
                "https://example.org/a",
            ),
            ("https://example.org/a", "https://example.org/a"),
            (
                "https://example.org:443/%D8%AE%D8%A8%D8%B1/",
                "https://example.org/%D8%AE%D8%A8%D8%B1",
            ),
            (
                "https://example.org/خبر",
                "https://example.org/%D8%AE%D8%A8%D8%B1",
            ),
            (
                "https://example.org/?p=12&fbclid=z",
                "https://example.org/?p=12",
            ),
        ] {
            assert_eq!(canonical_url(a), b, "{a}");
        }
    }
}
