//! Counted nouns in Arabic: «دقيقة واحدة»، «دقيقتين»، «3 دقائق»، «11 دقيقة»، «100 دقيقة».
//!
//! Arabic chooses the noun's form by the number (CLDR's categories one, two, few, many,
//! other): a dual for two, a plural for three to ten, a singular accusative from eleven, and
//! the singular again for hundreds. Digits stay as the site writes them.

/// The forms of one noun: (one, two, few, singular after a number).
pub struct Noun {
    pub one: &'static str,
    pub two: &'static str,
    pub few: &'static str,
    pub singular: &'static str,
}

pub const MINUTE: Noun = Noun {
    one: "دقيقة واحدة",
    two: "دقيقتين",
    few: "دقائق",
    singular: "دقيقة",
};

pub const HOUR: Noun = Noun {
    one: "ساعة واحدة",
    two: "ساعتين",
    few: "ساعات",
    singular: "ساعة",
};

/// `n` of `noun`, in the form Arabic grammar asks for.
pub fn count_ar(n: u64, noun: &Noun) -> String {
    match (n, n % 100) {
        (1, _) => noun.one.to_owned(),
        (2, _) => noun.two.to_owned(),
        (_, 3..=10) => format!("{n} {}", noun.few),
        _ => format!("{n} {}", noun.singular),
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
}
