//! [`Memtable`]: the newest mutations in memory, ordered by key, each a value or a
//! tombstone, with their size accounted.
//!
//! Invariant: `size_bytes` is the sum of [`entry_size_bytes`] over the entries. A memtable
//! is mutated only while it is the tablet's active one; once frozen it is shared (`Rc`)
//! with views and the flush and never changes again.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Accounted overhead of one entry beyond its key and value bytes (tree node, vectors).
pub(crate) const MEMTABLE_ENTRY_OVERHEAD_BYTES: usize = 48;

/// The accounted size of an entry.
pub(crate) fn entry_size_bytes(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + MEMTABLE_ENTRY_OVERHEAD_BYTES
}

/// Ordered key → value-or-tombstone (`None` = deleted).
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    entries: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    size_bytes: usize,
}

impl Memtable {
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let added = entry_size_bytes(&key, value.as_deref());
        if let Some(old) = self.entries.insert(key.clone(), value) {
            let removed = entry_size_bytes(&key, old.as_deref());
            assert!(self.size_bytes >= removed, "an overwritten entry was counted when put");
            self.size_bytes -= removed;
        }
        self.size_bytes += added;
    }

    /// Checks the byte accounting once the memtable stops changing (it is frozen): a walk of
    /// every entry, so only in debug builds; amortized over the puts it took.
    pub(crate) fn debug_assert_accounted(&self) {
        let entries = self.entries.iter();
        debug_assert_eq!(
            self.size_bytes,
            entries.map(|(key, value)| entry_size_bytes(key, value.as_deref())).sum::<usize>(),
            "size_bytes is the sum of entry_size_bytes over the entries"
        );
    }

    /// `None`: the key is not here; `Some(None)`: deleted here.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.entries.get(key).map(|value| value.as_deref())
    }

    /// The first entry at or after `lower`.
    pub(crate) fn seek(&self, lower: Bound<&[u8]>) -> Option<(&[u8], Option<&[u8]>)> {
        self.entries
            .range::<[u8], _>((lower, Bound::Unbounded))
            .next()
            .map(|(key, value)| (key.as_slice(), value.as_deref()))
    }

    pub(crate) fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_overwrites_and_seeks() {
        let mut table = Memtable::default();
        table.put(b"b".to_vec(), Some(b"12345".to_vec()));
        table.put(b"a".to_vec(), None);
        assert_eq!(table.size_bytes(), 6 + 1 + 2 * MEMTABLE_ENTRY_OVERHEAD_BYTES);
        table.put(b"b".to_vec(), Some(b"1".to_vec()));
        assert_eq!(table.size_bytes(), 2 + 1 + 2 * MEMTABLE_ENTRY_OVERHEAD_BYTES);
        assert_eq!(table.get(b"a"), Some(None));
        assert_eq!(table.get(b"c"), None);
        assert_eq!(table.seek(Bound::Excluded(b"a")), Some((&b"b"[..], Some(&b"1"[..]))));
        assert_eq!(table.seek(Bound::Excluded(b"b")), None);
    }
}
