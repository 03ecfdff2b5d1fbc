//! A reader's time zone, as it comes from outside: the sign-up form's hidden field that the
//! reader's browser fills (`Intl.DateTimeFormat().resolvedOptions().timeZone`), the
//! preferences page's list of cities, an import's `timezone` column.
//!
//! The browser's field is the reader's to forge, so it is taken only when it names a zone
//! of the IANA database as `chrono-tz` compiles it in; anything else is no zone at all and
//! the reader keeps the newsroom's (`NULL` in the store), never an error for them. No IP
//! geolocation: the browser's own setting is what the reader lives by.

use chrono_tz::Tz;

/// Longer than any IANA name (the longest, `America/Argentina/ComodRivadavia`, is 32
/// bytes); a longer value is not read at all.
pub const MAX_ZONE_BYTES: usize = 64;

/// A zone of the IANA database, by its name there (`Africa/Casablanca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReaderZone(Tz);

impl ReaderZone {
    /// The zone `input` names, trimmed; `None` for anything else (too long, a control
    /// character or NUL, a name the database does not have, `Mars/Olympus`). Names are
    /// matched as the database spells them (`Asia/Baghdad`, not `asia/baghdad`): browsers
    /// send them so.
    pub fn parse(input: &str) -> Option<ReaderZone> {
        let s = input.trim();
        if s.is_empty() || s.len() > MAX_ZONE_BYTES || s.chars().any(char::is_control) {
            return None;
        }
        s.parse::<Tz>().ok().map(ReaderZone)
    }

    /// The IANA name, as stored.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub fn tz(&self) -> Tz {
        self.0
    }
}

impl From<Tz> for ReaderZone {
    fn from(tz: Tz) -> ReaderZone {
        ReaderZone(tz)
    }
}

/// A city the preferences page offers, by the zone it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct City {
    /// The IANA name.
    pub zone: &'static str,
    /// What a reader looks for, in Arabic.
    pub label: &'static str,
}

/// Where the newsroom's readers live: the Arab world's capitals, its diaspora's cities, and
/// a few more. The page puts the newsroom's own first; a reader whose zone is not here
/// (kept from their browser) still sees it, by its IANA name.
pub const CITIES: [City; 29] = [
    City {
        zone: "Asia/Baghdad",
        label: "بغداد",
    },
    City {
        zone: "Africa/Cairo",
        label: "القاهرة",
    },
    City {
        zone: "Africa/Casablanca",
        label: "الدار البيضاء",
    },
    City {
        zone: "Asia/Dubai",
        label: "دبي",
    },
    City {
        zone: "Asia/Riyadh",
        label: "الرياض",
    },
    City {
        zone: "Asia/Beirut",
        label: "بيروت",
    },
    City {
        zone: "Asia/Damascus",
        label: "دمشق",
    },
    City {
        zone: "Asia/Amman",
        label: "عمّان",
    },
    City {
        zone: "Asia/Kuwait",
        label: "الكويت",
    },
    City {
        zone: "Asia/Qatar",
        label: "الدوحة",
    },
    City {
        zone: "Asia/Bahrain",
        label: "المنامة",
    },
    City {
        zone: "Asia/Muscat",
        label: "مسقط",
    },
    City {
        zone: "Asia/Aden",
        label: "صنعاء",
    },
    City {
        zone: "Asia/Gaza",
        label: "غزة",
    },
    City {
        zone: "Africa/Tunis",
        label: "تونس",
    },
    City {
        zone: "Africa/Algiers",
        label: "الجزائر",
    },
    City {
        zone: "Africa/Tripoli",
        label: "طرابلس",
    },
    City {
        zone: "Africa/Khartoum",
        label: "الخرطوم",
    },
    City {
        zone: "Europe/Istanbul",
        label: "إسطنبول",
    },
    City {
        zone: "Europe/Berlin",
        label: "برلين",
    },
    City {
        zone: "Europe/Paris",
        label: "باريس",
    },
    City {
        zone: "Europe/London",
        label: "لندن",
    },
    City {
        zone: "Europe/Stockholm",
        label: "ستوكهولم",
    },
    City {
        zone: "Europe/Amsterdam",
        label: "أمستردام",
    },
    City {
        zone: "America/New_York",
        label: "نيويورك",
    },
    City {
        zone: "America/Detroit",
        label: "ديترويت",
    },
    City {
        zone: "America/Toronto",
        label: "تورونتو",
    },
    City {
        zone: "Asia/Kolkata",
        label: "كلكتا",
    },
    City {
        zone: "Australia/Sydney",
        label: "سيدني",
    },
];

/// The Arabic name of the city that keeps `zone`, if the list has one.
pub fn city_of(zone: &str) -> Option<&'static str> {
    CITIES.iter().find(|c| c.zone == zone).map(|c| c.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_is_taken_only_when_the_database_has_it() {
        let z = ReaderZone::parse("  Africa/Casablanca ").unwrap();
        assert_eq!(z.name(), "Africa/Casablanca");
        assert_eq!(ReaderZone::parse("UTC").unwrap().name(), "UTC");
        for bad in [
            "",
            "   ",
            "Mars/Olympus",
            "asia/baghdad",
            "Asia/Baghdad\0",
            "Asia/\u{0}Baghdad",
            "Asia/Baghdad\nX",
            "../../etc/passwd",
            "<script>",
            "+03:00",
        ] {
            assert_eq!(ReaderZone::parse(bad), None, "{bad:?}");
        }
        let long = format!("Asia/{}", "B".repeat(10_000));
        assert_eq!(ReaderZone::parse(&long), None);
        let padded = format!("Asia/Baghdad{}", " ".repeat(100));
        assert!(ReaderZone::parse(&padded).is_some(), "trimmed first");
    }

    #[test]
    fn every_city_is_a_zone_once() {
        for c in CITIES {
            let z = ReaderZone::parse(c.zone).unwrap_or_else(|| panic!("{}", c.zone));
            assert_eq!(z.name(), c.zone);
            assert_eq!(CITIES.iter().filter(|o| o.zone == c.zone).count(), 1);
            assert!(!c.label.is_empty());
        }
        assert_eq!(city_of("Asia/Baghdad"), Some("بغداد"));
        assert_eq!(city_of("Asia/Tokyo"), None);
    }
}
