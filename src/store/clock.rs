//! The store's one time unit, milliseconds since the Unix epoch, in a leaf of its own so the
//! aggregates' SQL files and the rest of the crate read the clock the same way.

/// A day in the store's unit.
pub(crate) const DAY_MS: i64 = 24 * 3600 * 1000;

/// Milliseconds since the Unix epoch: the one time unit in the store.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
