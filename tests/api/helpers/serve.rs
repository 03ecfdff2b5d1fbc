//! A real `nashra serve` process on a configuration file, for the tests that kill one
//! (SIGKILL) or run several against one database. Its log goes to the test's stderr with
//! `TEST_LOG` set.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

/// Starts `nashra --config CONFIG serve` with `env` on top (an operator's overrides).
pub fn serve(config: &Path, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nashra"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(if std::env::var("TEST_LOG").is_ok() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("nashra starts")
}
