//! When a schedule's digest arrives, in the words a reader and an editor read: «كل يوم ٧:٠٠
//! صباحاً بتوقيت بغداد» rather than `0 7 * * *` in `Asia/Baghdad`. The common shapes of a
//! crontab line are put in words; anything else is shown as written.

use chrono_tz::Tz;

use super::calendar::digits;
use crate::config::Digits;

/// Crontab's days 0 … 6 (7 is Sunday again) as «كل …» takes them: «كل جمعة».
const DAYS: [&str; 7] = ["أحد", "اثنين", "ثلاثاء", "أربعاء", "خميس", "جمعة", "سبت"];

/// A configured schedule's crontab, in words.
pub fn cron_in_words_of(cron: &crate::domain::CronSchedule, d: Digits) -> String {
    schedule_in_words(cron.expression(), cron.timezone(), d)
}

/// «كل يوم ٧:٠٠ صباحاً بتوقيت بغداد».
pub fn schedule_in_words(expr: &str, tz: Tz, d: Digits) -> String {
    let when = match cron_in_words(expr) {
        Some(w) => digits(&w, d),
        None => format!("حسب الجدول {expr}"),
    };
    format!("{when} {}", zone_in_words(tz))
}

fn cron_in_words(expr: &str) -> Option<String> {
    let f: Vec<&str> = expr.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = f[..] else {
        return None;
    };
    let minute: u32 = minute.parse().ok().filter(|m| *m < 60)?;
    let hours: Vec<u32> = hour
        .split(',')
        .map(|h| h.parse().ok().filter(|h| *h < 24))
        .collect::<Option<_>>()?;
    let times: Vec<String> = hours.iter().map(|h| clock(*h, minute)).collect();
    let times = join_and(&times);
    if month != "*" {
        return None;
    }
    let days = match (dom, dow) {
        ("*", "*") => "كل يوم".to_owned(),
        ("*", "1-5") => "من الاثنين إلى الجمعة".to_owned(),
        ("*", "0-4" | "7,1-4") => "من الأحد إلى الخميس".to_owned(),
        ("*", "6-7" | "0,6" | "6,0") => "كل سبت وأحد".to_owned(),
        ("*", list) => {
            let names: Vec<String> = list
                .split(',')
                .map(|x| x.parse::<usize>().ok().filter(|n| *n <= 7))
                .map(|n| n.map(|n| DAYS[n % 7].to_owned()))
                .collect::<Option<_>>()?;
            format!("كل {}", join_and(&names))
        }
        (n, "*") => {
            let n: u32 = n.parse().ok().filter(|n| (1..=31).contains(n))?;
            format!("يوم {n} من كل شهر")
        }
        _ => return None,
    };
    Some(format!("{days} {times}"))
}

/// «٧:٠٠ صباحاً», «١٢:٣٠ ظهراً», «٧:٠٠ مساءً».
fn clock(hour: u32, minute: u32) -> String {
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    let part = match hour {
        0..=11 => "صباحاً",
        12 => "ظهراً",
        _ => "مساءً",
    };
    format!("{h12}:{minute:02} {part}")
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} و{last}", init.join("، ")),
    }
}

/// «بتوقيت بغداد»: the cities of the zones Arabic newsrooms keep; other zones by their name.
fn zone_in_words(tz: Tz) -> String {
    let city = match tz.name() {
        "Asia/Baghdad" => "بغداد",
        "Asia/Damascus" => "دمشق",
        "Asia/Beirut" => "بيروت",
        "Asia/Amman" => "عمّان",
        "Asia/Jerusalem" | "Asia/Hebron" => "القدس",
        "Asia/Gaza" => "غزة",
        "Asia/Riyadh" => "الرياض",
        "Asia/Kuwait" => "الكويت",
        "Asia/Qatar" => "الدوحة",
        "Asia/Bahrain" => "المنامة",
        "Asia/Dubai" => "دبي",
        "Asia/Muscat" => "مسقط",
        "Asia/Aden" => "عدن",
        "Africa/Cairo" => "القاهرة",
        "Africa/Khartoum" => "الخرطوم",
        "Africa/Tripoli" => "طرابلس",
        "Africa/Tunis" => "تونس",
        "Africa/Algiers" => "الجزائر",
        "Africa/Casablanca" => "الدار البيضاء",
        "Africa/Nouakchott" => "نواكشوط",
        "Europe/Istanbul" => "إسطنبول",
        "Europe/London" => "لندن",
        "Europe/Paris" => "باريس",
        "Europe/Berlin" => "برلين",
        "UTC" | "Etc/UTC" => return "بالتوقيت العالمي".into(),
        other => return format!("بتوقيت {other}"),
    };
    format!("بتوقيت {city}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_schedules_read_in_words() {
        let b: Tz = "Asia/Baghdad".parse().unwrap();
        assert_eq!(
            schedule_in_words("0 7 * * *", b, Digits::Arabic),
            "كل يوم ٧:٠٠ صباحاً بتوقيت بغداد"
        );
        assert_eq!(
            schedule_in_words("30 19 * * 5", b, Digits::Latin),
            "كل جمعة 7:30 مساءً بتوقيت بغداد"
        );
        assert_eq!(
            schedule_in_words("0 7,19 * * 1-5", b, Digits::Latin),
            "من الاثنين إلى الجمعة 7:00 صباحاً و7:00 مساءً بتوقيت بغداد"
        );
        assert_eq!(
            schedule_in_words("0 6 * * 1,4", b, Digits::Latin),
            "كل اثنين وخميس 6:00 صباحاً بتوقيت بغداد"
        );
        assert_eq!(
            schedule_in_words("0 12 1 * *", "UTC".parse().unwrap(), Digits::Latin),
            "يوم 1 من كل شهر 12:00 ظهراً بالتوقيت العالمي"
        );
        assert_eq!(
            schedule_in_words("*/15 * * * *", b, Digits::Latin),
            "حسب الجدول */15 * * * * بتوقيت بغداد"
        );
    }
}
