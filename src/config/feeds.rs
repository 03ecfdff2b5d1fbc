//! `[[feeds]]`: the RSS or Atom feeds articles come from, and how often each is polled.

use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    pub url: String,
    /// An array's entries cannot take defaults from `config/default.toml` (a file's array
    /// replaces it), so this one is here; the TOML's commented example documents it.
    #[serde(with = "humantime_serde", default = "default_poll")]
    pub poll_every: Duration,
}

fn default_poll() -> Duration {
    Duration::from_secs(15 * 60)
}

pub(super) fn check(feeds: &[Feed]) -> anyhow::Result<()> {
    for (i, f) in feeds.iter().enumerate() {
        if !(f.url.starts_with("http://")
            || f.url.starts_with("https://")
            || f.url.starts_with("file://"))
        {
            bail!(
                "feeds[{i}].url: `{}` must be an http(s):// or file:// URL",
                f.url
            );
        }
    }
    Ok(())
}
