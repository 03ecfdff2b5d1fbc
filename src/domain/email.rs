//! A subscriber's address, parsed once at the edge.
//!
//! The rules are stricter than RFC 5321 allows on purpose: a newsletter address is typed by a
//! reader into a form, so display-name forms, domain literals, quoted local parts, addresses
//! without a TLD and anything carrying control characters are refused. That also means no
//! value of this type can smuggle a header or a second recipient into a message.

use std::fmt;

use email_address::{EmailAddress, Options};

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
        let opts = Options::default()
            .with_required_tld()
            .without_display_text()
            .without_domain_literal();
        let parsed = EmailAddress::parse_with_options(s, opts).map_err(|_| EmailError::Invalid)?;
        let (local, domain) = (parsed.local_part(), parsed.domain());
        if local.len() > MAX_LOCAL || !domain.is_ascii() && domain.chars().any(|c| c.is_control()) {
            return Err(EmailError::Invalid);
        }
        // The TLD must be letters (or punycode): `a@b.123` is not a mailbox anyone reads.
        let tld = domain.rsplit('.').next().unwrap_or_default();
        if tld.len() < 2 || !(tld.chars().all(char::is_alphabetic) || tld.starts_with("xn--")) {
            return Err(EmailError::Invalid);
        }
        // lettre must accept it too, or the send would fail later.
        s.parse::<lettre::Address>()
            .map_err(|_| EmailError::Invalid)?;
        Ok(SubscriberEmail(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes an address unique: case does not make a different reader.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
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
            long.as_str(),
        ] {
            assert!(SubscriberEmail::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn case_does_not_make_a_new_reader() {
        let a = SubscriberEmail::parse("Reader@Example.COM").unwrap();
        assert_eq!(a.normalized(), "reader@example.com");
        assert_eq!(a.as_str(), "Reader@Example.COM");
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
