//! `[[relays]]`: several SMTP relays for `delivery.transport = "smtp"`, spread by weight, with
//! failover. Without any, `[smtp]` is the one relay (named `smtp`); with them, `[smtp]` still
//! gives what every relay shares: `helo_name` and `timeout`.

use std::collections::HashSet;

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::smtp::{Smtp, Tls};

/// Whether a relay takes its share of every send, or only what no primary can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Primary,
    /// Used only while no primary is healthy, and for a warm-up's overflow.
    Fallback,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Fallback => "fallback",
        }
    }
}

/// One relay as written. An array's entries cannot take defaults from `config/default.toml`,
/// so the optional keys' defaults are here: `port = 25`, `tls = "none"`, no credentials,
/// `weight = 1`, `role = "primary"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: Tls,
    #[serde(default)]
    pub username: String,
    #[serde(default = "empty_secret")]
    pub password: SecretString,
    /// A variable holding the password instead (read as the settings are loaded).
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub role: Role,
}

fn default_port() -> u16 {
    25
}
fn default_tls() -> Tls {
    Tls::None
}
fn empty_secret() -> SecretString {
    SecretString::from(String::new())
}
fn default_weight() -> u32 {
    1
}

/// At most this many relays (each keeps its own connections).
const MAX_RELAYS: usize = 16;

impl Relay {
    /// `[smtp]` as the one relay, for a configuration without `[[relays]]`.
    pub fn from_smtp(s: &Smtp) -> Relay {
        Relay {
            name: "smtp".into(),
            host: s.host.clone(),
            port: s.port,
            tls: s.tls,
            username: s.username.clone(),
            password: s.password.clone(),
            password_env: None,
            weight: 1,
            role: Role::Primary,
        }
    }
}

/// Names unique and short, weights in range, credentials in pairs, a primary at least; a
/// password given by `password_env` is read here.
pub(super) fn check(relays: &mut [Relay]) -> anyhow::Result<()> {
    if relays.is_empty() {
        return Ok(());
    }
    if relays.len() > MAX_RELAYS {
        bail!("relays: at most {MAX_RELAYS} relays");
    }
    let mut names = HashSet::new();
    for (i, r) in relays.iter_mut().enumerate() {
        let at = format!("relays[{i}]");
        if let Some(var) = &r.password_env {
            if !r.password.expose_secret().is_empty() {
                bail!("{at}.password_env: give `password` or `password_env`, not both");
            }
            r.password = std::env::var(var)
                .map_err(|_| anyhow::anyhow!("{at}.password_env: variable `{var}` is not set"))?
                .into();
        }
        let ok_name = !r.name.is_empty()
            && r.name.len() <= 32
            && r.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_name {
            bail!(
                "{at}.name: `{}` must be 1 to 32 letters, digits, `-` or `_` (it names the relay in metrics and the ledger)",
                r.name
            );
        }
        if !names.insert(r.name.clone()) {
            bail!("{at}.name: `{}` is used twice", r.name);
        }
        if r.host.trim().is_empty() {
            bail!("{at}.host: must be set");
        }
        if r.weight == 0 || r.weight > 1000 {
            bail!("{at}.weight: {} must be between 1 and 1000", r.weight);
        }
        if r.username.is_empty() != r.password.expose_secret().is_empty() {
            bail!("{at}.password: username and password must be set together");
        }
    }
    if !relays.iter().any(|r| r.role == Role::Primary) {
        bail!("relays: at least one relay must have role = \"primary\"");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn load(relays: &str) -> anyhow::Result<Settings> {
        Settings::from_toml_layers(&[relays])
    }

    #[test]
    fn relays_are_checked_as_they_load() {
        let one = "[[relays]]\nname = \"a\"\nhost = \"127.0.0.1\"\n";
        let s = load(one).unwrap();
        assert_eq!(s.relays()[0].weight, 1);
        assert_eq!(s.relays()[0].port, 25);
        let none = load("").unwrap();
        assert_eq!(none.relays()[0].name, "smtp", "[smtp] is the one relay");
        for (toml, says) in [
            (format!("{one}{one}"), "used twice"),
            (
                "[[relays]]\nname = \"a b\"\nhost = \"h\"\n".into(),
                "relays[0].name",
            ),
            (format!("{one}weight = 0\n"), "relays[0].weight"),
            (format!("{one}role = \"fallback\"\n"), "at least one relay"),
            (
                format!("{one}password_env = \"NASHRA_TEST_UNSET_VARIABLE\"\n"),
                "is not set",
            ),
            (format!("{one}username = \"u\"\n"), "set together"),
        ] {
            let e = load(&toml).unwrap_err().to_string();
            assert!(e.contains(says), "{toml}: {e}");
        }
    }
}
