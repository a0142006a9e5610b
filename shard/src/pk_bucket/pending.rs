//! [`PendingWrites`]: the changes of primary-key writes whose changelog is appended but not
//! yet durable.
//!
//! The KV holds only what is durable (lookups and snapshots must never show a change a crash
//! could take back), yet the next write to a key must merge with the newest value, durable
//! or not. So a write's resulting values wait here, in log order, until the log's high
//! watermark passes the end of their changelog records; then they move to the KV.
//!
//! Invariants: entries are in strictly increasing `end_offset` order; `latest` holds, for
//! every key in some entry, the value of the newest entry touching it; an entry whose
//! changelog a failed write took back is dropped with every later one (the log undoes all
//! appends after the failed one too).

use std::collections::{HashMap, VecDeque};

/// A key's new value; `None` deletes it.
pub type Mutation = (Vec<u8>, Option<Vec<u8>>);

/// The resulting values of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWrite {
    /// The log offset after the write's last changelog record.
    pub end_offset: u64,
    /// New values, in the order they were made.
    pub mutations: Vec<Mutation>,
}

/// Writes waiting for their changelog to become durable.
#[derive(Debug, Default)]
pub struct PendingWrites {
    queue: VecDeque<PendingWrite>,
    /// Newest pending value per key, with the `end_offset` of the write that made it.
    latest: HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>,
    size_bytes: usize,
}

fn mutation_size(mutation: &Mutation) -> usize {
    mutation.0.len() + mutation.1.as_ref().map_or(0, Vec::len)
}

impl PendingWrites {
    /// The newest pending value of `key`: `None` if no pending write touches it,
    /// `Some(None)` if the newest one deletes it.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.latest.get(key).map(|(_, value)| value.as_deref())
    }

    /// Pending writes.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes of keys and values waiting.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Adds a write whose changelog ends at `end_offset`.
    pub fn push(&mut self, end_offset: u64, mutations: Vec<Mutation>) {
        if let Some(last) = self.queue.back() {
            assert!(end_offset > last.end_offset, "pending writes are in log order");
        }
        for (key, value) in &mutations {
            self.latest.insert(key.clone(), (end_offset, value.clone()));
        }
        self.size_bytes += mutations.iter().map(mutation_size).sum::<usize>();
        self.queue.push_back(PendingWrite { end_offset, mutations });
    }

    /// Removes and returns, oldest first, the writes whose changelog ends at or before
    /// `durable_offset`.
    pub fn take_durable(&mut self, durable_offset: u64) -> Vec<PendingWrite> {
        let mut taken = Vec::new();
        while self.queue.front().is_some_and(|write| write.end_offset <= durable_offset) {
            let Some(write) = self.queue.pop_front() else { break };
            assert!(write.end_offset <= durable_offset, "only durable writes are taken");
            for mutation in &write.mutations {
                let newest = self.latest.get(&mutation.0).map(|(end, _)| *end);
                // `latest` holds the newest write of each key: never one older than this.
                assert!(
                    newest.is_none_or(|newest| newest >= write.end_offset),
                    "a key's latest pending value is from its newest write"
                );
                if newest == Some(write.end_offset) {
                    self.latest.remove(&mutation.0);
                }
            }
            let size = write.mutations.iter().map(mutation_size).sum::<usize>();
            assert!(size <= self.size_bytes, "the pending bytes count every write");
            self.size_bytes -= size;
            taken.push(write);
        }
        if self.queue.is_empty() {
            assert!(self.latest.is_empty() && self.size_bytes == 0, "nothing pending is left");
        }
        taken
    }

    /// Drops every write whose changelog ends after `log_end_offset` (the log took those
    /// appends back after a failed write).
    pub fn discard_after(&mut self, log_end_offset: u64) {
        if self.queue.back().is_none_or(|write| write.end_offset <= log_end_offset) {
            return;
        }
        self.queue.retain(|write| write.end_offset <= log_end_offset);
        self.latest.clear();
        self.size_bytes = 0;
        for write in &self.queue {
            for (key, value) in &write.mutations {
                self.latest.insert(key.clone(), (write.end_offset, value.clone()));
            }
            self.size_bytes += write.mutations.iter().map(mutation_size).sum::<usize>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Mutation {
        (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()))
    }

    fn delete(key: &str) -> Mutation {
        (key.as_bytes().to_vec(), None)
    }

    #[test]
    fn newest_value_wins_until_it_is_durable() {
        let mut pending = PendingWrites::default();
        pending.push(3, vec![put("a", "1"), put("b", "1")]);
        pending.push(5, vec![put("a", "2")]);
        pending.push(6, vec![delete("b")]);
        assert_eq!(pending.get(b"a"), Some(Some(&b"2"[..])));
        assert_eq!(pending.get(b"b"), Some(None));
        assert_eq!(pending.get(b"c"), None);
        assert_eq!(pending.size_bytes(), 2 + 2 + 2 + 1);

        let taken = pending.take_durable(4);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].end_offset, 3);
        // "a" still has a newer pending value; "b" a pending delete.
        assert_eq!(pending.get(b"a"), Some(Some(&b"2"[..])));
        assert_eq!(pending.get(b"b"), Some(None));
        assert_eq!(pending.take_durable(6).len(), 2);
        assert!(pending.is_empty());
        assert_eq!(pending.get(b"a"), None);
        assert_eq!(pending.size_bytes(), 0);
    }

    #[test]
    fn undone_writes_are_dropped_and_older_values_come_back() {
        let mut pending = PendingWrites::default();
        pending.push(2, vec![put("a", "1")]);
        pending.push(4, vec![put("a", "2"), put("b", "9")]);
        pending.discard_after(3);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.get(b"a"), Some(Some(&b"1"[..])));
        assert_eq!(pending.get(b"b"), None);
        assert_eq!(pending.size_bytes(), 2);
        pending.discard_after(3);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    #[should_panic(expected = "log order")]
    fn writes_out_of_log_order_are_a_bug() {
        let mut pending = PendingWrites::default();
        pending.push(4, vec![put("a", "1")]);
        pending.push(4, vec![put("a", "2")]);
    }
}
