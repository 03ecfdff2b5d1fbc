//! The reader's clock on the preferences page: their city (the newsroom's first, as
//! «بغداد (توقيت النشرة)»), whether breaking news reaches them and how much of it a day;
//! shown as the page's last groups and read back from its form.
//!
//! The newsroom's option carries no value: a reader who keeps it follows the newsroom's zone
//! (stored as nothing) wherever the newsroom moves. A zone from the reader's browser that
//! the list lacks is still shown, by its IANA name, and stays chosen.

use crate::{
    app::App,
    config::MAX_ALERTS_PER_DAY,
    domain::{CITIES, ReaderZone, zone::city_of},
    render::{ChoiceGroup, ChoiceOption, ChoiceSelect, Noun, calendar, count_ar_as},
    store::ReaderClock,
};

/// Breaking-news messages, counted («٣ أخبار عاجلة»).
const ALERT: Noun = Noun {
    zero: None,
    one: "خبر عاجل واحد",
    two: "خبران عاجلان",
    few: "أخبار عاجلة",
    many: "خبراً عاجلاً",
    singular: "خبر عاجل",
};

/// The form's fields.
pub(super) const ZONE_FIELD: &str = "tz";
pub(super) const ALERTS_FIELD: &str = "alerts";
pub(super) const PER_DAY_FIELD: &str = "alerts_per_day";

/// The alerts group and the city group, as the reader's `clock` has them now.
pub(super) fn groups(app: &App, clock: &ReaderClock) -> Vec<ChoiceGroup> {
    let digits = app.settings.newsletter.digits;
    let per_day = app.alerts_per_day_of(clock);
    let alerts = ChoiceGroup {
        legend: "الأخبار العاجلة".into(),
        options: vec![ChoiceOption {
            field: ALERTS_FIELD.into(),
            sub: false,
            value: "1".into(),
            label: "أرسلوا لي الأخبار العاجلة فور وقوعها".into(),
            checked: clock.alerts,
        }],
        selects: vec![ChoiceSelect {
            name: PER_DAY_FIELD.into(),
            label: "في اليوم الواحد، على الأكثر:".into(),
            options: (1..=MAX_ALERTS_PER_DAY)
                .map(|n| {
                    let written = calendar::digits(&n.to_string(), digits);
                    (
                        n.to_string(),
                        count_ar_as(u64::from(n), &ALERT, &written),
                        n == per_day,
                    )
                })
                .collect(),
        }],
    };
    let zone = ChoiceGroup {
        legend: "توقيتك".into(),
        options: vec![],
        selects: vec![ChoiceSelect {
            name: ZONE_FIELD.into(),
            label: "المدينة التي تتبع توقيتها، لتصلك النشرة في موعدها عندك:".into(),
            options: city_options(app, clock),
        }],
    };
    vec![alerts, zone]
}

/// The newsroom's city first (no value: the newsroom's zone), the reader's own zone if the
/// list lacks it, then the list.
fn city_options(app: &App, clock: &ReaderClock) -> Vec<(String, String, bool)> {
    let newsroom = app.settings.newsroom_tz();
    let current = app.zone_of(clock);
    let own = match city_of(newsroom.name()) {
        Some(city) => format!("{city} (توقيت النشرة)"),
        None => format!("توقيت النشرة ({})", newsroom.name()),
    };
    let mut options = vec![(String::new(), own, current == newsroom)];
    if current != newsroom && city_of(current.name()).is_none() {
        options.push((current.name().to_owned(), current.name().to_owned(), true));
    }
    options.extend(
        CITIES
            .iter()
            .filter(|c| c.zone != newsroom.name())
            .map(|c| {
                let chosen = current != newsroom && c.zone == current.name();
                (c.zone.to_owned(), c.label.to_owned(), chosen)
            }),
    );
    options
}

/// The clock the form asks for over the reader's `current` one, or the page's error in
/// Arabic. A field the form lacks (a page from before these fields) keeps what the reader
/// has.
pub(super) fn read(
    app: &App,
    current: &ReaderClock,
    fields: &[(String, String)],
) -> Result<ReaderClock, &'static str> {
    let last = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let zone = match last(ZONE_FIELD) {
        None => current.zone,
        Some("") => None,
        Some(z) => Some(ReaderZone::parse(z).ok_or(
            "لم نحفظ شيئاً: المدينة التي اخترتها غير معروفة لدينا. اختر مدينتك من القائمة.",
        )?),
    };
    let per_day = match last(PER_DAY_FIELD) {
        None => app.alerts_per_day_of(current),
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_ALERTS_PER_DAY).contains(n))
            .ok_or("لم نحفظ شيئاً: اختر عدد الأخبار العاجلة في اليوم من القائمة.")?,
    };
    let alerts = last(ALERTS_FIELD) == Some("1");
    Ok(app.clock_from(current, zone, alerts, per_day))
}
