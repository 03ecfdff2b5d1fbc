//! Counted nouns in Arabic: «دقيقة واحدة»، «دقيقتين»، «3 دقائق»، «11 دقيقة»، «100 دقيقة»;
//! «لا نتائج»، «نتيجة واحدة»، «نتيجتان»، «10 نتائج».
//!
//! Arabic chooses the noun's form by the number (CLDR's categories zero, one, two, few, many,
//! other): a dual for two, a plural for three to ten, a singular accusative from eleven to
//! ninety-nine («11 قارئاً»), and the singular again for hundreds («100 قارئ»). Digits stay
//! as the caller writes them ([`count_ar_as`]).

/// The forms of one noun.
pub struct Noun {
    /// Nothing at all, where the phrase stands alone («لا نتائج»); `None`: "0" and the
    /// singular.
    pub zero: Option<&'static str>,
    pub one: &'static str,
    pub two: &'static str,
    /// After 3 to 10.
    pub few: &'static str,
    /// After 11 to 99 (the accusative: «قارئاً»; a feminine noun's is written as its
    /// singular).
    pub many: &'static str,
    /// After 100, 1,000, 101…
    pub singular: &'static str,
}

pub const MINUTE: Noun = Noun {
    zero: None,
    one: "دقيقة واحدة",
    two: "دقيقتين",
    few: "دقائق",
    many: "دقيقة",
    singular: "دقيقة",
};

pub const HOUR: Noun = Noun {
    zero: None,
    one: "ساعة واحدة",
    two: "ساعتين",
    few: "ساعات",
    many: "ساعة",
    singular: "ساعة",
};

/// After «بعد» («بعد ثانيتين»), as [`MINUTE`] and [`HOUR`].
pub const SECOND: Noun = Noun {
    zero: None,
    one: "ثانية واحدة",
    two: "ثانيتين",
    few: "ثوانٍ",
    many: "ثانية",
    singular: "ثانية",
};

/// The console's count of search results, a line of its own.
pub const RESULT: Noun = Noun {
    zero: Some("لا نتائج"),
    one: "نتيجة واحدة",
    two: "نتيجتان",
    few: "نتائج",
    many: "نتيجة",
    singular: "نتيجة",
};

/// Readers, as the subject of a sentence («أُضيف 3 قرّاء»).
pub const READER: Noun = Noun {
    zero: None,
    one: "قارئ واحد",
    two: "قارئان",
    few: "قرّاء",
    many: "قارئاً",
    singular: "قارئ",
};

/// Readers after a preposition («يصل إلى قارئين»): the dual's genitive form.
pub const READER_AFTER: Noun = Noun {
    zero: None,
    one: "قارئ واحد",
    two: "قارئين",
    few: "قرّاء",
    many: "قارئاً",
    singular: "قارئ",
};

/// Lines of a file, as the subject of a sentence («رُفض سطران»).
pub const LINE: Noun = Noun {
    zero: None,
    one: "سطر واحد",
    two: "سطران",
    few: "أسطر",
    many: "سطراً",
    singular: "سطر",
};

/// `n` of `noun`, in the form Arabic grammar asks for.
pub fn count_ar(n: u64, noun: &Noun) -> String {
    count_ar_as(n, noun, &n.to_string())
}

/// [`count_ar`] with the number written as `written` (`1,234`, `١٬٢٣٤`).
pub fn count_ar_as(n: u64, noun: &Noun, written: &str) -> String {
    match (n, n % 100) {
        (0, _) if noun.zero.is_some() => noun.zero.unwrap_or_default().to_owned(),
        (1, _) => noun.one.to_owned(),
        (2, _) => noun.two.to_owned(),
        (_, 3..=10) => format!("{written} {}", noun.few),
        (_, 11..=99) => format!("{written} {}", noun.many),
        _ => format!("{written} {}", noun.singular),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_follow_the_number() {
        assert_eq!(count_ar(1, &MINUTE), "دقيقة واحدة");
        assert_eq!(count_ar(2, &MINUTE), "دقيقتين");
        assert_eq!(count_ar(3, &MINUTE), "3 دقائق");
        assert_eq!(count_ar(10, &MINUTE), "10 دقائق");
        assert_eq!(count_ar(11, &MINUTE), "11 دقيقة");
        assert_eq!(count_ar(99, &MINUTE), "99 دقيقة");
        assert_eq!(count_ar(100, &MINUTE), "100 دقيقة");
        assert_eq!(count_ar(103, &HOUR), "103 ساعات");
    }

    #[test]
    fn results_and_readers_are_counted_as_arabic_says() {
        assert_eq!(count_ar(0, &RESULT), "لا نتائج");
        assert_eq!(count_ar(1, &RESULT), "نتيجة واحدة");
        assert_eq!(count_ar(2, &RESULT), "نتيجتان");
        assert_eq!(count_ar(10, &RESULT), "10 نتائج");
        assert_eq!(count_ar(11, &RESULT), "11 نتيجة");
        assert_eq!(count_ar_as(10_000, &RESULT, "١٠٬٠٠٠"), "١٠٬٠٠٠ نتيجة");
        assert_eq!(count_ar(0, &READER), "0 قارئ");
        assert_eq!(count_ar(2, &READER), "قارئان");
        assert_eq!(count_ar(5, &READER), "5 قرّاء");
        assert_eq!(count_ar(23, &READER), "23 قارئاً");
        assert_eq!(count_ar(300, &READER), "300 قارئ");
        assert_eq!(count_ar(12, &LINE), "12 سطراً");
        assert_eq!(count_ar(2, &READER_AFTER), "قارئين");
        assert_eq!(count_ar(2, &SECOND), "ثانيتين");
        assert_eq!(count_ar(42, &SECOND), "42 ثانية");
        assert_eq!(count_ar(5, &SECOND), "5 ثوانٍ");
    }
}
