//! A send's report by mailbox provider: per edition and provider (Gmail, Microsoft, Yahoo,
//! iCloud, other), how many messages were delivered, failed, bounced, drew a complaint or
//! an unsubscribe, and how many readers clicked. The store groups by address domain; the
//! configured classifier (`[providers]`) turns domains into providers here, so changing the
//! map changes every report, old ones included. Clicks are counted per provider as they
//! happen (no reader is kept to group later), so they follow the map of that moment.
//!
//! Reading it needs no role beyond a session or a token: counts only, nobody named.

use std::collections::BTreeMap;

use serde::Serialize;

use super::App;
use crate::domain::Provider;

/// What became of a group of messages (see `store::report` for where each comes from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub delivered: i64,
    pub failed: i64,
    pub bounced: i64,
    pub complained: i64,
    pub unsubscribed: i64,
    /// Readers with at least one counted click (`newsletter.click_counts`).
    pub clicked: i64,
}

impl Outcomes {
    fn is_zero(&self) -> bool {
        *self == Outcomes::default()
    }
}

impl std::ops::AddAssign for Outcomes {
    fn add_assign(&mut self, o: Outcomes) {
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.bounced += o.bounced;
        self.complained += o.complained;
        self.unsubscribed += o.unsubscribed;
        self.clicked += o.clicked;
    }
}

/// One edition's messages at one provider.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderRow {
    /// 0 is the main edition (every section); the others are readers' choices.
    pub edition: i64,
    /// The edition's sections (slugs); empty for the main one.
    pub sections: Vec<String>,
    pub provider: Provider,
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

/// The CSV's header: English names, as scripts and spreadsheets read them.
const CSV_HEADER: [&str; 9] = [
    "edition",
    "sections",
    "provider",
    "delivered",
    "failed",
    "bounced",
    "complained",
    "unsubscribed",
    "clicked",
];

impl App {
    /// A send's outcomes per edition and provider, editions in order and providers in
    /// [`Provider::ALL`]'s; groups with nothing to count are left out.
    pub async fn send_report(&self, digest: i64) -> anyhow::Result<Vec<ProviderRow>> {
        let mut groups: BTreeMap<(i64, Provider), Outcomes> = BTreeMap::new();
        for r in self.store.send_report(digest).await? {
            let provider = r
                .domain
                .as_deref()
                .map_or(Provider::Other, |d| self.settings.providers.of_domain(d));
            *groups.entry((r.edition, provider)).or_default() += Outcomes {
                delivered: r.delivered,
                failed: r.failed,
                bounced: r.bounced,
                complained: r.complained,
                unsubscribed: r.unsubscribed,
                clicked: 0,
            };
        }
        for (edition, provider, readers) in self.store.send_clicks(digest).await? {
            let provider = provider.parse().unwrap_or(Provider::Other);
            groups.entry((edition, provider)).or_default().clicked += readers;
        }
        let sections: BTreeMap<i64, Vec<String>> = self
            .store
            .edition_sections(digest)
            .await?
            .into_iter()
            .map(|(e, s)| {
                let slugs = s.split(',').filter(|x| !x.is_empty()).map(str::to_owned);
                (e, slugs.collect())
            })
            .collect();
        Ok(groups
            .into_iter()
            .filter(|(_, o)| !o.is_zero())
            .map(|((edition, provider), outcomes)| ProviderRow {
                edition,
                sections: sections.get(&edition).cloned().unwrap_or_default(),
                provider,
                outcomes,
            })
            .collect())
    }

    /// An edition as the newsroom names it: its sections' names («سياسة، ثقافة»), «كل
    /// الأقسام» for the main one. A section no longer configured keeps its slug.
    pub fn edition_label(&self, sections: &[String]) -> String {
        if sections.is_empty() {
            return "كل الأقسام".into();
        }
        let names: Vec<&str> = sections
            .iter()
            .map(|slug| {
                self.settings
                    .sections
                    .iter()
                    .find(|s| s.slug == *slug)
                    .map_or(slug.as_str(), |s| s.name.as_str())
            })
            .collect();
        names.join("، ")
    }

    /// The report as CSV: a header of English names, then one line per row; the sections'
    /// names (operators' text) cannot start a spreadsheet formula.
    pub fn send_report_csv(&self, rows: &[ProviderRow]) -> anyhow::Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(CSV_HEADER)?;
        for r in rows {
            let o = &r.outcomes;
            let counts = [
                o.delivered,
                o.failed,
                o.bounced,
                o.complained,
                o.unsubscribed,
                o.clicked,
            ]
            .map(|n| n.to_string());
            let label = self.edition_label(&r.sections);
            let mut record = vec![
                r.edition.to_string(),
                crate::csv_io::escape(&label).into_owned(),
                r.provider.as_str().to_owned(),
            ];
            record.extend(counts);
            w.write_record(&record)?;
        }
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_add_up_and_serialize_flat() {
        let mut o = Outcomes {
            delivered: 2,
            clicked: 1,
            ..Default::default()
        };
        o += Outcomes {
            delivered: 1,
            bounced: 1,
            ..Default::default()
        };
        assert_eq!((o.delivered, o.bounced, o.clicked), (3, 1, 1));
        assert!(!o.is_zero() && Outcomes::default().is_zero());
        let row = ProviderRow {
            edition: 1,
            sections: vec!["politics".into()],
            provider: Provider::Icloud,
            outcomes: o,
        };
        let v = serde_json::to_value(&row).unwrap();
        assert_eq!(v["provider"], "icloud");
        assert_eq!(v["delivered"], 3);
        assert_eq!(v["sections"][0], "politics");
    }
}
