//! The write path of a [`PkBucket`]: under the bucket's write lock, check the writer's
//! sequence, read the current values of the keys (pending writes first, then the KV), run
//! the merge engine, append the changelog, park the new values as pending; once the
//! changelog is durable, move them into the KV.
//!
//! Invariants: values reach the KV only once their changelog is durable (below the high
//! watermark); a write is answered as durable only once everything appended before its
//! answer is (a write that changed nothing and a retry depend on earlier writes); a pending write's changelog is in the log when it is parked; a write that
//! fails after its changelog was appended is taken back from the pending writes with
//! every later one (the log takes those appends back too).

use std::rc::Rc;

use arrow_array::RecordBatch;
use ufer_wire::decode::{aligned_copy, DecodedBatch};
use ufer_wire::{ChangeType, WriterStamp};

use crate::kv::{KV_KEY_SIZE_MAX_BYTES, KV_VALUE_SIZE_MAX_BYTES};
use crate::log::append::DurableTarget;
use crate::log::writers::{SequenceCheck, StoredBatch};
use crate::pk::changelog::{RowOp, WriteRequest};
use crate::pk_bucket::bucket::PkBucket;
use crate::pk_bucket::error::PkBucketError;

/// Which columns a write sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteColumns<'a> {
    /// Every column: an upsert replaces (or merges) whole rows.
    All,
    /// A partial update of these columns (by index, the key columns among them); the
    /// others keep their stored values.
    Partial(&'a [usize]),
}

impl<'a> WriteColumns<'a> {
    /// The target columns as the changelog generator takes them.
    fn target_columns(self) -> Option<&'a [usize]> {
        match self {
            WriteColumns::All => None,
            WriteColumns::Partial(columns) => Some(columns),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Offset of the first changelog record (the log end if nothing changed).
    pub changelog_offset: u64,
    /// Changelog records appended (0: nothing changed).
    pub changelog_record_count: u32,
    /// True if the write had been applied already (an idempotent retry).
    pub duplicate: bool,
    /// What must be durable before the write is: its changelog and every earlier one — also
    /// for a write that changed nothing (judged against earlier writes that may not be
    /// durable yet) and for a retry (whose original may not be).
    durable: DurableTarget,
}

impl WriteOutcome {
    /// The answer to a retried write: its original changelog records, durable once
    /// everything appended so far is.
    fn duplicate(stored: StoredBatch, durable: DurableTarget) -> Self {
        let empty = stored.last_offset == stored.base_offset.wrapping_sub(1);
        let count = if empty { 0 } else { stored.last_offset - stored.base_offset + 1 };
        Self {
            changelog_offset: stored.base_offset,
            changelog_record_count: count as u32,
            duplicate: true,
            durable,
        }
    }
}

impl PkBucket {
    /// Upserts and deletes the rows of `batch` (one `LogBatch` of the table's schema whose
    /// change types, if any, mark deletes), merging with the stored rows; `columns` makes it
    /// a partial update. Returns once the changelog is appended; see [`Self::wait_durable`].
    pub async fn write(
        &self,
        batch: &[u8],
        columns: WriteColumns<'_>,
    ) -> Result<WriteOutcome, PkBucketError> {
        self.check_maintenance()?;
        let decoded = self.decoder.decode(&aligned_copy(batch))?;
        let rows = &decoded.record_batch;
        let ops = row_ops(&decoded)?;
        self.check_buckets(rows)?;
        let stamp = WriterStamp {
            writer_id: decoded.header.writer_id.get(),
            batch_sequence: decoded.header.batch_sequence.get(),
        };
        let target_columns = columns.target_columns();
        let request = WriteRequest { batch: rows, ops: ops.as_deref(), target_columns };
        let _permit = self.write_lock.acquire_permit(1).await.map_err(|_| PkBucketError::Closed)?;
        if stamp.writer_id >= 0 {
            match self.log.check_sequence(stamp.writer_id, stamp.batch_sequence) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(stored) => {
                    return Ok(WriteOutcome::duplicate(stored, self.log.appended_so_far()))
                }
                SequenceCheck::OutOfOrder { expected, got } => {
                    let writer_id = stamp.writer_id;
                    return Err(PkBucketError::OutOfOrderSequence { writer_id, expected, got });
                }
            }
        }
        let keys = self.generator.keys_to_read(&request)?;
        let current = self.current_values(&keys).await?;
        let output = self.generator.generate(&request, &current)?;
        check_sizes(&output.mutations)?;
        let Some(changelog) = output.changelog else {
            if stamp.writer_id >= 0 {
                self.log.record_sequence_without_records(stamp.writer_id, stamp.batch_sequence);
            }
            // Nothing changed, judged against the values earlier writes left: answered as
            // durable once those writes are.
            return Ok(WriteOutcome {
                changelog_offset: self.log.log_end_offset(),
                changelog_record_count: 0,
                duplicate: false,
                durable: self.log.appended_so_far(),
            });
        };
        let mut bytes =
            self.builder.borrow_mut().build(&changelog, Some(&output.change_types), stamp)?;
        let appended = self.log.append(&mut bytes, &self.spec.schema).await?;
        assert!(!appended.duplicate, "the sequence was checked under the write lock");
        let end_offset = appended.last_offset + 1;
        assert!(
            end_offset <= self.log.log_end_offset(),
            "a parked write's changelog is in the log"
        );
        self.pending.borrow_mut().push(end_offset, output.mutations);
        Ok(WriteOutcome {
            changelog_offset: appended.base_offset,
            changelog_record_count: changelog.num_rows() as u32,
            duplicate: false,
            durable: appended.durable,
        })
    }

