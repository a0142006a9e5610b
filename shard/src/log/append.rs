//! The append path of a [`LogTablet`]: checking a batch, giving it offsets and a commit
//! timestamp, writing it to the active segment, making it durable by group commit, going
//! back to the durable point after a failed write, and the idempotent writers' sequences.
//!
//! Invariants: appends, rolls and rollbacks hold the append lock, so only one task writes
//! the active segment; a batch is noted as pending once written and leaves the pending list
//! only when durable or rolled back; after a rollback the tablet keeps exactly the batches
//! the segment writer kept; after a fatal error every append fails with it.

use std::rc::Rc;

use ufer_io::{AppendEnd, IoError, SegmentWriter};
use ufer_wire::header::stamp_server_fields;
use ufer_wire::{BatchError, BatchSchema, LogBatch};

use crate::log::error::AppendError;
use crate::log::recovery::SYNC_FAILED_FILE_NAME;
use crate::log::state::Pending;
use crate::log::tablet::LogTablet;
use crate::log::writers::{SequenceCheck, StoredBatch};

/// What an append was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// First offset of the batch.
    pub base_offset: u64,
    /// Last offset of the batch.
    pub last_offset: u64,
    /// Commit timestamp stamped into it.
    pub commit_timestamp: i64,
    /// True if an idempotent writer's batch was already stored: these are its original
    /// offsets and nothing was written.
    pub duplicate: bool,
    /// What must be durable before the batch is: itself and everything appended before it
    /// (for a duplicate: everything appended when it came again, its original among it).
    pub durable: DurableTarget,
}

/// A point of a log to wait for with [`LogTablet::wait_durable`]: everything appended up to
/// it durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableTarget {
    segment_base: u64,
    end: AppendEnd,
}

/// A batch that passed its checks, with what its header says about it.
#[derive(Clone, Copy, Debug)]
struct CheckedBatch {
    length: u64,
    offset_count: u64,
    /// Idempotent writer id, or -1.
    writer_id: i64,
    batch_sequence: i32,
}

/// Where the next batch goes, read from the state when the append lock is held.
struct Placement {
    writer: Rc<SegmentWriter>,
    base_offset: u64,
    commit_timestamp: i64,
    /// Position in the active segment.
    position: u64,
    segment_base: u64,
}

impl LogTablet {
    /// Appends one batch: checks it (CRC, structure against `schema`, size), assigns its
    /// offsets, stamps offset, commit time and leader epoch into `batch`, and writes it.
    /// Returns once it is written, not once it is durable: see [`Self::wait_durable`].
    pub async fn append(
        &self,
        batch: &mut [u8],
        schema: &BatchSchema,
    ) -> Result<Appended, AppendError> {
        self.check_fatal()?;
        let appended = self.append_unchecked(batch, schema).await;
        match appended {
            Ok(appended) => Ok(appended),
            Err(error) => Err(self.remember_fatal(error).await),
        }
    }

    /// [`Self::append`] then [`Self::wait_durable`]: the `acks=all` path of one node.
    pub async fn append_durable(
        &self,
        batch: &mut [u8],
        schema: &BatchSchema,
    ) -> Result<Appended, AppendError> {
        let appended = self.append(batch, schema).await?;
        self.wait_durable(&appended).await?;
        Ok(appended)
    }

    /// What an append of batch `sequence` from idempotent writer `writer_id` would do now.
    /// A primary-key bucket asks before it turns a write into changelog records.
    pub fn check_sequence(&self, writer_id: i64, sequence: i32) -> SequenceCheck {
        self.state.borrow().writers.check(writer_id, sequence)
    }

    /// Notes batch `sequence` of `writer_id` as applied without records (a primary-key write
    /// that changed nothing), so its retry is a duplicate and its successor is in order. The
    /// note is kept in memory only: it is not in the log to be recovered.
    pub fn record_sequence_without_records(&self, writer_id: i64, sequence: i32) {
        let mut state = self.state.borrow_mut();
        let end = state.active.segment.end_offset;
        let stored = StoredBatch {
            sequence,
            base_offset: end,
            last_offset: end.wrapping_sub(1),
            commit_timestamp: state.last_commit_timestamp,
        };
        state.writers.record(writer_id, stored);
    }

    /// Fails with the first fatal error, if there was one.
    pub(super) fn check_fatal(&self) -> Result<(), AppendError> {
        match self.fatal.borrow().as_ref() {
            Some(reason) => Err(AppendError::Fatal(IoError::Fatal {
                path: self.dir.path().to_path_buf(),
                reason: reason.clone(),
            })),
            None => Ok(()),
        }
    }

