//! [`WriterTable`]: what a bucket knows about idempotent writers, so that a retried batch is
//! stored once and answered with its original offsets.
//!
//! Every batch carries its writer id and a sequence number per writer and bucket (both -1
//! for writers without idempotence). For each writer the table keeps the last sequence and
//! the offsets of its last [`RECENT_BATCH_COUNT_MAX`] batches (a writer has at most that
//! many batches in flight). A batch whose sequence follows the last is appended; one whose
//! sequence is among the recent ones is a retry and gets the stored offsets back; anything
//! else is out of order. Sequences wrap from `i32::MAX` to 0.
//!
//! The table is rebuilt after a restart from the snapshot written when the last segment was
//! sealed plus the batches of the active segment (recovery scans those anyway). At most
//! [`WRITER_COUNT_MAX`] writers are kept; the one seen longest ago is forgotten first (its
//! next batch is accepted as if it were new).
//!
//! Invariants (asserted): a writer's window holds one to [`RECENT_BATCH_COUNT_MAX`] batches
//! in log order (a writer with none left is forgotten); at most [`WRITER_COUNT_MAX`] writers
//! are kept; a snapshot holds only what `decode` accepts back.

use std::collections::{HashMap, VecDeque};

/// Batches per writer remembered for answering retries (a writer keeps at most this many
/// batches in flight per bucket).
pub const RECENT_BATCH_COUNT_MAX: usize = 5;

/// Writers remembered per bucket.
pub const WRITER_COUNT_MAX: usize = 10_000;

/// Where a stored batch went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    /// Its sequence.
    pub sequence: i32,
    /// First offset.
    pub base_offset: u64,
    /// Last offset.
    pub last_offset: u64,
    /// Commit timestamp.
    pub commit_timestamp: i64,
}

