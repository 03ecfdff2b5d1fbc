//! The welcome message's words (`newsletter.welcome`): what the reader chose, and when each
//! schedule they take arrives, in the words the preferences page uses («كل يوم ٧:٠٠ صباحاً
//! بتوقيت بغداد»). A local-hour schedule arrives at its hour in the reader's own zone, so it
//! is said in that zone.

use chrono_tz::Tz;
use serde::Serialize;

use super::{bidi::wrap_latin, when::schedule_in_words};
use crate::{
    config::{Deliver, Settings},
    store::Choice,
};

/// The reader a welcome is for, as it is sent, and the links it carries.
pub struct WelcomeReader<'a> {
    /// Their name, or "".
    pub name: &'a str,
    pub choice: &'a Choice,
    /// The zone their clock keeps (theirs, else the newsroom's).
    pub zone: Tz,
    /// The latest published digest: its subject and the URL of its web copy.
    pub latest: Option<(&'a str, String)>,
    pub preferences_url: &'a str,
    pub unsubscribe_url: &'a str,
}

/// A schedule the reader takes, as the template shows it.
#[derive(Debug, Serialize)]
pub(super) struct ChosenSchedule {
    pub(super) label: String,
    label_html: String,
    /// «كل يوم ٧:٠٠ صباحاً بتوقيت بغداد».
    pub(super) when: String,
    when_html: String,
    /// The sections it brings them («السياسة، الاقتصاد» or «كل الأقسام»); `None` when the
    /// newsroom has no sections.
    pub(super) sections: Option<String>,
    sections_html: Option<String>,
}

/// The schedules `choice` takes, in the configuration's order, each with when it arrives
/// for a reader whose clock keeps `zone`, and the sections it brings.
pub(super) fn chosen_schedules(
    settings: &Settings,
    choice: &Choice,
    zone: Tz,
) -> Vec<ChosenSchedule> {
    let digits = settings.newsletter.digits;
    settings
        .schedules
        .iter()
        .filter(|x| choice.takes(&x.name, x.for_new_readers))
        .map(|x| {
            let tz = match x.deliver {
                Deliver::Local => zone,
                Deliver::AtOnce => x.cron.timezone(),
            };
            let when = schedule_in_words(x.cron.expression(), tz, digits);
            let sections =
                (!settings.sections.is_empty()).then(|| match choice.sections_in(&x.name) {
                    None => "كل الأقسام".to_owned(),
                    Some(list) => {
                        let names: Vec<&str> = settings
                            .sections
                            .iter()
                            .filter(|c| list.split(',').any(|s| s == c.slug))
                            .map(|c| c.name.as_str())
                            .collect();
                        if names.is_empty() {
                            "كل الأقسام".to_owned()
                        } else {
                            names.join("، ")
                        }
                    }
                });
            ChosenSchedule {
                label_html: wrap_latin(&x.label),
                label: x.label.clone(),
                when_html: wrap_latin(&when),
                when,
                sections_html: sections.as_deref().map(wrap_latin),
                sections,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> Settings {
        Settings::from_toml_over_defaults(&format!(
            r#"
[newsletter]
digits = "arabic"
[[schedules]]
name = "daily"
label = "يومية"
cron = "0 7 * * *"
timezone = "Asia/Baghdad"
subject = "s"
[[schedules]]
name = "weekly"
label = "أسبوعية"
cron = "0 9 * * 5"
timezone = "Asia/Baghdad"
subject = "s"
default = false
deliver = "local"
{extra}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_reader_who_never_chose_hears_of_the_default_schedules() {
        let s = settings("");
        let c = chosen_schedules(&s, &Choice::default(), chrono_tz::Europe::Berlin);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].label, "يومية");
        assert_eq!(c[0].when, "كل يوم ٧:٠٠ صباحاً بتوقيت بغداد");
        assert_eq!(c[0].sections, None);
    }

    #[test]
    fn a_local_hour_schedule_is_said_in_the_readers_zone_with_their_sections() {
        let s = settings(
            "[[sections]]\nslug = \"politics\"\nname = \"سياسة\"\n\
             [[sections]]\nslug = \"economy\"\nname = \"اقتصاد\"\n",
        );
        let choice = Choice {
            schedules: Some("daily,weekly".into()),
            sections: None,
            by_schedule: vec![("weekly".into(), "economy".into())],
        };
        let c = chosen_schedules(&s, &choice, chrono_tz::Europe::Berlin);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].sections.as_deref(), Some("كل الأقسام"));
        assert_eq!(c[1].when, "كل جمعة ٩:٠٠ صباحاً بتوقيت برلين");
        assert_eq!(c[1].sections.as_deref(), Some("اقتصاد"));
    }
}
