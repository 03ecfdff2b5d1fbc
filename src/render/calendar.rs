//! The date a digest carries: the site's Gregorian form, the Hijri date, or both, in Latin or
//! Arabic-Indic digits (`newsletter.calendar`, `newsletter.digits`).
//!
//! The Hijri date is the Umm al-Qura one: Saudi Arabia's official calendar, and the Hijri date
//! Arabic news sites print in their mastheads. Its months come from KACST's published tables,
//! not from a sighting or a formula, so any other rule (the tabular one, a simulated
//! sighting) would put us a day off the rest of the press around a month's start.
//!
//! Conversion is ICU4X's `icu_calendar` 2.x (API read in unicode-org/icu4x, main branch,
//! `components/calendar/src/{date.rs,cal/hijri.rs,cal/mod.rs}`: `Hijri::new_umm_al_qura` is
//! the 2.1.0 name; `Date::extended_year` is deprecated since 2.2.0 and not used here). Its
//! KACST table runs from 1 Muharram 1300 (1882-11-12) to the end of 1600 AH (2174-11-25);
//! outside it ICU silently falls back to the tabular calendar, so [`hijri`] answers `None`
//! there and the date line falls back to the Gregorian form rather than print a guess.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone};
use icu_calendar::{Date, cal::Hijri};

use crate::config::{Calendar, Digits};

/// Month names as Levantine and Iraqi sites write them: the Egyptian name, then the Syriac one.
const MONTHS: [&str; 12] = [
    "يناير/ كانون الثاني",
    "فبراير/ شباط",
    "مارس/ آذار",
    "أبريل/ نيسان",
    "مايو/ أيار",
    "يونيو/ حزيران",
    "يوليو/ تموز",
    "أغسطس/ آب",
    "سبتمبر/ أيلول",
    "أكتوبر/ تشرين الأول",
    "نوفمبر/ تشرين الثاني",
    "ديسمبر/ كانون الأول",
];

/// «12 يونيو/ حزيران 2020»: digits left as they are, as the site writes them.
pub fn arabic_date<T: TimeZone>(d: &DateTime<T>) -> String {
    format!("{} {} {}", d.day(), MONTHS[d.month0() as usize], d.year())
}

/// «12 يونيو/ حزيران 2020، 07:00»: two issues of one day differ in the archive list.
pub fn arabic_date_time<T: TimeZone>(d: &DateTime<T>) -> String
where
    T::Offset: std::fmt::Display,
{
    format!("{}، {}", arabic_date(d), d.format("%H:%M"))
}

/// The Hijri months as the Arabic press writes them (Umm al-Qura's own names).
pub const HIJRI_MONTHS: [&str; 12] = [
    "محرم",
    "صفر",
    "ربيع الأول",
    "ربيع الآخر",
    "جمادى الأولى",
    "جمادى الآخرة",
    "رجب",
    "شعبان",
    "رمضان",
    "شوال",
    "ذو القعدة",
    "ذو الحجة",
];

/// The Hijri years ICU's Umm al-Qura data covers (`ummalqura_data::STARTING_YEAR` and its
/// 301 rows); beyond them its answers are tabular, not Umm al-Qura.
const KACST_YEARS: RangeInclusive<i32> = 1300..=1600;

/// U+0660..U+0669, indexed by the digit's value.
const ARABIC_INDIC: [char; 10] = ['٠', '١', '٢', '٣', '٤', '٥', '٦', '٧', '٨', '٩'];

/// `date` in the Umm al-Qura calendar: (year AH, month 1–12, day); `None` outside the KACST
/// table.
///
/// A calendar date, not a moment: the day is the civil day (from midnight), as newspapers
/// date an issue, not the religious day that starts at sunset.
pub fn hijri(date: NaiveDate) -> Option<(i32, u8, u8)> {
    let iso = Date::try_new_iso(
        date.year(),
        u8::try_from(date.month()).ok()?,
        u8::try_from(date.day()).ok()?,
    )
    .ok()?;
    let h = iso.to_calendar(Hijri::new_umm_al_qura());
    let year = h.era_year();
    // Era "bh" (before the Hijra) counts years backwards: its 1300 is not the table's.
    (year.era.as_str() == "ah" && KACST_YEARS.contains(&year.year))
        .then(|| (year.year, h.month().ordinal, h.day_of_month().0))
}

