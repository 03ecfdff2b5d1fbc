//! Mailbox providers: whose servers hold a reader's inbox, told by the address's domain.
//! A send's report counts its outcomes per provider (a provider that bounces or files a
//! newsroom as spam does it to all its users at once), and a warm-up paces each provider
//! apart; both ask the same [`Providers`].
//!
//! The built-in lists are short on purpose: the consumer domains that hold most Arabic
//! readers' inboxes, nothing that needs a DNS lookup (a company on Google Workspace or
//! Microsoft 365 keeps its own domain). Those are what `[providers]` in the configuration is
//! for: `gmail = ["newsroom-mail.example"]` counts that domain as Gmail. A configured domain
//! wins over the built-in lists.
//!
//! Built in (`*` = any country ending: `.fr`, `.co.uk`, `.com.tr`):
//! - Gmail: `gmail.com`, `googlemail.com`
//! - Microsoft: `outlook.*`, `hotmail.*`, `live.*`, `msn.com`
//! - Yahoo: `yahoo.*`, `ymail.com`, `aol.*` (Yahoo runs AOL Mail)
//! - iCloud: `icloud.com`, `me.com`, `mac.com`
//!
//! Everything else is [`Provider::Other`].

use std::{collections::HashMap, fmt, str::FromStr};

use serde::Serialize;

/// Whose servers hold an inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Gmail,
    Microsoft,
    Yahoo,
    Icloud,
    Other,
}

impl Provider {
    /// Every provider, in the order reports list them.
    pub const ALL: [Provider; 5] = [
        Provider::Gmail,
        Provider::Microsoft,
        Provider::Yahoo,
        Provider::Icloud,
        Provider::Other,
    ];

    /// The name scripts, CSV files and the configuration use.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gmail => "gmail",
            Provider::Microsoft => "microsoft",
            Provider::Yahoo => "yahoo",
            Provider::Icloud => "icloud",
            Provider::Other => "other",
        }
    }

    /// How the console names it.
    pub fn arabic(self) -> &'static str {
        match self {
            Provider::Gmail => "جيميل",
            Provider::Microsoft => "مايكروسوفت",
            Provider::Yahoo => "ياهو",
            Provider::Icloud => "آي كلاود",
            Provider::Other => "غيرها",
        }
    }

    /// The services behind it, as their users know them (the console's hint).
    pub fn services(self) -> &'static str {
        match self {
            Provider::Gmail => "Gmail",
            Provider::Microsoft => "Outlook, Hotmail, Live, MSN",
            Provider::Yahoo => "Yahoo, AOL",
            Provider::Icloud => "iCloud",
            Provider::Other => "",
        }
    }

    /// Whose servers a mail exchanger (an MX record's host, lower case, no final dot) is:
    /// a company's own domain on Google Workspace or Microsoft 365 keeps its MX there. `None`
    /// for anyone else's.
    pub fn of_mx(exchange: &str) -> Option<Provider> {
        let under = |suffix: &str| {
            exchange == suffix
                || exchange
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.'))
        };
        if under("google.com") || under("googlemail.com") {
            Some(Provider::Gmail)
        } else if under("outlook.com") || under("hotmail.com") {
            Some(Provider::Microsoft)
        } else if under("yahoodns.net") || under("yahoo.com") {
            Some(Provider::Yahoo)
        } else if under("icloud.com") || under("me.com") {
            Some(Provider::Icloud)
        } else {
            None
        }
    }

    /// The built-in lists (see the module's documentation).
    fn built_in(domain: &str) -> Provider {
        match domain {
            "gmail.com" | "googlemail.com" => return Provider::Gmail,
            "msn.com" => return Provider::Microsoft,
            "ymail.com" => return Provider::Yahoo,
            "icloud.com" | "me.com" | "mac.com" => return Provider::Icloud,
            _ => {}
        }
        match brand(domain) {
            Some("outlook" | "hotmail" | "live") => Provider::Microsoft,
            Some("yahoo" | "aol") => Provider::Yahoo,
            _ => Provider::Other,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Provider::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a provider (gmail, microsoft, yahoo, icloud or other)")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Provider, UnknownProvider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// `brand` of `brand.tld` or `brand.co.uk`-like domains (a second level of two or three
/// letters under a two-letter country): what `hotmail.*` means. `mail.hotmail.com` and
/// `hotmail.example.org` have none.
fn brand(domain: &str) -> Option<&str> {
    let labels: Vec<&str> = domain.split('.').collect();
    match labels.as_slice() {
        [brand, _tld] => Some(brand),
        [brand, second, country] if (2..=3).contains(&second.len()) && country.len() == 2 => {
            Some(brand)
        }
        _ => None,
    }
}

/// Why a configured domain cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderMapError {
    #[error("`{0}` is not a domain (write it as in an address after the @, e.g. newsroom.example)")]
    NotADomain(String),
    #[error("`{domain}` is listed under both {first} and {second}")]
    Twice {
        domain: String,
        first: Provider,
        second: Provider,
    },
}

/// The classifier: the built-in lists and the domains the configuration adds.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    /// Configured domains (lower-case A-labels, as addresses are stored).
    configured: HashMap<String, Provider>,
}

impl Providers {
    /// The built-in lists with `domains` added, each under its provider. A domain is
    /// written as in an address (Unicode or A-label, any case); one listed twice, or that
    /// is no domain, is refused.
    pub fn new<'a>(
        domains: impl IntoIterator<Item = (Provider, &'a str)>,
    ) -> Result<Providers, ProviderMapError> {
        let mut configured = HashMap::new();
        for (provider, given) in domains {
            let domain = normalize(given)?;
            match configured.insert(domain.clone(), provider) {
                Some(first) if first != provider => {
                    return Err(ProviderMapError::Twice {
                        domain,
                        first,
                        second: provider,
                    });
                }
                _ => {}
            }
        }
        Ok(Providers { configured })
    }

