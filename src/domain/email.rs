//! A subscriber's address, parsed once at the edge.
//!
//! The rules are stricter than RFC 5321 allows on purpose: a newsletter address is typed by a
//! reader into a form, so display-name forms, domain literals, quoted local parts, addresses
//! without a TLD and anything carrying control characters are refused. That also means no
//! value of this type can smuggle a header or a second recipient into a message.
//!
//! Internationalised addresses are first-class on an Arabic site. A domain is stored and sent
//! as its A-label (`مثال.إختبار` → `xn--mgbh0fb.xn--kgbechtv`), so both spellings are one reader
//! and `RCPT TO` stays ASCII. A local part is kept in Unicode NFC (so NFC and NFD spellings are
//! one reader); a non-ASCII one can only be delivered with SMTPUTF8 (RFC 6531), which
//! [`SubscriberEmail::needs_smtputf8`] tells the caller to check.

use std::fmt;

use email_address::{EmailAddress, Options};
use unicode_normalization::UnicodeNormalization;

/// RFC 5321: 64 octets of local part, 254 octets of path.
const MAX_LEN: usize = 254;
const MAX_LOCAL: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("empty address")]
    Empty,
    #[error("address longer than {MAX_LEN} characters")]
    TooLong,
    #[error("address contains control characters or spaces")]
    Control,
    #[error("not a plain address")]
    Invalid,
}

impl EmailError {
    /// What a reader (or an editor) is told, in Arabic.
    pub fn arabic(&self) -> &'static str {
        match self {
            EmailError::Empty => "يرجى إدخال عنوان بريدك الإلكتروني.",
            EmailError::TooLong => "عنوان البريد الإلكتروني أطول من المسموح.",
            EmailError::Control | EmailError::Invalid => {
                "عنوان البريد الإلكتروني غير صالح. اكتبه بالشكل name@example.com من دون مسافات أو أسماء."
            }
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SubscriberEmail(String);

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<SubscriberEmail, EmailError> {
        let s = input.trim_matches(|c: char| c == ' ' || c == '\t');
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(EmailError::Control);
        }
        if s.contains(['<', '>', '"', '(', ')', ',', ';', ':', '[', ']', '\\']) {
            return Err(EmailError::Invalid);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let local: String = local.nfc().collect();
        if local.is_empty() || local.len() > MAX_LOCAL || local.contains('@') {
            return Err(EmailError::Invalid);
        }
        // Format characters (bidi controls, zero-width joiners) look like nothing and would
        // let one inbox sign up under many spellings.
        if local.chars().any(is_invisible) || domain.chars().any(is_invisible) {
            return Err(EmailError::Invalid);
        }
        // UTS 46: Unicode and upper-case spellings of a domain map to one lower-case A-label.
        let domain = idna::domain_to_ascii(domain).map_err(|_| EmailError::Invalid)?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let opts = Options::default()
            .with_required_tld()
            .without_display_text()
            .without_domain_literal();
        EmailAddress::parse_with_options(&address, opts).map_err(|_| EmailError::Invalid)?;
        // The TLD must be letters (or punycode): `a@b.123` is not a mailbox anyone reads.
        let tld = domain.rsplit('.').next().unwrap_or_default();
        if tld.len() < 2
            || !(tld.chars().all(|c| c.is_ascii_alphabetic()) || tld.starts_with("xn--"))
        {
            return Err(EmailError::Invalid);
        }
        // lettre must accept it too, or the send would fail later.
        address
            .parse::<lettre::Address>()
            .map_err(|_| EmailError::Invalid)?;
        Ok(SubscriberEmail(address))
    }

    /// The address as it is sent: NFC local part, A-label domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes an address unique: case does not make a different reader.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    /// The inbox behind the address: `Sara+news@x.org` and `sara@x.org` are one mailbox.
    /// Confirmation emails are limited per mailbox, so a stranger cannot flood one inbox
    /// through its plus-address variants.
    pub fn mailbox_key(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let mut local = local.split('+').next().unwrap_or(local).to_lowercase();
        let domain = domain.to_lowercase();
        // Gmail ignores dots in the local part: s.a.r.a@ is sara@.
        if domain == "gmail.com" || domain == "googlemail.com" {
            local.retain(|c| c != '.');
            return format!("{local}@gmail.com");
        }
        format!("{local}@{domain}")
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// A non-ASCII local part travels only over SMTPUTF8 (RFC 6531).
    pub fn needs_smtputf8(&self) -> bool {
        !self.0.is_ascii()
    }
}

/// Zero-width and direction-formatting characters (Unicode category Cf and friends).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}')
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Addresses are personal data: Debug never prints one in full.
impl fmt::Debug for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubscriberEmail(***@{})", self.domain())
    }
}

