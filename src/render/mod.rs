//! Rendering: the digest (HTML and plain text), the confirmation email and the public pages.
//!
//! Templates are files under `templates/` that a designer can open; the binary embeds them.
//! A digest is rendered once with slots where a recipient's own data goes (the unsubscribe
//! link, the name in the greeting) and where its own archive link goes; delivery fills them
//! in (see `delivery::message`). Slots are marked with a random key made for each digest, so
//! no text an article brings can contain one. The public web copy is rendered beside the
//! email, without the email's personal footer.

mod bidi;
pub mod calendar;
mod inline;
mod plural;
mod when;

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use tera::{Context, Tera};

pub use bidi::{escape_html, ltr_runs, rtl_plain_text, wrap_latin};
pub use plural::{HOUR, LINE, MINUTE, Noun, READER, RESULT, count_ar, count_ar_as};
pub use when::{cron_in_words_of, schedule_in_words};

use crate::{
    config::{Schedule, Settings},
    store::{Article, RenderedDigest},
};

/// The markers standing in for what delivery fills in. Letters and digits only, so HTML
/// escaping leaves them intact; built from a random key, so content cannot forge them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMarkers {
    /// Stored with the digest: delivery rebuilds the markers from it.
    pub key: String,
    /// A recipient's unsubscribe URL.
    pub unsubscribe: String,
    /// " reader's name" after the greeting (nothing when we have no name).
    pub name: String,
    /// The digest's own archive URL, known once it is stored.
    pub web: String,
    /// A reader's preferences page URL.
    pub preferences: String,
    /// A message's click key (`/r/<key>-<article>`, see `Tokens::click_key`).
    pub click: String,
}

impl SlotMarkers {
    pub fn random() -> SlotMarkers {
        SlotMarkers::from_key(&uuid::Uuid::new_v4().simple().to_string())
    }

    /// The markers of a stored digest; `""` is a digest from before random keys.
    pub fn from_key(key: &str) -> SlotMarkers {
        if key.is_empty() {
            return SlotMarkers {
                key: String::new(),
                unsubscribe: "NASHRAxSLOTxUNSUBSCRIBExURL".into(),
                name: "NASHRAxSLOTxNAME".into(),
                web: "NASHRAxSLOTxWEBxURL".into(),
                preferences: "NASHRAxSLOTxPREFERENCESxURL".into(),
                click: "NASHRAxSLOTxCLICK".into(),
            };
        }
        SlotMarkers {
            key: key.to_owned(),
            unsubscribe: format!("NASHRA{key}U"),
            name: format!("NASHRA{key}N"),
            web: format!("NASHRA{key}W"),
            preferences: format!("NASHRA{key}P"),
            click: format!("NASHRA{key}C"),
        }
    }

