//! A real `nashra serve` process on a configuration file, for the tests that kill one
//! (SIGKILL) or run several against one database (its log goes to the test's stderr with
//! `TEST_LOG` set), and an article pushed through the test's own `App` beside them.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use nashra::{
    app::{Actor, App},
    store::NewArticle,
};

/// Starts `nashra --config CONFIG serve` with `env` on top (an operator's overrides).
pub fn serve(config: &Path, env: &[(&str, &str)]) -> Child {
    serve_with(config, &[], env)
}

/// [`serve`] with `serve`'s own options (`--no-feeds`).
pub fn serve_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nashra"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .args(args)
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

/// An article «خبر SLUG» at `https://example.org/SLUG/`, pushed as the command line does.
pub async fn article(app: &App, slug: &str) {
    app.push_article(
        &Actor::cli(),
        nashra::feeds::normalize(NewArticle {
            url: format!("https://example.org/{slug}/"),
            title: format!("خبر {slug}"),
            source: "test".into(),
            ..Default::default()
        })
        .unwrap(),
    )
    .await
    .unwrap();
}