    /// Passes `error` on, remembering it if it is fatal. The first fatal error also leaves
    /// a `sync-failed` file in the log's directory: what reads of the segment return may
    /// then not be on the device, and the next open rewrites it before trusting it.
    pub(super) async fn remember_fatal(&self, error: AppendError) -> AppendError {
        let AppendError::Fatal(fatal) = &error else { return error };
        let first = self.fatal.borrow().is_none();
        if first {
            let reason = fatal.to_string();
            self.fatal.borrow_mut().replace(reason.clone());
            if let Err(note) = self.dir.replace_file(SYNC_FAILED_FILE_NAME, reason.as_bytes()).await
            {
                eprintln!(
                    "ufer: {}: could not note the failed sync ({note}); restart only after the \
                     device is checked",
                    self.dir.path().display()
                );
            }
        }
        error
    }

    async fn append_unchecked(
        &self,
        batch: &mut [u8],
        schema: &BatchSchema,
    ) -> Result<Appended, AppendError> {
        let checked = self.check_batch(batch, schema)?;
        let _permit = self.append_lock.acquire_permit(1).await.map_err(|error| {
            AppendError::Io(IoError::from_glommio("waiting to append to", self.dir.path(), error))
        })?;
        if checked.writer_id >= 0 {
            let check =
                self.state.borrow().writers.check(checked.writer_id, checked.batch_sequence);
            match check {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(stored) => return Ok(self.duplicate(stored)),
                SequenceCheck::OutOfOrder { expected, got } => {
                    let writer_id = checked.writer_id;
                    return Err(AppendError::OutOfOrderSequence { writer_id, expected, got });
                }
            }
        }
        self.roll_if_due(checked.length, checked.offset_count).await?;
        let placement = self.place_next();
        stamp_server_fields(
            batch,
            placement.base_offset,
            placement.commit_timestamp,
            self.leader_epoch.get(),
        );
        let end = match placement.writer.append(batch).await {
            Ok(end) => end,
            Err(error) => {
                self.reconcile_after_failure();
                return Err(error.into());
            }
        };
        Ok(self.note_written(batch, &checked, &placement, end))
    }

    /// Checks a batch before it takes the append lock: size, structure and CRC, no bytes
    /// after it, not a projection, and `schema`.
    fn check_batch(&self, batch: &[u8], schema: &BatchSchema) -> Result<CheckedBatch, AppendError> {
        if batch.len() > self.config.batch_size_max_bytes as usize {
            return Err(AppendError::TooLarge {
                size: batch.len(),
                max: self.config.batch_size_max_bytes,
            });
        }
        let parsed = LogBatch::parse(batch)?;
        if parsed.len() != batch.len() {
            return Err(AppendError::InvalidBatch(BatchError::BadLength {
                length: batch.len() as u64,
                reason: "bytes follow the batch",
            }));
        }
        if parsed.attributes().is_projected() {
            return Err(AppendError::InvalidBatch(BatchError::BadHeader {
                field: "attributes",
                reason: "a projected batch cannot be stored".into(),
            }));
        }
        parsed.check_schema(schema)?;
        Ok(CheckedBatch {
            length: batch.len() as u64,
            offset_count: parsed.offset_count(),
            writer_id: parsed.header().writer_id.get(),
            batch_sequence: parsed.header().batch_sequence.get(),
        })
    }

    /// Offsets, commit timestamp and position of the next batch. Called with the append
    /// lock held, after any roll.
    fn place_next(&self) -> Placement {
        let mut state = self.state.borrow_mut();
        let commit_timestamp = self.clock.now_ms().max(state.last_commit_timestamp);
        state.last_commit_timestamp = commit_timestamp;
        let active = &state.active;
        Placement {
            writer: active.writer.clone(),
            base_offset: active.segment.end_offset,
            commit_timestamp,
            position: active.segment.size,
            segment_base: active.segment.base_offset,
        }
    }

