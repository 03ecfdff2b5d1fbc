//! The `Renderer`: Tera with the embedded templates, rendering the digest (the email with its
//! slots, and the public web copy), the confirmation and welcome emails, the public pages and
//! the embed.
//!
//! Templates are files under `templates/` that a designer can open; the binary embeds them.

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tera::{Context, Tera};

use super::{
    bidi::{escape_html, rtl_plain_text, wrap_latin},
    calendar, inline,
    note::{note_email_html, note_text},
    slots::SlotMarkers,
    text::{keep_site_name, preheader},
    views::{ArticleView, LinkItem, MostReadView, Page, article_view},
    welcome::{WelcomeReader, chosen_schedules},
};
use crate::{
    config::{Schedule, Settings},
    domain::SubjectTemplate,
    store::{Article, RenderedDigest},
};

const TEMPLATES: &[(&str, &str)] = &[
    ("digest.html", include_str!("../../templates/digest.html")),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("confirm.html", include_str!("../../templates/confirm.html")),
    ("confirm.txt", include_str!("../../templates/confirm.txt")),
    ("page.html", include_str!("../../templates/page.html")),
    ("alert.html", include_str!("../../templates/alert.html")),
    ("alert.txt", include_str!("../../templates/alert.txt")),
    ("welcome.html", include_str!("../../templates/welcome.html")),
    ("welcome.txt", include_str!("../../templates/welcome.txt")),
];

/// What tells a digest's email from an alert's: the template, the time zone its dates are
/// in, the subject, the date line and the footer's reason; and what an editor set.
struct Mail<'a> {
    template: &'static str,
    tz: Tz,
    subject: String,
    date_line: String,
    why: String,
    shaping: &'a Shaping,
}

/// What an editor set for one digest (see the store's `Desk`): a subject template in place
/// of the schedule's, «كلمة التحرير» (sanitised HTML) and the lead story. The articles come
/// in the editor's order already.
#[derive(Debug, Clone, Default)]
pub struct Shaping {
    pub subject: Option<String>,
    pub note_html: Option<String>,
    pub lead: Option<i64>,
}

