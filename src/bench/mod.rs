//! `nashra bench`: one real-sized digest to N subscribers through the smtp transport into
//! Postfix's `smtp-sink` on 127.0.0.1, then Postfix's `smtp-source` pushing messages of the
//! same size through the same sink with as many sessions, as the wire-speed reference. On the
//! way it times what a newsroom of that size waits for: the import, the digest's creation,
//! a send's progress read while it runs, the console's reader searches.
//!
//! `--database postgres://…` runs it on a fresh PostgreSQL database on that server (dropped
//! afterwards unless `--keep`). `--workers K --relay-delay 20ms` measures scale-out instead:
//! against a sink that answers each message after the delay (`sink`), the rate of one
//! `nashra worker` process, then of K, on the same database. `--alert` times a breaking-news
//! alert from the push to the first and the last message; `--local` compares the sender's CPU
//! per message of a local-hour digest with an at-once one's.
//!
//! Everything runs on this machine in one command, so the figures that matter are the ratios:
//! our rate against `smtp-source`'s (or K workers' against one), CPU per message, and peak
//! RSS of the sending phase.
//!
//! Built only with `--features bench`. `args` is the command's grammar, `setup` what a run
//! stands on, `measure` and `reads` the timings, `wire`, `scale`, `alert` and `local` the
//! measurements.

mod alert;
mod args;
mod local;
mod measure;
mod reads;
mod scale;
mod setup;
mod sink;
mod wire;

pub use args::BenchArgs;

use setup::BenchDb;

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.subscribers > 0, "--subscribers must be positive");
    let mut db = BenchDb::new(args.database.as_deref(), args.keep).await?;
    let out = match args.workers {
        Some(k) => scale::scale_out(&args, &db, k).await,
        None if args.alert => alert::alert(&args, &db).await,
        None if args.local => local::local(&args, &db).await,
        None => wire::wire(&args, &db).await,
    };
    db.drop_database().await;
    if args.keep {
        println!("  database kept at  {}", db.url);
        let _ = db.dir.keep();
    }
    out
}
