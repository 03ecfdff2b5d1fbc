//! `[[sections]]`: what readers may choose besides schedules, and which articles belong to
//! each (a feed category, an API tag or `section` field, compared without case).

use std::collections::HashSet;

use anyhow::bail;
use serde::Deserialize;

/// A `[[sections]]` entry: what readers tick on the preferences page, and which articles
/// belong to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub slug: String,
    pub name: String,
    /// None by default: the slug alone (as a tag) places articles here.
    #[serde(default)]
    pub categories: Vec<String>,
}

impl Section {
    /// Whether an article with these categories and tags belongs here.
    pub fn matches<'a>(&self, mut labels: impl Iterator<Item = &'a str>) -> bool {
        labels.any(|l| {
            let l = l.trim().trim_start_matches('#');
            l.eq_ignore_ascii_case(&self.slug)
                || self.categories.iter().any(|c| {
                    c.trim()
                        .replace(' ', "_")
                        .eq_ignore_ascii_case(&l.replace(' ', "_"))
                })
        })
    }
}

/// Slugs that fit a reader's stored choice, used once each; names a page can show; at most 12.
pub(super) fn check(sections: &[Section]) -> anyhow::Result<()> {
    let mut slugs = HashSet::new();
    for (i, s) in sections.iter().enumerate() {
        let ok = (1..=40).contains(&s.slug.len())
            && s.slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            bail!(
                "sections[{i}].slug: `{}` must be 1 to 40 of a-z, 0-9 and -",
                s.slug
            );
        }
        if !slugs.insert(s.slug.as_str()) {
            bail!("sections[{i}].slug: `{}` is used twice", s.slug);
        }
        if s.name.trim().is_empty() || s.name.chars().count() > 60 {
            bail!("sections[{i}].name: must be 1 to 60 characters");
        }
    }
    if sections.len() > 12 {
        bail!("sections: at most 12 (each reader's choice is rendered once per send)");
    }
    Ok(())
}
