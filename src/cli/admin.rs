//! `nashra admin add|password|totp-reset`: console accounts from the command line (the first
//! owner is made here), with the password read from the terminal or from stdin.

use std::io::IsTerminal;

use anyhow::{Context, bail};

use super::args::AdminAction;
use crate::{
    app::{Actor, App},
    config::Settings,
};

pub(super) async fn admin(settings: Settings, action: AdminAction) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    match action {
        AdminAction::Add { email, role } => {
            let password = read_password("password for the new account: ")?;
            let id = app
                .add_admin(&Actor::cli(), &email, role.into(), &password)
                .await?;
            println!(
                "account {id} added; sign in at {}",
                app.settings.public_url("/admin")
            );
        }
        AdminAction::Password { email } => {
            let password = read_password("new password: ")?;
            app.set_password(&Actor::cli(), &email, None, &password)
                .await?;
            println!("password set; the account's sessions have ended");
        }
        AdminAction::TotpReset { email } => {
            if app.reset_totp(&Actor::cli(), &email).await? {
                println!(
                    "second factor removed; the account signs in with its password and sets a new one under «حسابي»"
                );
            } else {
                println!("the account had no second factor; its sessions have ended");
            }
        }
    }
    Ok(())
}

/// A password from the terminal (not echoed, typed twice) or the first line of stdin.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = prompt_hidden(prompt)?;
    let again = prompt_hidden("again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// Reads a line with the terminal's echo off (rpassword: no `unsafe` of our own).
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(prompt).context("cannot read the password")
}