    /// The provider of a domain as stored in an address (lower-case A-label).
    pub fn of_domain(&self, domain: &str) -> Provider {
        self.configured
            .get(domain)
            .copied()
            .unwrap_or_else(|| Provider::built_in(domain))
    }

    /// The provider of an address: its domain's.
    pub fn of_address(&self, address: &str) -> Provider {
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        self.of_domain(&domain.to_ascii_lowercase())
    }
}

/// A configured domain as addresses store theirs: the lower-case A-label.
fn normalize(given: &str) -> Result<String, ProviderMapError> {
    let bad = || ProviderMapError::NotADomain(given.to_owned());
    let trimmed = given.trim();
    if trimmed.is_empty() || trimmed.contains(['@', '*', '/', ' ']) {
        return Err(bad());
    }
    let domain = idna::domain_to_ascii(trimmed).map_err(|_| bad())?;
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err(bad());
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_in(address: &str) -> Provider {
        Providers::default().of_address(address)
    }

    #[test]
    fn mail_exchangers_tell_hosted_domains() {
        for (mx, provider) in [
            ("aspmx.l.google.com", Some(Provider::Gmail)),
            ("smtp.google.com", Some(Provider::Gmail)),
            (
                "news-example-org.mail.protection.outlook.com",
                Some(Provider::Microsoft),
            ),
            ("mta5.am0.yahoodns.net", Some(Provider::Yahoo)),
            ("mx01.mail.icloud.com", Some(Provider::Icloud)),
            ("mx.example.org", None),
            ("notgoogle.com", None),
            ("google.com.evil.example", None),
        ] {
            assert_eq!(Provider::of_mx(mx), provider, "{mx}");
        }
    }

    #[test]
    fn the_built_in_lists() {
        for (address, provider) in [
            ("a@gmail.com", Provider::Gmail),
            ("a@googlemail.com", Provider::Gmail),
            ("a@outlook.com", Provider::Microsoft),
            ("a@outlook.sa", Provider::Microsoft),
            ("a@hotmail.com", Provider::Microsoft),
            ("a@hotmail.fr", Provider::Microsoft),
            ("a@hotmail.co.uk", Provider::Microsoft),
            ("a@live.com", Provider::Microsoft),
            ("a@live.com.ar", Provider::Microsoft),
            ("a@msn.com", Provider::Microsoft),
            ("a@yahoo.com", Provider::Yahoo),
            ("a@yahoo.co.jp", Provider::Yahoo),
            ("a@ymail.com", Provider::Yahoo),
            ("a@aol.com", Provider::Yahoo),
            ("a@icloud.com", Provider::Icloud),
            ("a@me.com", Provider::Icloud),
            ("a@mac.com", Provider::Icloud),
            ("a@example.org", Provider::Other),
            ("A@GMAIL.COM", Provider::Gmail),
        ] {
            assert_eq!(built_in(address), provider, "{address}");
        }
    }

    #[test]
    fn lookalikes_are_other() {
        for address in [
            "a@gmail.com.evil.example",
            "a@notgmail.com",
            "a@mail.hotmail.com",
            "a@hotmail.example.org",
            "a@live.example.museum",
            "a@yahoo.newsroom.example",
            "a@icloud.co",
            "a@me.org",
            "nobody",
            "a@",
        ] {
            assert_eq!(built_in(address), Provider::Other, "{address}");
        }
    }

    #[test]
    fn configured_domains_are_added_and_win() {
        let p = Providers::new([
            (Provider::Gmail, "Newsroom-Mail.example"),
            (Provider::Microsoft, "مثال.إختبار"),
            (Provider::Other, "live.fr"),
        ])
        .unwrap();
        assert_eq!(p.of_address("x@newsroom-mail.example"), Provider::Gmail);
        assert_eq!(
            p.of_address("x@xn--mgbh0fb.xn--kgbechtv"),
            Provider::Microsoft
        );
        assert_eq!(p.of_address("x@live.fr"), Provider::Other);
        assert_eq!(p.of_address("x@gmail.com"), Provider::Gmail);
        assert_eq!(
            p.of_address("x@sub.newsroom-mail.example"),
            Provider::Other,
            "a configured domain is matched whole"
        );
    }

    #[test]
    fn a_bad_or_doubled_domain_is_refused() {
        for bad in [
            "",
            "x@y.example",
            "*.example",
            "localhost",
            "a b.example",
            ".example",
        ] {
            assert!(
                matches!(
                    Providers::new([(Provider::Gmail, bad)]),
                    Err(ProviderMapError::NotADomain(_))
                ),
                "{bad}"
            );
        }
        let twice = Providers::new([
            (Provider::Gmail, "mail.example"),
            (Provider::Yahoo, "MAIL.example"),
        ]);
        assert_eq!(
            twice.unwrap_err().to_string(),
            "`mail.example` is listed under both gmail and yahoo"
        );
        assert!(
            Providers::new([
                (Provider::Gmail, "a.example"),
                (Provider::Gmail, "a.example")
            ])
            .is_ok()
        );
    }

    #[test]
    fn names_read_back() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>(), Ok(p));
            assert!(!p.arabic().is_empty());
        }
        assert!("hotmail".parse::<Provider>().is_err());
        assert_eq!(
            serde_json::to_string(&Provider::Icloud).unwrap(),
            "\"icloud\""
        );
    }
}