    /// Waits until the changelog of `outcome` and every earlier one are durable, then moves
    /// every durable pending write into the KV. On failure the write (and every later one
    /// not yet durable) is gone from the changelog and from the pending writes.
    pub async fn wait_durable(
        self: &Rc<Self>,
        outcome: &WriteOutcome,
    ) -> Result<(), PkBucketError> {
        if let Err(error) = self.log.wait_durable_to(outcome.durable).await {
            self.pending.borrow_mut().discard_after(self.log.log_end_offset());
            return Err(error.into());
        }
        self.apply_durable();
        Ok(())
    }

    /// Moves the pending writes below the high watermark into the KV; starts a background
    /// flush or compaction when one is due.
    pub fn apply_durable(self: &Rc<Self>) {
        let high_watermark = self.log.high_watermark();
        let durable = self.pending.borrow_mut().take_durable(high_watermark);
        for write in durable {
            // The pair of `take_durable`'s choice: only durable changes reach the KV.
            assert!(write.end_offset <= high_watermark, "a change reaches the KV once durable");
            self.kv.apply(write.end_offset, write.mutations);
        }
        self.assert_kv_durable();
        if self.kv.needs_flush() || self.kv.needs_compaction() {
            self.start_maintenance();
        }
    }

    /// Current values of `keys`: the newest pending write's, else the KV's.
    async fn current_values(
        &self,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, PkBucketError> {
        let mut values = vec![None; keys.len()];
        let mut missing = Vec::new();
        {
            let pending = self.pending.borrow();
            for (index, key) in keys.iter().enumerate() {
                match pending.get(key) {
                    Some(value) => values[index] = value.map(<[u8]>::to_vec),
                    None => missing.push(index),
                }
            }
        }
        if !missing.is_empty() {
            let wanted: Vec<Vec<u8>> = missing.iter().map(|&index| keys[index].clone()).collect();
            let found = self.kv.multi_get(&wanted).await.map_err(|error| self.noted(error))?;
            for (index, value) in missing.into_iter().zip(found) {
                values[index] = value;
            }
        }
        Ok(values)
    }

    /// Refuses rows whose bucket key hashes to another bucket: stored here, they would be a
    /// second row for their key, invisible to lookups routed by the key.
    fn check_buckets(&self, rows: &RecordBatch) -> Result<(), PkBucketError> {
        if self.spec.bucket_count == 1 {
            return Ok(());
        }
        let buckets = ufer_wire::bucketing::buckets_of_rows(
            rows,
            &self.spec.options.bucket_key,
            self.spec.bucket_count,
        )
        .map_err(PkBucketError::Definition)?;
        match buckets.iter().position(|bucket| *bucket != self.spec.bucket) {
            Some(row) => Err(PkBucketError::WrongBucket {
                row,
                bucket: buckets[row],
                this_bucket: self.spec.bucket,
            }),
            None => Ok(()),
        }
    }
}

/// The operation of each row: from the batch's change types (`-D` deletes, `+I`/`+U`
/// upsert), or all upserts without them.
fn row_ops(decoded: &DecodedBatch) -> Result<Option<Vec<RowOp>>, PkBucketError> {
    if decoded.change_types.is_none() {
        return Ok(None);
    }
    (0..decoded.record_batch.num_rows())
        .map(|row| match decoded.change_type(row) {
            ChangeType::Insert | ChangeType::UpdateAfter | ChangeType::AppendOnly => {
                Ok(RowOp::Upsert)
            }
            ChangeType::Delete => Ok(RowOp::Delete),
            ChangeType::UpdateBefore => Err(PkBucketError::BadChangeType { row }),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Refuses keys and rows the KV cannot store, before anything is appended.
fn check_sizes(mutations: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), PkBucketError> {
    for (key, value) in mutations {
        if key.len() > KV_KEY_SIZE_MAX_BYTES {
            return Err(PkBucketError::KeyTooLarge { size: key.len(), max: KV_KEY_SIZE_MAX_BYTES });
        }
        let size = value.as_ref().map_or(0, Vec::len);
        if size > KV_VALUE_SIZE_MAX_BYTES {
            return Err(PkBucketError::RowTooLarge { size, max: KV_VALUE_SIZE_MAX_BYTES });
        }
    }
    Ok(())
}
