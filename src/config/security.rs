//! `[security]`: the secret links are signed with, the scripts' owner token, and how console
//! sessions and sign-ins are bounded; and the development values refused beyond a laptop.

use std::time::Duration;

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Development values from `config/default.toml`: fine on a laptop, refused for real sending.
const DEV_SECRET: &str = "nashra-dev-secret-change-me-0123456789abcdef";
const DEV_ADMIN_TOKEN: &str = "nashra-dev-admin-token";

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    pub secret: SecretString,
    /// A bearer token for scripts, with the owner role. Empty = retired (use API tokens
    /// made in the console).
    pub admin_token: SecretString,
    /// A console session ends after this long unused…
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// …and this long after sign-in, however busy.
    #[serde(with = "humantime_serde")]
    pub session_max: Duration,
    /// Wrong passwords (or codes) in a row that lock an account…
    pub login_attempts: u32,
    /// …for this long.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    /// Sign-in attempts a client address may make an hour, whatever the accounts.
    pub logins_per_hour: u32,
}

impl Security {
    pub(super) fn check(&self) -> anyhow::Result<()> {
        let admin_token = self.admin_token.expose_secret();
        if self.secret.expose_secret().len() < 32 {
            bail!("security.secret: must be at least 32 characters");
        }
        if !admin_token.is_empty() && admin_token.len() < 16 {
            bail!("security.admin_token: must be at least 16 characters (or empty: retired)");
        }
        if self.login_attempts == 0 || self.logins_per_hour == 0 {
            bail!("security.login_attempts and security.logins_per_hour: must be at least 1");
        }
        if self.session_idle.is_zero() || self.session_max < self.session_idle {
            bail!(
                "security.session_max: must be at least security.session_idle (and both above zero)"
            );
        }
        Ok(())
    }

    /// Refuses the development values when `why` (sending for real, serving readers) says
    /// they would be used beyond a laptop.
    pub(super) fn check_not_development(&self, why: &str) -> anyhow::Result<()> {
        if self.secret.expose_secret() == DEV_SECRET {
            bail!(
                "security.secret: still the development value; set a secret of your own (NASHRA__SECURITY__SECRET) before {why}"
            );
        }
        if self.admin_token.expose_secret() == DEV_ADMIN_TOKEN {
            bail!(
                "security.admin_token: still the development value; set your own (NASHRA__SECURITY__ADMIN_TOKEN, or \"\" to retire it) before {why}"
            );
        }
        Ok(())
    }
}