/// `Display Name <address>`, as written in `newsletter.from`.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: SubscriberEmail,
}

impl Mailbox {
    pub fn parse(s: &str) -> Result<Mailbox, EmailError> {
        let s = s.trim();
        match (s.rfind('<'), s.ends_with('>')) {
            (Some(open), true) => {
                let name = s[..open].trim().trim_matches('"').trim();
                if name
                    .chars()
                    .any(|c| c.is_control() || c == '"' || c == '\\')
                {
                    return Err(EmailError::Invalid);
                }
                let email = SubscriberEmail::parse(&s[open + 1..s.len() - 1])?;
                Ok(Mailbox {
                    name: (!name.is_empty()).then(|| name.to_owned()),
                    email,
                })
            }
            _ => Ok(Mailbox {
                name: None,
                email: SubscriberEmail::parse(s)?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_addresses() {
        for ok in [
            "reader@example.com",
            "First.Last+news@sub.example.co.uk",
            "a@xn--mgbh0fb.xn--kgbechtv",
            "a@XN--MGBH0FB.XN--KGBECHTV",
            "a@مثال.إختبار",
        ] {
            assert!(SubscriberEmail::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_what_a_form_should_never_send() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "a@x.test\r\nBcc: b@y.test",
            "a@x.test\nBcc: b@y.test",
            "Reader <reader@example.com>",
            "\"Reader\" <reader@example.com>",
            "reader@[127.0.0.1]",
            "reader@localhost",
            "reader@example",
            "reader@example.123",
            "a,b@example.com",
            "a@example.com, b@example.com",
            "a b@example.com",
            "a@b@example.com",
            "sa\u{202E}ra@example.com",
            "sa\u{200B}ra@example.com",
            long.as_str(),
        ] {
            assert!(SubscriberEmail::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn case_does_not_make_a_new_reader() {
        let a = SubscriberEmail::parse("Reader@Example.COM").unwrap();
        assert_eq!(a.normalized(), "reader@example.com");
        assert_eq!(a.as_str(), "Reader@example.com");
    }

    #[test]
    fn an_idn_domain_is_one_reader_in_either_spelling() {
        let u = SubscriberEmail::parse("user@مثال.إختبار").unwrap();
        let a = SubscriberEmail::parse("user@xn--mgbh0fb.xn--kgbechtv").unwrap();
        let upper = SubscriberEmail::parse("user@XN--MGBH0FB.XN--KGBECHTV").unwrap();
        assert_eq!(u.as_str(), "user@xn--mgbh0fb.xn--kgbechtv");
        assert_eq!(u.normalized(), a.normalized());
        assert_eq!(u.normalized(), upper.normalized());
        assert!(!u.needs_smtputf8(), "the domain travels as its A-label");
    }

    #[test]
    fn a_unicode_local_part_is_one_reader_in_nfc_and_nfd() {
        let nfc = SubscriberEmail::parse("s\u{e9}bastien@example.com").unwrap();
        let nfd = SubscriberEmail::parse("se\u{301}bastien@example.com").unwrap();
        assert_eq!(nfc.normalized(), nfd.normalized());
        assert!(nfc.needs_smtputf8());
        let arabic = SubscriberEmail::parse("سارة@example.com").unwrap();
        assert!(arabic.needs_smtputf8());
    }

    #[test]
    fn plus_and_case_variants_are_one_mailbox() {
        let a = SubscriberEmail::parse("Victim+1@Example.com").unwrap();
        let b = SubscriberEmail::parse("victim+other@example.com").unwrap();
        let c = SubscriberEmail::parse("victim@example.com").unwrap();
        assert_eq!(a.mailbox_key(), c.mailbox_key());
        assert_eq!(b.mailbox_key(), c.mailbox_key());
        assert_ne!(a.normalized(), c.normalized(), "still two subscribers");
        let g = SubscriberEmail::parse("S.A.R.A+x@googlemail.com").unwrap();
        let h = SubscriberEmail::parse("sara@gmail.com").unwrap();
        assert_eq!(g.mailbox_key(), h.mailbox_key());
    }

    #[test]
    fn debug_hides_the_local_part() {
        let a = SubscriberEmail::parse("secret.person@example.com").unwrap();
        assert!(!format!("{a:?}").contains("secret"));
    }

    #[test]
    fn mailbox_with_arabic_name() {
        let m = Mailbox::parse("نشرة الحل نت <newsletter@example.org>").unwrap();
        assert_eq!(m.name.as_deref(), Some("نشرة الحل نت"));
        assert_eq!(m.email.as_str(), "newsletter@example.org");
    }
}
