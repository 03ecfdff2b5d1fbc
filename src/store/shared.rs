//! What several aggregates' SQL files share: the lock over readers' choices, per-digest
//! counter changes, and a test send's addresses.

/// Held (on PostgreSQL; SQLite's single writer needs none) by whatever changes which readers
/// choose which sections, and by a digest while it fixes its audience: a reader's choice cannot
/// change between the digest's check of the choices it rendered and the audience it writes.
pub(crate) const CHOICES_LOCK: &str = "reader-choices";

/// A test send's address for its ledger row `-k`: the k-th of the digest's `test_to` list.
pub(crate) fn test_address(list: Option<&str>, subscriber_id: i64) -> Option<String> {
    list?
        .split(',')
        .nth(subscriber_id.unsigned_abs() as usize)
        .map(str::to_owned)
}

/// Per-digest counter changes gathered from `RETURNING digest_id` rows.
#[derive(Default)]
pub(crate) struct CounterDelta(std::collections::BTreeMap<i64, i64>);

impl CounterDelta {
    pub(crate) fn add(&mut self, digest: i64, n: i64) {
        *self.0.entry(digest).or_default() += n;
    }

    pub(crate) fn extend(&mut self, digests: impl IntoIterator<Item = i64>, n: i64) {
        for d in digests {
            self.add(d, n);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.0
            .iter()
            .map(|(d, n)| (*d, *n))
            .filter(|(_, n)| *n != 0)
    }
}