    /// The body with every slot filled the same way for everyone (an editor's preview).
    pub fn fill_generic(
        &self,
        body: &str,
        unsubscribe_url: &str,
        preferences_url: &str,
        web_url: &str,
    ) -> String {
        body.replace(&self.unsubscribe, unsubscribe_url)
            .replace(&self.name, "")
            .replace(&self.web, web_url)
            .replace(&self.preferences, preferences_url)
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("digest.html", include_str!("../../templates/digest.html")),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("confirm.html", include_str!("../../templates/confirm.html")),
    ("confirm.txt", include_str!("../../templates/confirm.txt")),
    ("page.html", include_str!("../../templates/page.html")),
];

/// Month names as Levantine and Iraqi sites write them: the Egyptian name, then the Syriac one.
const MONTHS: [&str; 12] = [
    "يناير/ كانون الثاني",
    "فبراير/ شباط",
    "مارس/ آذار",
    "أبريل/ نيسان",
    "مايو/ أيار",
    "يونيو/ حزيران",
    "يوليو/ تموز",
    "أغسطس/ آب",
    "سبتمبر/ أيلول",
    "أكتوبر/ تشرين الأول",
    "نوفمبر/ تشرين الثاني",
    "ديسمبر/ كانون الأول",
];

/// «12 يونيو/ حزيران 2020»: digits left as they are, as the site writes them.
pub fn arabic_date<T: TimeZone>(d: &DateTime<T>) -> String {
    format!("{} {} {}", d.day(), MONTHS[d.month0() as usize], d.year())
}

/// «12 يونيو/ حزيران 2020، 07:00»: two issues of one day differ in the archive list.
pub fn arabic_date_time<T: TimeZone>(d: &DateTime<T>) -> String
where
    T::Offset: std::fmt::Display,
{
    format!("{}، {}", arabic_date(d), d.format("%H:%M"))
}

/// A link in the «الأكثر قراءة» section.
#[derive(Debug, Clone, Serialize)]
pub struct LinkItem {
    pub title: String,
    pub url: String,
}

#[derive(Clone)]
pub struct Renderer {
    tera: Arc<Tera>,
}

#[derive(Serialize)]
struct ArticleView {
    url: String,
    /// Where the digest's links point: the article, or `/r/…` when clicks are counted.
    link: String,
    title_plain: String,
    title_html: String,
    author: String,
    author_html: String,
    date: String,
    excerpt: String,
    excerpt_html: String,
    image: String,
    image_alt: String,
    tags: Vec<TagView>,
}

#[derive(Serialize)]
struct TagView {
    name: String,
    /// The site's page for the tag, when `newsletter.tag_url` says where those are.
    url: Option<String>,
}

#[derive(Serialize)]
struct MostReadView {
    title: String,
    title_html: String,
    url: String,
}

/// A public page: title, lines of text, and optionally a form or a list.
#[derive(Debug, Default, Serialize)]
pub struct Page {
    pub title: String,
    pub lines: Vec<String>,
    pub error: Option<String>,
    /// "subscribe", "unsubscribe", "confirm" or "".
    pub form: &'static str,
    pub action: String,
    pub email: String,
    /// The name the reader typed, shown again when the form comes back with an error.
    pub name_value: String,
    pub entries: Vec<PageEntry>,
    /// «العودة إلى موقع …»: where the reader came from (the article), else the site.
    pub back_url: Option<String>,
    /// The back link's text when it is not the site's home page («العودة إلى المقال»).
    pub back_label: Option<String>,
    /// The sign-up form's signed time stamp (see `Tokens::form_stamp`).
    pub stamp: String,
    /// A list's pages: newer and older entries.
    pub newer_url: Option<String>,
    pub older_url: Option<String>,
    /// The preferences form ("preferences"): its groups of checkboxes.
    pub groups: Vec<ChoiceGroup>,
    /// A reader's preferences page, offered after a confirmation.
    pub preferences_url: Option<String>,
    /// A second form's action (the unsubscribe question's "yes").
    pub unsubscribe_action: String,
    /// The sign-up form's hidden section and schedule, when the page was asked for one.
    pub section: String,
    pub schedule: String,
    /// The article the sign-up form is under (`?article=` of a link from it).
    pub article: String,
    /// A line that reports what was just done («حُفظت اختياراتك»), announced by screen readers.
    pub status: Option<String>,
    /// The preferences link's text when it is not the confirmation page's.
    pub preferences_label: Option<String>,
}

/// A group of checkboxes on the preferences page.
#[derive(Debug, Serialize)]
pub struct ChoiceGroup {
    pub legend: String,
    pub options: Vec<ChoiceOption>,
}

#[derive(Debug, Serialize)]
pub struct ChoiceOption {
    /// The form field: "schedule", "section" or "section.<schedule>".
    pub field: String,
    /// Indented under the option before it.
    pub sub: bool,
    pub value: String,
    pub label: String,
    pub checked: bool,
}

#[derive(Debug, Serialize)]
pub struct PageEntry {
    pub url: String,
    pub subject: String,
    pub date: String,
}

impl Renderer {
    pub fn new() -> anyhow::Result<Renderer> {
        let mut tera = Tera::default();
        let embed = inline::important_inline_styles(inline::EMBED);
        tera.add_raw_templates(
            TEMPLATES
                .iter()
                .copied()
                .chain([("embed.html", embed.as_str())]),
        )
        .context("bad template")?;
        // Tera's default also escapes '/', which turns every URL into `https:&#x2F;&#x2F;…`.
        tera.set_escape_fn(escape_for_tera);
        Ok(Renderer {
            tera: Arc::new(tera),
        })
    }

