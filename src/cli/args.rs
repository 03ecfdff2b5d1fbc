//! The command line's grammar: clap's definitions of every command and its arguments, apart
//! from the work each does (the files beside this one), so `--help` reads in one place.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::store::Role;

#[derive(Parser, Debug)]
#[command(
    name = "nashra",
    version,
    about = "Email newsletter publisher for Arabic news sites"
)]
pub struct Cli {
    /// A TOML file layered over config/default.toml.
    #[arg(long, global = true, env = "NASHRA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Web server, scheduler, feed pollers and delivery in one process (or some of them:
    /// a site runs N web processes and M workers on one PostgreSQL).
    Serve {
        /// No delivery (leave it to `nashra worker` processes).
        #[arg(long)]
        no_delivery: bool,
        /// No schedules fired here.
        #[arg(long)]
        no_scheduler: bool,
        /// No feeds polled here.
        #[arg(long)]
        no_feeds: bool,
    },
    /// Delivery only (the ledger and confirmation emails), no HTTP port: any number of
    /// workers and `serve` processes share one PostgreSQL.
    Worker,
    /// Zero-setup showcase: sample articles, a demo subscriber, a digest in the outbox, then serve.
    Demo {
        /// Deliver the digest and exit instead of serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Apply database migrations.
    Migrate,
    /// Poll the configured feeds now.
    Ingest,
    /// Build a digest now and send it, waiting until it is delivered.
    Send {
        #[arg(long)]
        schedule: Option<String>,
        /// Send to this one address only (not recorded as the schedule's digest).
        #[arg(long)]
        test_to: Option<String>,
        /// Show what would be sent and to how many, without sending.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the next digest (HTML, or its plain-text part).
    Preview {
        #[arg(long)]
        schedule: Option<String>,
        #[arg(long)]
        text: bool,
    },
    /// Control a send: pause, resume, cancel, retry its failures, or show its status.
    Sends {
        #[command(subcommand)]
        action: SendAction,
    },
    /// Import or export subscribers as CSV (header `email,name`).
    Subscribers {
        #[command(subcommand)]
        action: SubscriberAction,
    },
    /// Console accounts.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Delivery benchmark against Postfix's smtp-sink, with smtp-source as the reference
    /// (built with `--features bench`).
    #[cfg(feature = "bench")]
    Bench(crate::bench::BenchArgs),
    /// DKIM keys.
    Dkim {
        #[command(subcommand)]
        action: DkimAction,
    },
    /// Bounces, complaints and mailed unsubscribes.
    Bounces {
        #[command(subcommand)]
        action: BounceAction,
    },
    /// What the sending domain's DNS needs, whether the configuration meets what Gmail,
    /// Yahoo and Outlook.com ask of bulk senders, and whether the published SPF, DKIM, DMARC
    /// and MX records say what they should.
    Doctor {
        /// A nameserver to ask ("IP:PORT"; repeat for more), instead of `[dns] nameservers`.
        #[arg(long = "nameserver", value_name = "IP:PORT")]
        nameservers: Vec<std::net::SocketAddr>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DkimAction {
    /// Make a key, write it (PEM, mode 0600) and print the DNS TXT record to publish.
    Keygen {
        /// The signing domain (d=), aligned with From's; From's domain by default.
        #[arg(long)]
        domain: Option<String>,
        #[arg(long, default_value = "nashra1")]
        selector: String,
        #[arg(long, value_enum, default_value = "rsa")]
        algorithm: KeyAlgorithm,
        /// Where to write the private key; `<selector>.pem` by default. Never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KeyAlgorithm {
    Rsa,
    Ed25519,
}

#[derive(Subcommand, Debug)]
pub enum BounceAction {
    /// Process saved messages (a DSN, an ARF complaint, an unsubscribe mail) as if they had
    /// arrived in the bounce mailbox.
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Add a console account. The password is prompted for on a terminal, else read from
    /// the first line of stdin.
    Add {
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Set an account's password (and end its sessions, and lift a lock-out).
    Password { email: String },
    /// Take away an account's second factor (its owner lost the authenticator): it signs
    /// in with its password alone until it sets a new one; its sessions end. Audited.
    TotpReset { email: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    Owner,
    Editor,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Owner => Role::Owner,
            RoleArg::Editor => Role::Editor,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum SendAction {
    Status { id: i64 },
    Pause { id: i64 },
    Resume { id: i64 },
    Cancel { id: i64 },
    Retry { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum SubscriberAction {
    /// Add subscribers from a CSV file; `--confirmed` when consent was given elsewhere.
    Import {
        file: PathBuf,
        #[arg(long)]
        confirmed: bool,
    },
    /// Write every subscriber as CSV on stdout.
    Export,
}
