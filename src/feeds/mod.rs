//! Articles in: RSS 2.0 and Atom feeds (and JSON Feed, which feed-rs also reads).
//!
//! Everything from a feed is untrusted: HTML is sanitised (scripts, event handlers,
//! `javascript:` links and iframes removed, `dir` kept), links must be http(s), titles are
//! reduced to plain text. Hashtags in the text (`#مصطفى_الكاظمي`) become the article's tags.

use std::{sync::LazyLock, time::Duration};

use anyhow::{Context, bail};
use regex::Regex;
use serde::Serialize;

use crate::{
    domain::{canonical_url, safe_url},
    render::{LinkItem, html_to_text},
    store::NewArticle,
};

/// Feeds larger than this are refused rather than read into memory.
const MAX_FEED_BYTES: usize = 10 * 1024 * 1024;
/// An article's HTML larger than this is refused: a digest shows an excerpt, and sanitising
/// and rendering cost grows with it.
pub const MAX_ARTICLE_HTML: usize = 256 * 1024;
/// Deeper nesting than this is refused before the HTML parser sees it: the parser's work on
/// unclosed elements grows faster than their number (80,000 `<div>`s took 48 s).
pub const MAX_HTML_DEPTH: usize = 100;

static HASHTAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s(«“\x22'،,؛])#([\p{L}\p{N}_]*\p{L}[\p{L}\p{N}_]*)").expect("valid regex")
});
static IMG_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)<img\b[^>]*>"#).expect("valid regex"));
static ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\s(src|alt)\s*=\s*(?:"([^"]*)"|'([^']*)')"#).expect("valid regex")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^>]*?(/?)>").expect("valid regex"));

#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestReport {
    pub feeds: usize,
    pub new: usize,
    pub updated: usize,
    pub failed: usize,
}