    /// Notes a batch the writer took: the segment, its index, the pending list, the tail
    /// cache and the writer's sequence.
    fn note_written(
        &self,
        batch: &[u8],
        checked: &CheckedBatch,
        placement: &Placement,
        end: AppendEnd,
    ) -> Appended {
        let base_offset = placement.base_offset;
        let end_offset = base_offset + checked.offset_count;
        let commit_timestamp = placement.commit_timestamp;
        self.tail.borrow_mut().push(base_offset, end_offset, batch);
        let mut state = self.state.borrow_mut();
        assert_eq!(end.end, placement.position + checked.length, "appended where expected");
        let segment = &mut state.active.segment;
        assert_eq!(segment.base_offset, placement.segment_base, "only the active one is written");
        assert!(commit_timestamp >= segment.max_timestamp, "commit timestamps never decrease");
        let interval = self.config.index_interval_bytes;
        segment.observe_batch(
            placement.position,
            checked.length,
            base_offset,
            end_offset,
            commit_timestamp,
            interval,
        );
        state.push_pending(Pending { end_position: end.end, end_offset, commit_timestamp });
        if checked.writer_id >= 0 {
            let stored = StoredBatch {
                sequence: checked.batch_sequence,
                base_offset,
                last_offset: end_offset - 1,
                commit_timestamp,
            };
            state.writers.record(checked.writer_id, stored);
        }
        Appended {
            base_offset,
            last_offset: end_offset - 1,
            commit_timestamp,
            duplicate: false,
            durable: DurableTarget { segment_base: placement.segment_base, end },
        }
    }

    /// The answer to a retried batch: its original offsets, waited for like a new append.
    fn duplicate(&self, stored: StoredBatch) -> Appended {
        Appended {
            base_offset: stored.base_offset,
            last_offset: stored.last_offset,
            commit_timestamp: stored.commit_timestamp,
            duplicate: true,
            // Wait for everything appended so far: the original is among it.
            durable: self.appended_so_far(),
        }
    }

    /// Everything appended so far, to wait for: what an answer that depends on earlier
    /// appends (a retry, a primary-key write that changes nothing) must see durable first.
    pub fn appended_so_far(&self) -> DurableTarget {
        let state = self.state.borrow();
        DurableTarget {
            segment_base: state.active.segment.base_offset,
            end: state.active.writer.appended_end(),
        }
    }

    /// Waits until an appended batch is durable (group commit: concurrent waiters share one
    /// `fdatasync`). On failure the batch and every later one not yet durable are gone.
    pub async fn wait_durable(&self, appended: &Appended) -> Result<(), AppendError> {
        self.wait_durable_to(appended.durable).await
    }

    /// Waits until everything appended up to `target` is durable; see [`Self::wait_durable`].
    pub async fn wait_durable_to(&self, target: DurableTarget) -> Result<(), AppendError> {
        let writer = {
            let mut state = self.state.borrow_mut();
            if state.active.segment.base_offset != target.segment_base {
                // Its segment was sealed, which synced it.
                state.refresh_high_watermark();
                return Ok(());
            }
            state.active.writer.clone()
        };
        match writer.sync_to(target.end).await {
            Ok(()) => {
                self.state.borrow_mut().refresh_high_watermark();
                Ok(())
            }
            Err(error) => {
                // The lock is never closed, so the permit is always granted.
                let _permit = self.append_lock.acquire_permit(1).await;
                self.reconcile_after_failure();
                Err(self.remember_fatal(error.into()).await)
            }
        }
    }

    /// Makes everything appended durable (graceful shutdown).
    pub async fn sync(&self) -> Result<u64, AppendError> {
        let writer = self.state.borrow().active.writer.clone();
        match writer.sync().await {
            Ok(_) => Ok(self.high_watermark()),
            Err(error) => {
                // The lock is never closed, so the permit is always granted.
                let _permit = self.append_lock.acquire_permit(1).await;
                self.reconcile_after_failure();
                Err(self.remember_fatal(error.into()).await)
            }
        }
    }

    /// After the writer discarded appends that were not durable (a failed write), forget
    /// them here too: offsets, sizes and index entries go back to the durable point.
    pub(super) fn reconcile_after_failure(&self) {
        let mut state = self.state.borrow_mut();
        state.refresh_high_watermark();
        let kept_size = state.active.writer.appended_size();
        let (end_offset, max_timestamp, size) = state.discard_pending_after(kept_size);
        let segment = &mut state.active.segment;
        segment.end_offset = end_offset;
        segment.size = size;
        segment.max_timestamp = max_timestamp;
        if size == 0 {
            segment.first_timestamp = None;
        }
        segment.index.truncate_from(size);
        state.writers.forget_from(end_offset);
        state.assert_durable_point();
        self.tail.borrow_mut().truncate_from(end_offset);
    }

    /// Syncs everything appended and closes every file (graceful shutdown). Files dropped
    /// without this are closed by the reactor later, or not at all if the executor stops.
    pub async fn close(self) -> Result<(), AppendError> {
        self.sync().await?;
        let state = self.state.into_inner();
        for segment in state.sealed {
            if let Some(file) = segment.file {
                file.close().await?;
            }
        }
        if let Some(file) = state.active.segment.file {
            file.close().await?;
        }
        if let Ok(writer) = Rc::try_unwrap(state.active.writer) {
            writer.close().await?;
        }
        Ok(())
    }
}
