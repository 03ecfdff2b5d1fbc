//! DMARC aggregate reports (RFC 7489 §7.2, appendix C): what Gmail, Outlook.com, Yahoo and
//! the rest say about the mail sent in our domain's name, read from the bounce mailbox (or
//! `bounces.dmarc_folder`) or a file, and stored per day, source IP, disposition and
//! alignment for the console's «السمعة» page and `/metrics`.
//!
//! `intake` finds the report in a mail, `unpack` takes it out of its gzip or zip with the
//! size bounded, `xml` reads it with the depth and the records bounded; `refused` says why
//! one could not be stored, and `limits` holds every bound.

mod intake;
mod limits;
mod refused;
mod unpack;
mod xml;

pub use intake::{DmarcOutcome, read, report_from_mail};
pub use limits::{MAX_ATTACHMENT, MAX_DEPTH, MAX_RECORDS, MAX_XML};
pub use refused::Refused;