/// Hashtags in order of first appearance, without '#', no duplicates.
pub fn hashtags(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in HASHTAG.captures_iter(text) {
        let t = c[1].trim_end_matches('_').to_owned();
        if !t.is_empty() && t.chars().count() <= 60 && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Removes what must never reach a reader's mail client from article HTML.
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default()
        .add_generic_attributes(&["dir", "lang"])
        .clean(html)
        .to_string()
}

/// Plain one-line text: tags removed, whitespace collapsed, direction controls dropped,
/// bounded length.
pub fn plain_line(s: &str, max: usize) -> String {
    let t = if s.contains('<') || s.contains('&') {
        html_to_text(s)
    } else {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    crate::render::strip_bidi_controls(&t)
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// How deep elements nest in `html`, counted on its tags the way an HTML parser opens and
/// closes them, without building a tree. Void elements and elements whose end tag a writer
/// may leave out (an unclosed `<p>` or `<li>` closes at the next one) do not nest; `/>` closes
/// an element only inside SVG or MathML (`<div/>` opens a div); an end tag closes the nearest
/// open element of its name and everything opened after it, and one that matches nothing is
/// ignored.
pub fn html_depth(html: &str) -> usize {
    const FLAT: [&str; 29] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup",
        "thead", "tbody", "tfoot", "colgroup", "rp", "rt",
    ];
    let mut open: Vec<String> = Vec::new();
    let mut max = 0usize;
    for c in TAG.captures_iter(html) {
        let name = c[2].to_ascii_lowercase();
        if &c[1] == "/" {
            if let Some(i) = open.iter().rposition(|n| *n == name) {
                open.truncate(i);
            }
            continue;
        }
        let foreign = open.iter().any(|n| n == "svg" || n == "math");
        if FLAT.contains(&name.as_str()) || (foreign && &c[3] == "/") {
            continue;
        }
        open.push(name);
        max = max.max(open.len());
        if max > MAX_HTML_DEPTH {
            break;
        }
    }
    max
}

fn check_html(field: &str, html: &str) -> anyhow::Result<()> {
    if html.len() > MAX_ARTICLE_HTML {
        bail!(
            "{field} is {} bytes; at most {MAX_ARTICLE_HTML} are accepted",
            html.len()
        );
    }
    let depth = html_depth(html);
    if depth > MAX_HTML_DEPTH {
        bail!("{field} nests elements {depth} deep; at most {MAX_HTML_DEPTH} are accepted");
    }
    Ok(())
}

/// Turns an article's raw fields into a stored article: sanitised, tagged, checked.
pub fn normalize(mut a: NewArticle) -> anyhow::Result<NewArticle> {
    // A feed may decode `&#0;`: no text of ours holds a NUL, and PostgreSQL refuses one.
    for s in [
        &mut a.url,
        &mut a.title,
        &mut a.author,
        &mut a.summary,
        &mut a.content_html,
        &mut a.image,
        &mut a.image_alt,
        &mut a.source,
    ]
    .into_iter()
    .chain(a.guid.as_mut())
    .chain(a.tags.iter_mut())
    .chain(a.categories.iter_mut())
    {
        if s.contains('\0') {
            *s = s.replace('\0', "");
        }
    }
    a.url = safe_url(&a.url).context("url must be an http(s) URL")?;
    a.canonical_url = canonical_url(&a.url);
    check_html("title", &a.title)?;
    check_html("summary", &a.summary)?;
    check_html("content_html", &a.content_html)?;
    a.title = plain_line(&a.title, 500);
    if a.title.is_empty() {
        bail!("title is empty");
    }
    a.author = plain_line(&a.author, 200);
    a.content_html = sanitize_html(&a.content_html);
    a.summary = sanitize_html(&a.summary);
    a.image_alt = plain_line(&a.image_alt, 300);
    if let Some(img) = safe_url(&a.image) {
        a.image = img;
    } else {
        // The first image of the text, with its own description.
        let found = IMG_TAG.find(&a.content_html).map(|tag| {
            let mut src = None;
            let mut alt = String::new();
            for c in ATTR.captures_iter(tag.as_str()) {
                let v = c.get(2).or(c.get(3)).map_or("", |m| m.as_str());
                if c[1].eq_ignore_ascii_case("src") {
                    src = safe_url(&html_to_text(v));
                } else {
                    alt = plain_line(v, 300);
                }
            }
            (src, alt)
        });
        match found {
            Some((Some(src), alt)) => {
                a.image = src;
                if a.image_alt.is_empty() {
                    a.image_alt = alt;
                }
            }
            _ => a.image = String::new(),
        }
    }
    a.guid = a
        .guid
        .map(|g| g.trim().chars().take(500).collect::<String>())
        .filter(|g| !g.is_empty());
    let text = format!(
        "{} {} {}",
        a.title,
        html_to_text(&a.summary),
        html_to_text(&a.content_html)
    );
    let mut tags: Vec<String> = a
        .tags
        .iter()
        .map(|t| plain_line(t.trim_start_matches('#'), 60).replace(' ', "_"))
        .collect();
    for t in hashtags(&text) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags.retain(|t| !t.is_empty());
    tags.truncate(12);
    a.tags = tags;
    a.categories = a
        .categories
        .iter()
        .map(|c| plain_line(c, 60))
        .filter(|c| !c.is_empty())
        .take(12)
        .collect();
    a.categories.dedup();
    Ok(a)
}

/// Reads a feed document into articles. Entries without a usable link are skipped.
pub fn parse_feed(bytes: &[u8], source: &str) -> anyhow::Result<Vec<NewArticle>> {
    // feed-rs invents an id when an RSS item has no guid; we want to know, so we can fall
    // back on the link instead.
    let parser = feed_rs::parser::Builder::new()
        .id_generator(|_, _, _| String::new())
        .build();
    let feed = parser
        .parse(bytes)
        .context("not a valid RSS or Atom feed")?;
    let mut out: Vec<NewArticle> = Vec::new();
    for e in feed.entries {
        let Some(link) = e
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .or(e.links.first())
            .map(|l| l.href.clone())
        else {
            continue;
        };
        let (image, image_alt) = e
            .media
            .iter()
            .flat_map(|m| {
                let alt = m
                    .description
                    .as_ref()
                    .map(|d| d.content.clone())
                    .or_else(|| m.title.as_ref().map(|t| t.content.clone()))
                    .unwrap_or_default();
                let alt2 = alt.clone();
                m.thumbnails
                    .iter()
                    .map(move |t| (t.image.uri.clone(), alt.clone()))
                    .chain(
                        m.content
                            .iter()
                            .filter(|c| c.content_type.as_ref().is_none_or(|t| t.ty() == "image"))
                            .filter_map(move |c| {
                                c.url.as_ref().map(|u| (u.to_string(), alt2.clone()))
                            }),
                    )
            })
            .next()
            .unwrap_or_default();
        let raw = NewArticle {
            guid: Some(e.id.clone()).filter(|id| !id.is_empty()),
            url: link,
            title: e.title.map(|t| t.content).unwrap_or_default(),
            author: e
                .authors
                .first()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            summary: e.summary.map(|t| t.content).unwrap_or_default(),
            content_html: e.content.and_then(|c| c.body).unwrap_or_default(),
            image,
            image_alt,
            tags: vec![],
            categories: e
                .categories
                .iter()
                .flat_map(|c| std::iter::once(c.term.clone()).chain(c.label.clone()))
                .collect(),
            published_at: e.published.or(e.updated).map(|d| d.timestamp_millis()),
            source: source.to_owned(),
            ..Default::default()
        };
        match normalize(raw) {
            Ok(a) => out.push(a),
            Err(err) => tracing::warn!(feed = source, error = %err, "feed entry skipped"),
        }
    }
    // A guid is an item's identity within its feed, unless the feed gives one guid to
    // different articles: those are told apart by their URLs instead of merged.
    let mut links: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    for a in &out {
        if let Some(g) = &a.guid {
            links
                .entry(g.clone())
                .or_default()
                .insert(a.canonical_url.clone());
        }
    }
    for a in &mut out {
        if a.guid.as_ref().is_some_and(|g| links[g].len() > 1) {
            tracing::warn!(
                feed = source,
                guid = a.guid.as_deref().unwrap_or(""),
                "one guid on several articles; identifying them by URL"
            );
            a.guid = None;
        }
    }
    Ok(out)
}

/// Fetches a feed over http(s), or reads a `file://` path.
pub async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = url.strip_prefix("file://") {
        return tokio::fs::read(path)
            .await
            .with_context(|| format!("cannot read {path}"));
    }
    let mut resp = client.get(url).send().await.context("request failed")?;
    if !resp.status().is_success() {
        bail!("HTTP {}", resp.status());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.context("body read failed")? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_FEED_BYTES {
            bail!("feed larger than {MAX_FEED_BYTES} bytes");
        }
    }
    Ok(body)
}

pub fn http_client() -> reqwest::Client {
    // Redirects are followed (feeds move), at most five, and one that leaves the feed's host
    // or port is logged: an operator should know their feed now comes from elsewhere.
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("more than 5 redirects");
        }
        if let Some(first) = attempt.previous().first() {
            let to = attempt.url();
            if first.host_str() != to.host_str()
                || first.port_or_known_default() != to.port_or_known_default()
            {
                // Hosts only: a feed's path or query may carry an access token.
                let origin = |u: &reqwest::Url| {
                    format!(
                        "{}://{}:{}",
                        u.scheme(),
                        u.host_str().unwrap_or(""),
                        u.port_or_known_default().unwrap_or(0)
                    )
                };
                tracing::warn!(from = %origin(first), to = %origin(to), "feed redirected to another host or port");
            }
        }
        attempt.follow()
    });
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!(
            "Nashra/",
            env!("CARGO_PKG_VERSION"),
            " (+newsletter)"
        ))
        .build()
        .unwrap_or_default()
}

