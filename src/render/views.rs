//! What the templates are given: the public page's fields, the digest's article, tag and
//! «الأكثر قراءة» views, and how an article becomes its view.

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{bidi::wrap_latin, calendar, text::excerpt};
use crate::{config::Settings, store::Article};

/// A link in the «الأكثر قراءة» section.
#[derive(Debug, Clone, Serialize)]
pub struct LinkItem {
    pub title: String,
    pub url: String,
}

#[derive(Serialize)]
pub(super) struct ArticleView {
    pub(super) url: String,
    /// Where the digest's links point: the article, or `/r/…` when clicks are counted.
    pub(super) link: String,
    /// The lead story an editor chose: shown first and larger.
    pub(super) lead: bool,
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
pub(super) struct MostReadView {
    pub(super) title: String,
    pub(super) title_html: String,
    pub(super) url: String,
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
    /// The sign-up form's «أرسلوا لي الأخبار العاجلة» box, ticked (when the form comes back
    /// with an error after the reader ticked it).
    pub alerts_checked: bool,
}

/// A group of checkboxes on the preferences page, and the lists that go with them.
#[derive(Debug, Default, Serialize)]
pub struct ChoiceGroup {
    pub legend: String,
    pub options: Vec<ChoiceOption>,
    /// Drop-down lists under the checkboxes (the reader's city, alerts a day).
    pub selects: Vec<ChoiceSelect>,
}

/// A drop-down list: one value of several (`<select>`).
#[derive(Debug, Serialize)]
pub struct ChoiceSelect {
    /// The form field, also the element's id.
    pub name: String,
    pub label: String,
    /// (value, label, selected).
    pub options: Vec<(String, String, bool)>,
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

pub(super) fn article_view(a: &Article, tz: &Tz, settings: &Settings) -> ArticleView {
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
        lead: false,
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
