//! `[database]`: which store, SQLite (a file) or PostgreSQL (a server shared by processes), and
//! how its URL is shown without its password.

use anyhow::bail;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub url: String,
}

impl Database {
    pub(super) fn check(&self) -> anyhow::Result<()> {
        let db = &self.url;
        if db.trim().is_empty() {
            bail!("database.url: must not be empty");
        }
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            bail!(
                "database.url: `{}` is neither sqlite://PATH nor postgres://…",
                redact_url(db)
            );
        }
        Ok(())
    }
}

/// Hides a password in a database URL before it reaches a message or a log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://***@h/db");
    }
}