#[derive(Clone)]
pub struct Renderer {
    tera: Arc<Tera>,
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
        shaping: &Shaping,
    ) -> anyhow::Result<RenderedDigest> {
        let tz: Tz = schedule.cron.timezone();
        let n = &settings.newsletter;
        let today = now.with_timezone(&tz).date_naive();
        let date_line = calendar::date_line(today, n.calendar, n.digits);
        let short = calendar::date_short(today, n.calendar, n.digits);
        let subject = match &shaping.subject {
            Some(s) => SubjectTemplate::parse(s)?.render(&date_line, &short)?,
            None => schedule.subject.render(&date_line, &short)?,
        };
        let mail = Mail {
            template: "digest",
            tz,
            subject,
            date_line,
            why: keep_site_name(&n.why, n),
            shaping,
        };
        self.compose(settings, mail, articles, most_read, slots, count_clicks)
    }

    /// Renders a breaking-news alert of one `article` as of `now`: its own template (the
    /// «عاجل» mark, the one article, no «الأكثر قراءة»), with the same slots, headers and
    /// footer as a digest. The subject is «عاجل: » and the title.
    pub fn alert(
        &self,
        settings: &Settings,
        article: &Article,
        now: DateTime<Utc>,
        slots: &SlotMarkers,
        count_clicks: bool,
    ) -> anyhow::Result<RenderedDigest> {
        let tz = settings.newsroom_tz();
        let n = &settings.newsletter;
        let today = now.with_timezone(&tz).date_naive();
        let title: String = article.title.chars().take(150).collect();
        let mail = Mail {
            template: "alert",
            tz,
            subject: format!("عاجل: {title}"),
            date_line: calendar::date_line(today, n.calendar, n.digits),
            why: keep_site_name(
                &format!(
                    "تصلك هذه الرسالة لأنك طلبت الأخبار العاجلة من {}؛ أوقفها أو حدّد عددها في اليوم من «اختر ما يصلك».",
                    n.name
                ),
                n,
            ),
            shaping: &Shaping::default(),
        };
        self.compose(
            settings,
            mail,
            std::slice::from_ref(article),
            &[],
            slots,
            count_clicks,
        )
    }

    /// A digest or an alert: the email with its slots, and the web copy.
    fn compose(
        &self,
        settings: &Settings,
        mail: Mail,
        articles: &[Article],
        most_read: &[LinkItem],
        slots: &SlotMarkers,
        count_clicks: bool,
    ) -> anyhow::Result<RenderedDigest> {
        let n = &settings.newsletter;
        let Mail {
            template,
            tz,
            subject,
            date_line,
            why,
            shaping,
        } = mail;
        // A click link carries the message's key (a slot) and the article's id; the web copy
        // links to the articles themselves.
        let click_base = settings.public_url(&format!("/r/{}-", slots.click));
        let mut views: Vec<ArticleView> = articles
            .iter()
            .map(|a| {
                let mut v = article_view(a, &tz, settings);
                v.lead = shaping.lead == Some(a.id);
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
        ctx.insert("why", &why);
        let note = shaping.note_html.as_deref().unwrap_or_default();
        ctx.insert("note_html", &note_email_html(note));
        ctx.insert("note_text", &note_text(note));
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
            .render(&format!("{template}.html"), &ctx)
            .with_context(|| format!("failed to render {template}.html"))?;
        let text = self
            .tera
            .render(&format!("{template}.txt"), &ctx)
            .with_context(|| format!("failed to render {template}.txt"))?;
        ctx.insert("web", &true);
        for v in &mut views {
            v.link.clone_from(&v.url);
        }
        ctx.insert("articles", &views);
        let web_html = self
            .tera
            .render(&format!("{template}.html"), &ctx)
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

    /// The welcome a confirmed reader gets once (`newsletter.welcome`): (subject, html,
    /// text). List mail like a digest: its footer carries the reader's preferences and
    /// unsubscribe links, filled in here (one reader, no slots).
    pub fn welcome(
        &self,
        settings: &Settings,
        r: &WelcomeReader<'_>,
    ) -> anyhow::Result<(String, String, String)> {
        let n = &settings.newsletter;
        let name = keep_site_name(&n.name, n);
        let mut ctx = Context::new();
        ctx.insert("lang", &n.lang);
        ctx.insert("name", &name);
        ctx.insert("site_name", &keep_site_name(&n.site_name, n));
        ctx.insert("site_url", &n.site_url);
        let reader = r.name.trim();
        ctx.insert("reader", reader);
        ctx.insert("reader_html", &wrap_latin(reader));
        ctx.insert("schedules", &chosen_schedules(settings, r.choice, r.zone));
        if let Some((subject, url)) = &r.latest {
            ctx.insert("latest_subject", subject);
            ctx.insert("latest_subject_html", &wrap_latin(subject));
            ctx.insert("latest_url", url);
        }
        ctx.insert("archive_url", &settings.public_url("/archive"));
        ctx.insert("preferences_url", r.preferences_url);
        ctx.insert("unsubscribe_url", r.unsubscribe_url);
        ctx.insert(
            "why",
            &keep_site_name(
                &format!("تصلك هذه الرسالة مرة واحدة لأنك أكّدت اشتراكك في {}.", n.name),
                n,
            ),
        );
        ctx.insert("postal_address", &n.postal_address);
        ctx.insert("postal_address_html", &wrap_latin(&n.postal_address));
        let html = self
            .tera
            .render("welcome.html", &ctx)
            .context("failed to render welcome.html")?;
        let text = self
            .tera
            .render("welcome.txt", &ctx)
            .context("failed to render welcome.txt")?;
        Ok((format!("أهلاً بك في {}", n.name), html, rtl_plain_text(&text)))
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
        ctx.insert("zone_script", &settings.public_url("/subscribe/zone.js"));
        ctx.insert("stamp", stamp);
        ctx.insert("section", section);
        ctx.insert("schedule", schedule);
        Ok(self.tera.render("embed.html", &ctx)?)
    }
}

fn escape_for_tera(s: &str) -> String {
    escape_html(s).into_owned()
}
