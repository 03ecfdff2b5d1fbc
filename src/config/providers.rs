//! `[providers]`: address domains to count as a mailbox provider's besides the built-in
//! lists (`domain::Providers`), e.g. a newsroom's own domain hosted by Google Workspace. A
//! send's report groups its outcomes by provider with them.

use anyhow::Context;
use serde::Deserialize;

use crate::domain::{Provider, Providers as Classifier};

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Providers {
    pub gmail: Vec<String>,
    pub microsoft: Vec<String>,
    pub yahoo: Vec<String>,
    pub icloud: Vec<String>,
    /// The lists above with the built-in ones, made as the settings are loaded.
    #[serde(skip)]
    pub classifier: Classifier,
}

impl Providers {
    pub(super) fn check(&mut self) -> anyhow::Result<()> {
        let lists = [
            (Provider::Gmail, &self.gmail),
            (Provider::Microsoft, &self.microsoft),
            (Provider::Yahoo, &self.yahoo),
            (Provider::Icloud, &self.icloud),
        ];
        let domains = lists
            .into_iter()
            .flat_map(|(p, list)| list.iter().map(move |d| (p, d.as_str())));
        self.classifier = Classifier::new(domains).context("providers")?;
        Ok(())
    }

    /// The provider of an address's domain (lower-case A-label, as addresses are stored).
    pub fn of_domain(&self, domain: &str) -> Provider {
        self.classifier.of_domain(domain)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;
    use crate::domain::Provider;

    #[test]
    fn the_table_adds_domains_and_refuses_a_bad_one() {
        let s =
            Settings::from_toml_over_defaults("[providers]\ngmail = [\"newsroom-mail.example\"]\n")
                .unwrap();
        assert_eq!(
            s.providers.of_domain("newsroom-mail.example"),
            Provider::Gmail
        );
        assert_eq!(s.providers.of_domain("hotmail.com"), Provider::Microsoft);
        let e = Settings::from_toml_over_defaults(
            "[providers]\ngmail = [\"a.example\"]\nyahoo = [\"a.example\"]\n",
        )
        .unwrap_err();
        assert!(
            format!("{e:#}")
                .contains("providers: `a.example` is listed under both gmail and yahoo"),
            "{e:#}"
        );
        let e = Settings::from_toml_over_defaults("[providers]\nicloud = [\"me@x.example\"]\n")
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("providers: `me@x.example`"),
            "{e:#}"
        );
    }
}
