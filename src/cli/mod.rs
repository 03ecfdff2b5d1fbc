//! The command line: `serve`, `worker`, `demo`, `migrate`, `ingest`, `send`, `preview`,
//! `sends`, `subscribers import|export`, `admin add|password|totp-reset`, `dkim keygen`,
//! `bounces ingest`, `doctor`, and `bench` when built with it. What the console and the API
//! also do goes through the same operations (`App::control`, `App::import_csv`, …), as the
//! `cli` actor, an owner.
//!
//! `args` is the grammar (clap's definitions); this file dispatches each command to the file
//! that does its work, one per group of commands.

mod admin;
mod args;
mod dkim;
mod ingest;
mod send;
mod serve;
mod subscribers;

use anyhow::Context;

pub use args::{
    AdminAction, BounceAction, Cli, Command, DkimAction, KeyAlgorithm, RoleArg, SendAction,
    SubscriberAction,
};
pub use send::deliver_until_done;

use crate::{app::App, config::Settings, startup::Roles};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    #[cfg(feature = "bench")]
    if let Command::Bench(args) = cli.command {
        return crate::bench::run(args).await;
    }
    if let Command::Dkim {
        action:
            DkimAction::Keygen {
                domain,
                selector,
                algorithm,
                out,
            },
    } = &cli.command
    {
        let domain = match domain {
            Some(d) => d.clone(),
            None => {
                let s = Settings::load(cli.config.as_deref())?;
                crate::domain::Mailbox::parse(&s.newsletter.from)
                    .context("newsletter.from")?
                    .email
                    .domain()
                    .to_owned()
            }
        };
        return dkim::keygen(&domain, selector, *algorithm, out.clone());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve {
            no_delivery,
            no_scheduler,
            no_feeds,
        } => {
            let roles = Roles {
                web: true,
                delivery: !no_delivery,
                scheduler: !no_scheduler,
                feeds: !no_feeds,
            };
            serve::serve(settings, roles).await
        }
        Command::Worker => serve::worker(settings).await,
        Command::Demo { no_serve } => serve::demo(settings, no_serve).await,
        Command::Migrate => {
            App::new(settings).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Ingest => ingest::feeds(settings).await,
        Command::Send {
            schedule,
            test_to,
            dry_run,
        } => send::send(settings, schedule, test_to, dry_run).await,
        Command::Preview { schedule, text } => send::preview(settings, schedule, text).await,
        Command::Sends { action } => send::sends(settings, action).await,
        Command::Subscribers { action } => subscribers::subscribers(settings, action).await,
        Command::Admin { action } => admin::admin(settings, action).await,
        #[cfg(feature = "bench")]
        Command::Bench(_) => unreachable!("handled before loading the configuration"),
        Command::Dkim { .. } => unreachable!("handled before loading the configuration"),
        Command::Bounces {
            action: BounceAction::Ingest { files },
        } => ingest::bounce_files(settings, files).await,
        Command::Doctor { nameservers } => {
            crate::bounces::doctor::run(&settings, &nameservers).await
        }
    }
}