    /// Renders a digest of `articles` for `schedule`, as of `now`: the email, with its
    /// personal parts and its own archive link left as `slots`, and the public web copy.
    /// With `count_clicks`, the email's article links go through `/r/…`; otherwise (and in
    /// the web copy) straight to the articles.
    #[allow(clippy::too_many_arguments)]
    pub fn digest(
        &self,
        settings: &Settings,
        schedule: &Schedule,
        articles: &[Article],
        most_read: &[LinkItem],
        now: DateTime<Utc>,
        slots: &SlotMarkers,
        count_clicks: bool,
    ) -> anyhow::Result<RenderedDigest> {
        let tz: Tz = schedule.cron.timezone();
        let n = &settings.newsletter;
        let today = now.with_timezone(&tz).date_naive();
        let date_line = calendar::date_line(today, n.calendar, n.digits);
        let subject = schedule.subject.render(
            &date_line,
            &calendar::date_short(today, n.calendar, n.digits),
        )?;
        // A click link carries the message's key (a slot) and the article's id; the web copy
        // links to the articles themselves.
        let click_base = settings.public_url(&format!("/r/{}-", slots.click));
        let mut views: Vec<ArticleView> = articles
            .iter()
            .map(|a| {
                let mut v = article_view(a, &tz, settings);
                if count_clicks {
                    v.link = format!("{click_base}{}", a.id);
                }
                v
            })
            .collect();
        let most_read: Vec<MostReadView> = most_read
            .iter()
            .take(5)
            .map(|m| MostReadView {
                title: m.title.clone(),
                title_html: wrap_latin(&m.title),
                url: m.url.clone(),
            })
            .collect();
        let preheader = preheader(articles);
        let mut ctx = Context::new();
        ctx.insert("lang", &n.lang);
        ctx.insert("name", &keep_site_name(&n.name, n));
        ctx.insert("site_name", &keep_site_name(&n.site_name, n));
        ctx.insert("site_url", &n.site_url);
        ctx.insert("subject", &subject);
        ctx.insert("date_line", &date_line);
        ctx.insert("preheader", &preheader);
        ctx.insert("articles", &views);
        ctx.insert("most_read", &most_read);
        ctx.insert("why", &keep_site_name(&n.why, n));
        ctx.insert("postal_address", &n.postal_address);
        ctx.insert("postal_address_html", &wrap_latin(&n.postal_address));
        ctx.insert("unsubscribe_url", &slots.unsubscribe);
        ctx.insert("preferences_url", &slots.preferences);
        ctx.insert("name_slot", &slots.name);
        ctx.insert("web_url", &slots.web);
        ctx.insert("subscribe_url", &settings.public_url("/subscribe"));
        ctx.insert("archive_url", &settings.public_url("/archive"));
        ctx.insert("web", &false);
        let html = self
            .tera
            .render("digest.html", &ctx)
            .context("failed to render digest.html")?;
        let text = self
            .tera
            .render("digest.txt", &ctx)
            .context("failed to render digest.txt")?;
        ctx.insert("web", &true);
        for v in &mut views {
            v.link.clone_from(&v.url);
        }
        ctx.insert("articles", &views);
        let web_html = self
            .tera
            .render("digest.html", &ctx)
            .context("failed to render the web copy")?;
        Ok(RenderedDigest {
            article_ids: articles.iter().map(|a| a.id).collect(),
            subject,
            html,
            text: rtl_plain_text(&text),
            web_html,
            preheader,
            slot_key: slots.key.clone(),
        })
    }

    /// The double opt-in message: (subject, html, text).
    pub fn confirmation(
        &self,
        settings: &Settings,
        confirm_url: &str,
    ) -> anyhow::Result<(String, String, String)> {
        let mut ctx = Context::new();
        ctx.insert(
            "name",
            &keep_site_name(&settings.newsletter.name, &settings.newsletter),
        );
        ctx.insert("confirm_url", confirm_url);
        ctx.insert("postal_address", &settings.newsletter.postal_address);
        ctx.insert(
            "postal_address_html",
            &wrap_latin(&settings.newsletter.postal_address),
        );
        let html = self.tera.render("confirm.html", &ctx)?;
        let text = self.tera.render("confirm.txt", &ctx)?;
        Ok((
            format!("أكّد اشتراكك في {}", settings.newsletter.name),
            html,
            rtl_plain_text(&text),
        ))
    }

