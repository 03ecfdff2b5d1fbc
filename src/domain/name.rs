//! A reader's name, as typed into the sign-up form.
//!
//! The name greets the reader in every digest («مرحباً سارة»), so whoever signs an address
//! up chooses text that lands in someone's inbox. It is kept to what a name is made of:
//! letters of any script, combining marks, spaces and a little punctuation. No digits, no
//! URLs, no markup, no direction controls.

use unicode_normalization::UnicodeNormalization;

pub const MAX_NAME_CHARS: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("a name holds letters, spaces and . , - ' only")]
    Invalid,
}

impl NameError {
    /// What a reader (or an editor) is told, in Arabic.
    pub fn arabic(&self) -> &'static str {
        match self {
            NameError::TooLong => "الاسم أطول من المسموح (60 حرفاً على الأكثر).",
            NameError::Invalid => {
                "اكتب اسمك بالحروف فقط: من دون أرقام أو روابط أو رموز. يمكنك أيضاً ترك الحقل فارغاً."
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriberName(String);

impl SubscriberName {
    /// An empty input is an empty name (the greeting then has none).
    pub fn parse(input: &str) -> Result<SubscriberName, NameError> {
        let collapsed = input.split_whitespace().collect::<Vec<_>>().join(" ");
        let name: String = collapsed.nfc().collect();
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        if !name.chars().all(allowed) {
            return Err(NameError::Invalid);
        }
        // At least one letter; and a full stop ends an initial ("J. Smith"), it never joins
        // two words, so nothing in a name reads as a domain ("evil.test").
        if !name.is_empty() && !name.chars().any(char::is_alphabetic) {
            return Err(NameError::Invalid);
        }
        if name
            .split('.')
            .skip(1)
            .any(|after| after.starts_with(|c: char| c != ' '))
        {
            return Err(NameError::Invalid);
        }
        Ok(SubscriberName(name))
    }

    /// A stored name from before these rules (or an import): kept if it passes, else dropped,
    /// so nothing odd ever reaches a greeting.
    pub fn sanitize(stored: &str) -> String {
        SubscriberName::parse(stored)
            .map(|n| n.0)
            .unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn allowed(c: char) -> bool {
    if c == ' ' || matches!(c, '.' | ',' | '-' | '\'' | '’' | 'ـ' | '،') {
        return true;
    }
    if c.is_alphabetic() {
        // Letter-like symbols that are "alphabetic" but format text: none pass.
        return !matches!(c, '\u{200C}' | '\u{200D}');
    }
    // Combining marks (Arabic harakat, accents): General Category M*.
    is_combining_mark(c)
}

fn is_combining_mark(c: char) -> bool {
    unicode_normalization::char::is_combining_mark(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_any_script() {
        for ok in [
            "سارة",
            "محمّد الأحمد",
            "Sara O'Neil",
            "Jean-Luc",
            "J. Smith",
            "Smith, Sara",
            "Zoë",
            "",
            "  سارة   علي ",
        ] {
            assert!(SubscriberName::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            SubscriberName::parse("  سارة   علي ").unwrap().as_str(),
            "سارة علي"
        );
    }

    #[test]
    fn what_a_name_never_holds() {
        for bad in [
            "\"><a href=https://evil.test>",
            "https://evil.test",
            "visit evil.test now",
            "سارة\u{202E}",
            "Sara\u{2066}x",
            "Sara 2",
            "<b>",
            "...",
            "a@b.org",
            &"ا".repeat(61),
        ] {
            assert!(SubscriberName::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
