//! `[newsletter]`: who the digest is from and how it reads: names, addresses, language and
//! direction, the footer's lines, the excerpt's length, digits and calendar.

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::{Mailbox, SubscriberEmail};

/// `newsletter.calendar`: the site's Gregorian form, the Umm al-Qura Hijri date, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Calendar {
    #[default]
    Gregorian,
    Hijri,
    Both,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digits {
    #[default]
    Latin,
    Arabic,
}

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Newsletter {
    pub name: String,
    pub from: String,
    pub reply_to: String,
    pub lang: String,
    pub dir: String,
    pub list_id: String,
    pub site_url: String,
    pub postal_address: String,
    pub most_read_feed: String,
    /// The sign-up prompt shown on `/subscribe` and in the embeddable form.
    pub prompt: String,
    /// Footer line telling the reader why the message reached them.
    pub why: String,
    /// Longest excerpt of an article in a digest, in characters (cut at a word).
    pub excerpt_chars: usize,
    /// The site's own name, for «العودة إلى موقع …».
    pub site_name: String,
    /// Where the site shows a hashtag's articles, `{tag}` standing for the tag; empty = tags
    /// are shown as plain text, not links.
    pub tag_url: String,
    /// The newsroom's time zone: the console shows times in it. Empty = the first
    /// schedule's.
    pub timezone: String,
    /// How the console writes numbers: `latin` (1,234) or `arabic` (١٬٢٣٤).
    pub digits: Digits,
    /// Which calendar dates the digest and the pages carry.
    pub calendar: Calendar,
    /// Links in digests go through `/r/…` and clicks are counted per article (no reader).
    pub click_counts: bool,
    /// A reader who confirms gets one welcome message (what they chose, when it comes, the
    /// latest digest): through the mail queue, once per reader, never to an imported one.
    pub welcome: bool,
}

impl Newsletter {
    /// The addresses, the excerpt's length, the tag links, the List-Id and the time zone.
    pub(super) fn check(&self) -> anyhow::Result<()> {
        Mailbox::parse(&self.from)
            .with_context(|| format!("newsletter.from: `{}` is not `Name <address>`", self.from))?;
        if !self.reply_to.is_empty() {
            SubscriberEmail::parse(&self.reply_to)
                .map_err(|_| anyhow::anyhow!("newsletter.reply_to: not a valid address"))?;
        }
        if !(40..=5000).contains(&self.excerpt_chars) {
            bail!(
                "newsletter.excerpt_chars: {} must be between 40 and 5000",
                self.excerpt_chars
            );
        }
        let tag_url = &self.tag_url;
        if !tag_url.is_empty()
            && (crate::domain::safe_url(tag_url).is_none() || !tag_url.contains("{tag}"))
        {
            bail!("newsletter.tag_url: `{tag_url}` must be an http(s) URL containing {{tag}}");
        }
        let lid = &self.list_id;
        if !lid.contains('.')
            || !lid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        {
            bail!("newsletter.list_id: `{lid}` must look like digest.example.org");
        }
        if !self.timezone.is_empty() {
            self.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
                anyhow::anyhow!(
                    "newsletter.timezone: `{}` is not a time zone (e.g. Asia/Baghdad)",
                    self.timezone
                )
            })?;
        }
        Ok(())
    }
}
