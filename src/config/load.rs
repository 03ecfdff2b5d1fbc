//! Loading: `config/default.toml` (embedded, so the binary runs from anywhere, and the one
//! place every key's default lives), an optional `--config FILE` layered over it, and
//! `NASHRA__SECTION__KEY` variables over both; then every value checked once.

use anyhow::{Context, bail};
use figment::{
    Figment,
    providers::{Env, Format, Toml},
};

use super::{settings::Settings, unknown};
use crate::domain::SendWindow;

/// The defaults shipped in the repository, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

impl Settings {
    /// Loads defaults, then `file`, then the environment, and checks every value.
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Settings> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            fig = fig.merge(Toml::file(file));
        }
        fig = fig.merge(Env::prefixed("NASHRA__").split("__"));
        Self::from_figment(fig)
    }

    /// Loads defaults with `toml` layered over them (tests and tools build configs this way).
    pub fn from_toml_over_defaults(toml: &str) -> anyhow::Result<Settings> {
        Self::from_toml_layers(&[toml])
    }

    /// Defaults, then each TOML document in turn.
    pub fn from_toml_layers(layers: &[&str]) -> anyhow::Result<Settings> {
        let fig = layers
            .iter()
            .fold(Figment::from(Toml::string(DEFAULT_TOML)), |f, l| {
                f.merge(Toml::string(l))
            });
        Self::from_figment(fig)
    }

    fn from_figment(fig: Figment) -> anyhow::Result<Settings> {
        let mut settings: Settings = fig.extract().map_err(|e| {
            let unknown = unknown::describe(&fig);
            let msgs: Vec<String> = if unknown.is_empty() {
                e.into_iter().map(describe_figment_error).collect()
            } else {
                unknown
            };
            anyhow::anyhow!("invalid configuration: {}", msgs.join("; "))
        })?;
        settings.delivery.send_window = SendWindow::parse(
            &settings.delivery.window,
            &settings.delivery.window_timezone,
        )
        .context("delivery.window / delivery.window_timezone")?;
        settings.alerts.check()?;
        settings.providers.check()?;
        super::relays::check(&mut settings.relays)?;
        settings.validate()?;
        Ok(settings)
    }
}

fn describe_figment_error(e: figment::Error) -> String {
    let path = e.path.join(".");
    let mut kind = e.kind.to_string();
    if kind.ends_with("expected a duration") {
        // humantime-serde names no example; an operator wants one.
        kind.push_str(" such as \"30s\", \"15m\" or \"2h\"");
    }
    if path.is_empty() {
        kind
    } else {
        format!("{path}: {kind}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Transport;

    #[test]
    fn defaults_load_and_validate() {
        let s = Settings::from_toml_over_defaults("").unwrap();
        assert_eq!(s.delivery.transport, Transport::Outbox);
        assert_eq!(s.server.bind.port(), 8080);
        assert_eq!(s.delivery.retry_after, Duration::from_secs(30));
        assert_eq!(s.schedules[0].name, "daily");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("[delivery]\ntransport = \"pigeon\"", "delivery.transport"),
            (
                "[[schedules]]\nname=\"x\"\ncron=\"61 * * * *\"\ntimezone=\"UTC\"\nsubject=\"s\"",
                "schedules",
            ),
            (
                "[[schedules]]\nname=\"x\"\ncron=\"0 7 * * *\"\ntimezone=\"Mars/Olympus\"\nsubject=\"s\"",
                "schedules",
            ),
            ("[delivery]\ntransport = \"smtp\"", "security.secret"),
            (
                "[delivery]\nretry_after = \"soon\"",
                r#"delivery.retry_after: invalid value string "soon", expected a duration such as "30s""#,
            ),
            ("[server]\npublic_url = \"ftp://x\"", "server.public_url"),
            (
                "[[sections]]\nslug = \"Sport\"\nname = \"رياضة\"",
                "sections[0].slug",
            ),
            (
                "[[sections]]\nslug = \"a\"\nname = \"أ\"\n[[sections]]\nslug = \"a\"\nname = \"ب\"",
                "sections[1].slug",
            ),
            ("[newsletter]\ncalendar = \"julian\"", "newsletter.calendar"),
            (
                "[[schedules]]\nname=\"a,b\"\ncron=\"0 7 * * *\"\ntimezone=\"UTC\"\nsubject=\"s\"",
                "without a comma",
            ),
        ];
        for (toml, key) in cases {
            let err = format!("{:#}", Settings::from_toml_over_defaults(toml).unwrap_err());
            assert!(err.contains(key), "{toml:?} gave {err}");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_the_nearest_known_one() {
        let cases = [
            ("[delivry]\nconcurrency = 3", "did you mean `delivery`?"),
            (
                "[smtp]\nhots = \"x\"",
                "unknown key `smtp.hots`: did you mean `smtp.host`?",
            ),
            (
                "[[dkim]]\ndomain = \"a.b\"\nselector = \"s\"\nalgoritm = \"x\"",
                "`dkim[0].algorithm`?",
            ),
        ];
        for (toml, wanted) in cases {
            let err = format!("{:#}", Settings::from_toml_over_defaults(toml).unwrap_err());
            assert!(err.contains(wanted), "{toml:?} gave {err}");
        }
        // Whichever planned keys are left are said to be planned, not misspelt.
        for key in super::super::unknown::PLANNED {
            let toml = match key.rsplit_once('.') {
                Some((table, k)) => format!("[{table}]\n{k} = 1"),
                None => format!("{key} = 1"),
            };
            let err = format!(
                "{:#}",
                Settings::from_toml_over_defaults(&toml).unwrap_err()
            );
            assert!(
                err.contains("planned but not supported"),
                "{toml:?} gave {err}"
            );
        }
        // Every key of the shipped defaults is known (they load over themselves).
        Settings::from_toml_over_defaults(DEFAULT_TOML).unwrap();
    }

    #[test]
    fn the_development_secrets_stay_on_a_laptop() {
        let own = "[security]\nsecret = \"an-operator-secret-0123456789-0123456789\"\n";
        for (toml, key) in [
            (
                "[server]\npublic_url = \"https://news.example.org\"",
                "security.secret",
            ),
            ("[server]\nbind = \"0.0.0.0:8080\"", "security.secret"),
            (
                &format!("{own}[server]\nbind = \"[::]:8080\""),
                "security.admin_token",
            ),
        ] {
            let err = format!("{:#}", Settings::from_toml_over_defaults(toml).unwrap_err());
            assert!(
                err.contains(key) && err.contains("development value"),
                "{toml:?} gave {err}"
            );
        }
        Settings::from_toml_over_defaults("").expect("loopback and http: the demo runs");
    }

    #[test]
    fn sections_match_categories_tags_and_slugs() {
        let s = Settings::from_toml_over_defaults(
            "[[sections]]\nslug = \"culture\"\nname = \"ثقافة\"\ncategories = [\"ثقافة وفنون\", \"Arts\"]",
        )
        .unwrap();
        let c = &s.sections[0];
        assert!(c.matches(["culture"].into_iter()));
        assert!(c.matches(["arts", "x"].into_iter()));
        assert!(
            c.matches(["#ثقافة_وفنون"].into_iter()),
            "a hashtag of the category"
        );
        assert!(!c.matches(["ثقافة", "sport"].into_iter()));
        assert_eq!(s.schedules[0].label, "يومية");
    }
}
