//! The limits the readers' SQL enforces: how often one inbox gets a confirmation email, and
//! when a reader search looks inside addresses and names rather than at their start.

/// One inbox gets another confirmation email at most this often…
pub(crate) const CONFIRM_RESEND_MS: i64 = 10 * 60 * 1000;
/// …and at most this many a day, however many addresses and clients ask for it.
pub(crate) const CONFIRMS_PER_DAY: i64 = 3;
/// A reader search this long or longer finds any part of an address or a name (each engine's
/// trigram index needs three characters); a shorter one is an address prefix.
pub(crate) const SEARCH_MIN_CHARS: usize = 3;
