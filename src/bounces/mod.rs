//! What comes back after the relay said "250": bounces, complaints and unsubscribes by mail.
//!
//! Three ways in, one handler (`App::record_feedback`): the bounce mailbox read over IMAP
//! (`imap`), provider webhooks (`webhooks`), and `nashra bounces ingest FILE.eml`. Mail is
//! read by `parse` and matched to our messages by `mail`; `doctor` checks what a bulk sender
//! needs. DMARC aggregate reports arrive the same ways and are read by `dmarc` before the rest.

pub mod dmarc;
pub mod doctor;
pub mod imap;
pub mod mail;
pub mod parse;
pub mod webhooks;

pub use mail::{MailOutcome, feedback_from_mail};