/// The «الأكثر قراءة» links from the configured feed; empty (section omitted) on any error.
pub async fn most_read(client: &reqwest::Client, url: &str) -> Vec<LinkItem> {
    if url.is_empty() {
        return vec![];
    }
    match fetch(client, url).await.and_then(|b| parse_feed(&b, url)) {
        Ok(items) => items
            .into_iter()
            .take(5)
            .map(|a| LinkItem {
                title: a.title,
                url: a.url,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(feed = url, error = %format!("{e:#}"), "most-read feed unavailable; section omitted");
            vec![]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_from_arabic_text() {
        let t = "بين #بغداد و #واشنطن، رئيس الوزراء #مصطفى_الكاظمي (…) #إيران. #بغداد مرة أخرى، رقم #2020 و a#b";
        assert_eq!(
            hashtags(t),
            vec!["بغداد", "واشنطن", "مصطفى_الكاظمي", "إيران"]
        );
    }

    #[test]
    fn sanitizer_removes_scripts_keeps_dir() {
        let dirty = r#"<p dir="rtl" onclick="x()">نص<script>alert(1)</script><a href="javascript:alert(1)">ر</a><iframe src="https://e.org"></iframe><img src="https://e.org/a.jpg" onerror="y()"></p>"#;
        let clean = sanitize_html(dirty);
        assert!(clean.contains(r#"dir="rtl""#), "{clean}");
        for bad in ["script", "onclick", "javascript:", "iframe", "onerror"] {
            assert!(!clean.contains(bad), "{bad} survived: {clean}");
        }
    }

    #[test]
    fn depth_counts_what_nests() {
        assert_eq!(html_depth("<div><p>a<p>b<ul><li>x<li>y</ul></div>"), 2);
        assert!(html_depth(&"<div>".repeat(150)) > MAX_HTML_DEPTH);
        assert_eq!(html_depth("<p>a<br><img src=x><hr/></p>"), 0);
        assert_eq!(html_depth(&"<table><tr><td>".repeat(3)), 3);
        // What a parser opens whatever the tag claims.
        assert!(html_depth(&"<div/>".repeat(500)) > MAX_HTML_DEPTH);
        assert!(html_depth(&"<div></b>".repeat(500)) > MAX_HTML_DEPTH);
        assert_eq!(
            html_depth(&format!("<svg>{}</svg>", "<path d=\"M0\"/>".repeat(500))),
            1
        );
        assert_eq!(html_depth("<div><b><i>x</div><div>y</div>"), 3);
    }

    #[test]
    fn rss_without_guid_falls_back_to_link() {
        let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
            <item><title>خبر &lt;b&gt;أول&lt;/b&gt;</title><link>https://e.org/1</link><description>&lt;p&gt;نص #بغداد&lt;/p&gt;</description></item>
            <item><title>خبر ثان</title><link>https://e.org/2</link><guid>g-2</guid></item>
            <item><title>سيئ</title><link>javascript:alert(1)</link></item>
            </channel></rss>"#;
        let items = parse_feed(rss.as_bytes(), "test").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].guid, None);
        assert_eq!(items[0].title, "خبر أول");
        assert_eq!(items[0].tags, vec!["بغداد"]);
        assert_eq!(items[1].guid.as_deref(), Some("g-2"));
    }
}