/// «20 شوال 1441 هـ»; `None` where [`hijri`] has no answer.
pub fn hijri_date(date: NaiveDate) -> Option<String> {
    let (year, month, day) = hijri(date)?;
    let name = HIJRI_MONTHS.get(usize::from(month).checked_sub(1)?)?;
    Some(format!("{day} {name} {year}\u{a0}هـ"))
}

/// `s` with its ASCII digits in the newsletter's numerals; nothing else changes.
///
/// Only for text we compose (dates, counts): a URL or a Latin run would have its digits
/// changed too.
pub fn digits(s: &str, d: Digits) -> String {
    match d {
        Digits::Latin => s.to_owned(),
        Digits::Arabic => s
            .chars()
            .map(|c| c.to_digit(10).map_or(c, |n| ARABIC_INDIC[n as usize]))
            .collect(),
    }
}

/// The date line of a digest or an article: «12 يونيو/ حزيران 2020», «20 شوال 1441 هـ», or
/// both joined by a spaced em dash, in the chosen numerals. A Hijri date the table lacks falls
/// back to the Gregorian one, so a date line is never empty.
pub fn date_line(date: NaiveDate, calendar: Calendar, numerals: Digits) -> String {
    // The same form as the archive and the console (`arabic_date`), from one place.
    let gregorian = || arabic_date(&date.and_time(NaiveTime::MIN).and_utc());
    let line = match calendar {
        Calendar::Gregorian => gregorian(),
        Calendar::Hijri => hijri_date(date).unwrap_or_else(gregorian),
        Calendar::Both => {
            hijri_date(date).map_or_else(gregorian, |h| format!("{} — {h}", gregorian()))
        }
    };
    digits(&line, numerals)
}

/// A date short enough for a subject line: «12 يونيو», or «20 شوال» when the newsletter
/// dates itself in the Hijri calendar only (falling back to the Gregorian day as
/// [`date_line`] does).
pub fn date_short(date: NaiveDate, calendar: Calendar, numerals: Digits) -> String {
    let gregorian = || {
        let month = MONTHS[date.month0() as usize]
            .split('/')
            .next()
            .unwrap_or_default();
        format!("{} {month}", date.day())
    };
    let hijri_short = || {
        let (_, month, day) = hijri(date)?;
        let name = HIJRI_MONTHS.get(usize::from(month).checked_sub(1)?)?;
        Some(format!("{day} {name}"))
    };
    let short = match calendar {
        Calendar::Hijri => hijri_short().unwrap_or_else(gregorian),
        Calendar::Gregorian | Calendar::Both => gregorian(),
    };
    digits(&short, numerals)
}

