//! Retention of a [`LogTablet`]: deleting whole sealed segments, oldest first, while the
//! log is over its size limit or its oldest segment is past the age limit — never a segment
//! holding offsets at or past a floor (a primary-key changelog after its last KV snapshot,
//! a lake table's records not yet tiered), and never the active segment.
//!
//! Invariants: retention holds the append lock; the log start offset only moves forward;
//! a segment's log file is removed before its index files (leftovers are removed at the
//! next open).

use ufer_io::{file_name, FileKind, IoError};

use crate::log::error::RetentionError;
use crate::log::segment::Segment;
use crate::log::tablet::LogTablet;

/// What retention removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes of batches deleted.
    pub deleted_bytes: u64,
}

impl LogTablet {
    /// Keeps every segment with offsets at or past `offset` from retention: the changelog a
    /// primary-key bucket's KV snapshot still needs to be rebuilt.
    pub fn set_retention_floor(&self, offset: u64) {
        self.retention_floor.set(offset);
    }

    /// Keeps every segment with offsets at or past `offset` from retention: the records of a
    /// lake-enabled table that are not in the lake yet.
    pub fn set_lake_floor(&self, offset: u64) {
        self.lake_floor.set(offset);
    }

    /// Deletes sealed segments, oldest first, while the log is over its size limit or the
    /// oldest segment's newest batch is past the age limit. Never the active segment.
    pub async fn apply_retention(&self) -> Result<RetentionOutcome, RetentionError> {
        let _permit = self.append_lock.acquire_permit(1).await.map_err(|error| {
            RetentionError(IoError::from_glommio("waiting to trim", self.dir.path(), error))
        })?;
        let mut outcome = RetentionOutcome::default();
        while let Some(victim) = self.next_victim() {
            if let Some(file) = victim.file {
                file.close().await?;
            }
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += victim.size;
            // The log file first: once it is gone the segment is gone; leftover index files
            // are removed at the next open.
            for kind in FileKind::ALL {
                self.dir.remove(&file_name(victim.base_offset, kind)).await?;
            }
        }
        if outcome.deleted_segments > 0 {
            self.dir.sync().await?;
        }
        Ok(outcome)
    }

    /// Takes the oldest sealed segment out of the log if retention deletes it.
    fn next_victim(&self) -> Option<Segment> {
        let mut state = self.state.borrow_mut();
        let total = state.size_bytes();
        let oldest = state.sealed.first()?;
        let floor = self.retention_floor.get().min(self.lake_floor.get());
        if oldest.end_offset > floor {
            return None;
        }
        let over_size = self.config.retention_size_max_bytes.is_some_and(|max| total > max);
        let too_old = self
            .config
            .retention_age_max
            .is_some_and(|age| oldest.max_timestamp < self.clock.now_ms() - age.as_millis() as i64);
        if !over_size && !too_old {
            return None;
        }
        let start_before = state.log_start_offset();
        let victim = state.sealed.remove(0);
        state.forget_sealed(victim.base_offset);
        assert_eq!(victim.base_offset, start_before, "the oldest segment goes first");
        assert!(victim.end_offset <= floor, "nothing at or past a floor is deleted");
        assert!(
            state.log_start_offset() >= victim.end_offset,
            "only whole sealed segments are deleted: the log now starts past the deleted one"
        );
        assert!(state.high_watermark >= victim.end_offset, "only durable segments are sealed");
        Some(victim)
    }
}