/// What to do with a batch from an idempotent writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// It was stored already: answer with these offsets.
    Duplicate(StoredBatch),
    /// Its sequence does not follow: `expected` is the next one.
    OutOfOrder {
        /// The next sequence the writer may send.
        expected: i32,
        /// The sequence it sent.
        got: i32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct WriterEntry {
    recent: VecDeque<StoredBatch>,
    /// Order of last use, for forgetting the stalest writer.
    last_used: u64,
}

/// The idempotent writers of one bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterTable {
    writers: HashMap<i64, WriterEntry>,
    clock: u64,
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl WriterTable {
    /// Writers known.
    pub fn len(&self) -> usize {
        self.writers.len()
    }

    /// True if no writer is known.
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }

    /// What to do with batch `sequence` of `writer_id`.
    pub fn check(&self, writer_id: i64, sequence: i32) -> SequenceCheck {
        let Some(entry) = self.writers.get(&writer_id) else {
            return SequenceCheck::Append;
        };
        assert!(entry.recent.len() <= RECENT_BATCH_COUNT_MAX, "a bounded window");
        let Some(last) = entry.recent.back() else {
            return SequenceCheck::Append;
        };
        if sequence == next_sequence(last.sequence) {
            return SequenceCheck::Append;
        }
        match entry.recent.iter().find(|stored| stored.sequence == sequence) {
            Some(stored) => SequenceCheck::Duplicate(*stored),
            None => {
                SequenceCheck::OutOfOrder { expected: next_sequence(last.sequence), got: sequence }
            }
        }
    }

    /// Whether [`Self::record`] takes `stored` for `writer_id`: an idempotent writer, a batch
    /// that ends at or after its start (empty: just before it), after the writer's last one.
    fn takes(&self, writer_id: i64, stored: &StoredBatch) -> bool {
        let last = self.writers.get(&writer_id).and_then(|entry| entry.recent.back());
        writer_id >= 0
            && stored.last_offset.wrapping_add(1) >= stored.base_offset
            && last.is_none_or(|last| last.base_offset <= stored.base_offset)
    }

    /// Notes that batch `stored` of `writer_id` is in the log.
    pub fn record(&mut self, writer_id: i64, stored: StoredBatch) {
        assert!(self.takes(writer_id, &stored), "writer {writer_id}'s batches in log order");
        self.clock += 1;
        let clock = self.clock;
        if !self.writers.contains_key(&writer_id) && self.writers.len() >= WRITER_COUNT_MAX {
            let stalest =
                self.writers.iter().min_by_key(|(_, entry)| entry.last_used).map(|(id, _)| *id);
            if let Some(stalest) = stalest {
                self.writers.remove(&stalest);
            }
        }
        let entry = self.writers.entry(writer_id).or_insert_with(|| WriterEntry {
            recent: VecDeque::with_capacity(RECENT_BATCH_COUNT_MAX),
            last_used: clock,
        });
        if entry.recent.len() == RECENT_BATCH_COUNT_MAX {
            entry.recent.pop_front();
        }
        entry.recent.push_back(stored);
        entry.last_used = clock;
        assert!(self.writers.len() <= WRITER_COUNT_MAX, "at most WRITER_COUNT_MAX writers");
    }

    /// Forgets batches at or after `offset` (after a rollback of unsynced appends).
    pub fn forget_from(&mut self, offset: u64) {
        self.writers.retain(|_, entry| {
            entry.recent.retain(|stored| stored.base_offset < offset);
            !entry.recent.is_empty()
        });
    }

    /// Encodes the table for a snapshot file: `u32 writer count`, then per writer `i64 id,
    /// u8 batch count`, then per batch `i32 sequence, u64 base, u64 last, i64 timestamp`,
    /// then a CRC-32C of everything before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(self.writers.len() <= WRITER_COUNT_MAX, "what `decode` accepts");
        let mut writers: Vec<(&i64, &WriterEntry)> = self.writers.iter().collect();
        writers.sort_by_key(|(_, entry)| entry.last_used);
        out.extend_from_slice(&(writers.len() as u32).to_le_bytes());
        for (id, entry) in writers {
            // What `decode` accepts: between one and `RECENT_BATCH_COUNT_MAX` batches each.
            assert!((1..=RECENT_BATCH_COUNT_MAX).contains(&entry.recent.len()), "a window");
            out.extend_from_slice(&id.to_le_bytes());
            out.push(entry.recent.len() as u8);
            for stored in &entry.recent {
                out.extend_from_slice(&stored.sequence.to_le_bytes());
                out.extend_from_slice(&stored.base_offset.to_le_bytes());
                out.extend_from_slice(&stored.last_offset.to_le_bytes());
                out.extend_from_slice(&stored.commit_timestamp.to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a snapshot; `None` if it is damaged in any way (the caller rebuilds).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, crc) = bytes.split_last_chunk::<4>()?;
        if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
            return None;
        }
        let mut at = 0usize;
        let mut take = |size: usize| -> Option<&[u8]> {
            let slice = body.get(at..at.checked_add(size)?)?;
            at += size;
            Some(slice)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        if count > WRITER_COUNT_MAX {
            return None;
        }
        let mut table = WriterTable::default();
        for _ in 0..count {
            let id = i64::from_le_bytes(take(8)?.try_into().ok()?);
            let batches = usize::from(take(1)?[0]);
            if batches == 0 || batches > RECENT_BATCH_COUNT_MAX || table.writers.contains_key(&id) {
                return None;
            }
            for _ in 0..batches {
                let sequence = i32::from_le_bytes(take(4)?.try_into().ok()?);
                let base_offset = u64::from_le_bytes(take(8)?.try_into().ok()?);
                let last_offset = u64::from_le_bytes(take(8)?.try_into().ok()?);
                let commit_timestamp = i64::from_le_bytes(take(8)?.try_into().ok()?);
                let stored = StoredBatch { sequence, base_offset, last_offset, commit_timestamp };
                if !table.takes(id, &stored) {
                    return None;
                }
                table.record(id, stored);
            }
        }
        (at == body.len()).then_some(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(sequence: i32, base: u64) -> StoredBatch {
        StoredBatch { sequence, base_offset: base, last_offset: base + 9, commit_timestamp: 7 }
    }

    #[test]
    fn sequences_follow_retries_are_found_and_gaps_refused() {
        let mut table = WriterTable::default();
        assert_eq!(table.check(1, 0), SequenceCheck::Append, "a new writer starts anywhere");
        for sequence in 0..8 {
            assert_eq!(table.check(1, sequence), SequenceCheck::Append);
            table.record(1, stored(sequence, sequence as u64 * 10));
        }
        assert_eq!(table.check(1, 7), SequenceCheck::Duplicate(stored(7, 70)));
        assert_eq!(table.check(1, 3), SequenceCheck::Duplicate(stored(3, 30)));
        assert_eq!(
            table.check(1, 2),
            SequenceCheck::OutOfOrder { expected: 8, got: 2 },
            "too old to answer"
        );
        assert_eq!(table.check(1, 10), SequenceCheck::OutOfOrder { expected: 8, got: 10 });
        table.record(2, stored(i32::MAX, 500));
        assert_eq!(table.check(2, 0), SequenceCheck::Append, "sequences wrap");
    }

    #[test]
    fn rollback_forgets_and_snapshots_round_trip_or_refuse_damage() {
        let mut table = WriterTable::default();
        for writer in 0..20 {
            for sequence in 0..3 {
                table.record(
                    writer,
                    stored(sequence, (writer * 100 + i64::from(sequence) * 10) as u64),
                );
            }
        }
        let bytes = table.encode();
        let decoded = WriterTable::decode(&bytes).unwrap();
        assert_eq!(decoded.len(), 20);
        assert_eq!(decoded.check(5, 2), table.check(5, 2));
        for cut in 0..bytes.len() {
            assert!(WriterTable::decode(&bytes[..cut]).is_none());
        }
        let mut flipped = bytes.clone();
        flipped[9] ^= 1;
        assert!(WriterTable::decode(&flipped).is_none());
        // A snapshot with a whole CRC whose content breaks the window is refused, not
        // trusted: a writer twice, a negative writer id, batches out of log order.
        let with_crc = |body: &[u8]| {
            let mut bytes = body.to_vec();
            bytes.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
            bytes
        };
        let body = &bytes[..bytes.len() - 4];
        let mut twice = body.to_vec();
        twice[..4].copy_from_slice(&21u32.to_le_bytes());
        // Each writer: id, count, three batches of 28 bytes.
        twice.extend_from_slice(&body[4..4 + 9 + 3 * 28]);
        assert!(WriterTable::decode(&with_crc(&twice)).is_none(), "a writer twice");
        let mut negative = body.to_vec();
        negative[4..12].copy_from_slice(&(-5i64).to_le_bytes());
        assert!(WriterTable::decode(&with_crc(&negative)).is_none(), "a negative writer id");
        let mut backwards = body.to_vec();
        // The first writer's (0) second batch starts before its first: bases 5, then 0.
        backwards[13 + 4..13 + 12].copy_from_slice(&5u64.to_le_bytes());
        backwards[13 + 28 + 4..13 + 28 + 12].copy_from_slice(&0u64.to_le_bytes());
        assert!(WriterTable::decode(&with_crc(&backwards)).is_none(), "batches out of order");
        assert!(WriterTable::decode(&with_crc(body)).is_some(), "the original is fine");
        table.forget_from(1_000);
        assert_eq!(table.check(9, 3), SequenceCheck::Append);
        assert_eq!(
            table.check(10, 0),
            SequenceCheck::Append,
            "writer 10's batches were all forgotten"
        );
    }
}
