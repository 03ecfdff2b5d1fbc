//! The delivery engine: a durable queue (the ledger in the store) drained by a dispatcher in
//! every process that delivers.
//!
//! - `dispatcher` claims due ledger rows with a lease and sends each through the mailer,
//!   at most `delivery.concurrency` at a time;
//! - `writer` writes outcomes back in batches, stops sends the breaker says to stop, and
//!   marks sends finished;
//! - `warmup` holds a new domain's daily caps per mailbox provider;
//! - `pacing` holds the deployment-wide rate and sizes claims; `breaker` stops a send whose
//!   relay rejects everything; `guard` pauses a send whose complaints or hard bounces
//!   cross `[delivery.guard]`'s limits, and `provider_backoff` holds the rows of a mailbox
//!   provider that defers most messages; `revocation` keeps readers who leave mid-send from
//!   getting anything more;
//! - `message` builds the bytes; `mailer` is the one path to the wire (build, sign, envelope,
//!   send) that `transport`, `relays` (weights, health, failover) and `smtp` carry out, and
//!   `send_error` says what went wrong;
//!   `mailq` is the queue of one-off mail (confirmations, welcomes); `wait` is how the loops wait.
//!
//! What a crash can duplicate is bounded: a row is marked sent at most one flush after its
//! SMTP transaction ended, and the flush buffer holds at most `concurrency` outcomes, so at
//! most 2 × concurrency messages (in flight + unflushed) can go out twice. Nothing is ever
//! skipped: a row leaves the queue only by being marked sent, failed, skipped or cancelled,
//! and a row whose worker died returns when its lease runs out. Several processes share the
//! ledger safely: a claim takes rows no other worker holds (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, the single writer on SQLite).

mod breaker;
mod dispatcher;
pub mod guard;
mod mailer;
mod mailq;
pub mod message;
mod pacing;
mod provider_backoff;
pub mod relays;
mod revocation;
mod send_error;
mod signing;
mod smtp;
pub mod transport;
mod wait;
mod warmup;
mod writer;

pub use dispatcher::Dispatcher;
pub use mailer::{Mailer, Sealed};
pub use mailq::MailQueue;
pub use send_error::{SendError, backoff, redact_addresses};