    pub fn page(&self, settings: &Settings, page: &Page) -> String {
        let mut ctx = Context::from_serialize(page).unwrap_or_default();
        let n = &settings.newsletter;
        ctx.insert("name", &keep_site_name(&n.name, n));
        ctx.insert("site_name", &keep_site_name(&n.site_name, n));
        let lines: Vec<String> = page.lines.iter().map(|l| keep_site_name(l, n)).collect();
        ctx.insert("lines", &lines);
        self.tera.render("page.html", &ctx).unwrap_or_else(|e| {
            tracing::error!(error = %e, "page template failed");
            "<!DOCTYPE html><html lang=\"ar\" dir=\"rtl\"><body>خطأ</body></html>".into()
        })
    }

    /// The sign-up fragment a site embeds; `stamp` is its signed time stamp.
    pub fn embed(
        &self,
        settings: &Settings,
        action: &str,
        stamp: &str,
        (section, schedule): (&str, &str),
        article: &str,
    ) -> anyhow::Result<String> {
        let mut ctx = Context::new();
        ctx.insert("article", article);
        let n = &settings.newsletter;
        ctx.insert("prompt", &keep_site_name(&n.prompt, n));
        ctx.insert("site_name", &keep_site_name(&n.site_name, n));
        ctx.insert("action", action);
        ctx.insert("stamp", stamp);
        ctx.insert("section", section);
        ctx.insert("schedule", schedule);
        Ok(self.tera.render("embed.html", &ctx)?)
    }
}

/// `text` with the site's name kept on one line (no-break spaces inside it): «الحل نت» split
/// at a line's end reads as two words.
fn keep_site_name(text: &str, n: &crate::config::Newsletter) -> String {
    let site = n.site_name.trim();
    if site.is_empty() || !site.contains(' ') || site.split(' ').count() > 3 {
        return text.to_owned();
    }
    text.replace(site, &site.replace(' ', "\u{a0}"))
}

fn escape_for_tera(s: &str) -> String {
    escape_html(s).into_owned()
}

fn article_view(a: &Article, tz: &Tz, settings: &Settings) -> ArticleView {
    let n = &settings.newsletter;
    let tag_url = &n.tag_url;
    let date = a
        .published_at
        .unwrap_or(a.arrived_at)
        .pipe(|ms| Utc.timestamp_millis_opt(ms).single().unwrap_or_default())
        .with_timezone(tz);
    let excerpt = excerpt(a, n.excerpt_chars);
    ArticleView {
        url: a.url.clone(),
        link: a.url.clone(),
        title_plain: a.title.clone(),
        title_html: wrap_latin(&a.title),
        author: a.author.clone(),
        author_html: wrap_latin(&a.author),
        date: calendar::date_line(date.date_naive(), n.calendar, n.digits),
        excerpt_html: wrap_latin(&excerpt),
        excerpt,
        image: a.image.clone(),
        // The title follows the image: an alt that repeated it would be read twice. Only
        // the feed's own description of the image is kept.
        image_alt: a.image_alt.clone(),
        tags: a
            .tag_list()
            .into_iter()
            .map(|t| TagView {
                url: (!tag_url.is_empty()).then(|| tag_link(tag_url, &t)),
                name: t,
            })
            .collect(),
    }
}

/// `newsletter.tag_url` with `{tag}` replaced by the tag, percent-encoded.
fn tag_link(template: &str, tag: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(tag.as_bytes()).collect();
    template.replace("{tag}", &enc.replace('+', "%20"))
}

trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}

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
fn preheader(articles: &[Article]) -> String {
    let titles: Vec<&str> = articles.iter().take(3).map(|a| a.title.as_str()).collect();
    truncate_words(&titles.join(" • "), 140)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabic_month_names_as_the_site_writes_them() {
        let d = Utc.with_ymd_and_hms(2020, 6, 12, 9, 0, 0).unwrap();
        assert_eq!(arabic_date(&d), "12 يونيو/ حزيران 2020");
    }

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
