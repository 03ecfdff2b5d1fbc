//! Every bound on a report, in one place: a report comes from anyone who can mail the
//! bounce mailbox, so none of its sizes is trusted.

/// Largest attachment read, compressed (the mail itself is at most `parse::MAX_MAIL_BYTES`).
pub const MAX_ATTACHMENT: usize = 3 << 20;
/// Largest report, uncompressed: a record is about 600 bytes, so some 16,000 sources. A zip
/// or gzip bomb is refused after this many bytes of it are read, not after filling memory.
pub const MAX_XML: usize = 10 << 20;
/// A report is six elements deep (feedback/record/auth_results/dkim/…); more is no report.
pub const MAX_DEPTH: usize = 12;
/// Records in one report: one per source IP and result, so a large sender's day at one
/// provider stays far below.
pub const MAX_RECORDS: usize = 20_000;
/// Characters kept of one element's text (a domain, an id): more are dropped.
pub const MAX_TEXT: usize = 512;
/// Messages in one record: a provider's day of mail from one IP, with room to spare.
pub const MAX_COUNT: i64 = 1_000_000_000;
