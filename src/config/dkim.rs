//! `[[dkim]]`: the keys messages are signed with, each read from a file or from an
//! environment variable (the keys themselves are loaded and checked by `dkim`).

use std::path::PathBuf;

use serde::Deserialize;

/// A `[[dkim]]` key: the PEM from a file or from an environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    pub domain: String,
    pub selector: String,
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    #[serde(default)]
    pub private_key_env: Option<String>,
    /// "rsa-sha256" or "ed25519-sha256"; checked against the key.
    #[serde(default)]
    pub algorithm: Option<String>,
}