/// [`date_line`] and the local time («…، 07:00»): two issues of one day differ in a list.
pub fn date_time_line<T: chrono::TimeZone>(
    at: &chrono::DateTime<T>,
    calendar: Calendar,
    numerals: Digits,
) -> String
where
    T::Offset: std::fmt::Display,
{
    let time = digits(&at.format("%H:%M").to_string(), numerals);
    format!("{}، {time}", date_line(at.date_naive(), calendar, numerals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
    }

    #[test]
    fn arabic_month_names_as_the_site_writes_them() {
        let d = chrono::Utc.with_ymd_and_hms(2020, 6, 12, 9, 0, 0).unwrap();
        assert_eq!(arabic_date(&d), "12 يونيو/ حزيران 2020");
    }

    // Every expected value below was checked two ways: with PyPI's `hijridate` 2.6.0 (an
    // Umm al-Qura converter on R. H. van Gent's KACST tables), and by hand from the year rows
    // of icu4x's `cal/hijri/ummalqura_data.rs` (ICU4C's table). Both agree on all of them.

    #[test]
    fn short_dates_for_subjects() {
        let d = day(2020, 6, 12);
        assert_eq!(date_short(d, Calendar::Both, Digits::Latin), "12 يونيو");
        assert_eq!(
            date_short(d, Calendar::Gregorian, Digits::Arabic),
            "١٢ يونيو"
        );
        assert_eq!(date_short(d, Calendar::Hijri, Digits::Latin), "20 شوال");
    }

    #[test]
    fn known_umm_al_qura_dates() {
        assert_eq!(hijri(day(2020, 6, 12)), Some((1441, 10, 20)));
        assert_eq!(hijri(day(2026, 11, 30)), Some((1448, 6, 20)));
    }

    #[test]
    fn new_hijri_year() {
        // 1445 ended with a 30-day Dhu al-Hijjah.
        assert_eq!(hijri(day(2024, 7, 6)), Some((1445, 12, 30)));
        assert_eq!(hijri(day(2024, 7, 7)), Some((1446, 1, 1)));
        // 1446 ended with a 29-day one.
        assert_eq!(hijri(day(2025, 6, 25)), Some((1446, 12, 29)));
        assert_eq!(hijri(day(2025, 6, 26)), Some((1447, 1, 1)));
    }

    #[test]
    fn ramadan_and_shawwal_start() {
        assert_eq!(hijri(day(2024, 3, 10)), Some((1445, 8, 29)));
        assert_eq!(hijri(day(2024, 3, 11)), Some((1445, 9, 1)));
        assert_eq!(hijri(day(2026, 2, 17)), Some((1447, 8, 29)));
        assert_eq!(hijri(day(2026, 2, 18)), Some((1447, 9, 1)));
        // Ramadan 1447 has 30 days.
        assert_eq!(hijri(day(2026, 3, 19)), Some((1447, 9, 30)));
        assert_eq!(hijri(day(2026, 3, 20)), Some((1447, 10, 1)));
    }

    #[test]
    fn outside_the_table_is_none() {
        // First row of the table (ICU's only: hijridate starts at 1343 AH).
        assert_eq!(hijri(day(1882, 11, 12)), Some((1300, 1, 1)));
        assert_eq!(hijri(day(1882, 11, 11)), None);
        assert_eq!(hijri(day(2200, 1, 1)), None);
        // Era "bh": about 1300 years before the Hijra.
        assert_eq!(hijri(day(-640, 1, 1)), None);
        assert_eq!(hijri_date(day(1800, 1, 1)), None);
    }

    #[test]
    fn hijri_date_names_the_month() {
        assert_eq!(
            hijri_date(day(2020, 6, 12)).as_deref(),
            Some("20 شوال 1441\u{a0}هـ")
        );
        assert_eq!(
            hijri_date(day(2026, 11, 30)).as_deref(),
            Some("20 جمادى الآخرة 1448\u{a0}هـ")
        );
        assert_eq!(
            hijri_date(day(2024, 7, 7)).as_deref(),
            Some("1 محرم 1446\u{a0}هـ")
        );
        assert_eq!(
            hijri_date(day(2024, 7, 6)).as_deref(),
            Some("30 ذو الحجة 1445\u{a0}هـ")
        );
    }

    #[test]
    fn date_lines() {
        let d = day(2020, 6, 12);
        assert_eq!(
            date_line(d, Calendar::Gregorian, Digits::Latin),
            "12 يونيو/ حزيران 2020"
        );
        assert_eq!(
            date_line(d, Calendar::Hijri, Digits::Latin),
            "20 شوال 1441\u{a0}هـ"
        );
        assert_eq!(
            date_line(d, Calendar::Both, Digits::Latin),
            "12 يونيو/ حزيران 2020 — 20 شوال 1441\u{a0}هـ"
        );
        assert_eq!(
            date_line(d, Calendar::Both, Digits::Arabic),
            "١٢ يونيو/ حزيران ٢٠٢٠ — ٢٠ شوال ١٤٤١\u{a0}هـ"
        );
    }

    #[test]
    fn date_line_falls_back_to_gregorian() {
        let d = day(2200, 1, 1);
        assert_eq!(
            date_line(d, Calendar::Hijri, Digits::Latin),
            "1 يناير/ كانون الثاني 2200"
        );
        assert_eq!(
            date_line(d, Calendar::Both, Digits::Latin),
            "1 يناير/ كانون الثاني 2200"
        );
    }

    #[test]
    fn digits_changes_only_ascii_digits() {
        assert_eq!(digits("0123456789", Digits::Arabic), "٠١٢٣٤٥٦٧٨٩");
        assert_eq!(
            digits("abc/XYZ: 07:30 ٣", Digits::Arabic),
            "abc/XYZ: ٠٧:٣٠ ٣"
        );
        assert_eq!(digits("12/06 ab:9", Digits::Latin), "12/06 ab:9");
    }
}
