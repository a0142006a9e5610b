//! Rolling a [`LogTablet`]'s active segment: when it is full or old, it is synced, its
//! index and the writers' snapshot are written, and only then is the next segment's file
//! created — so after a crash the last file is always the only one to recover by scanning.
//!
//! Invariants: a roll holds the append lock; the sealed segment has no pending batch; the
//! new segment starts at the sealed one's end offset (offsets stay dense across segments);
//! an empty segment is never sealed.

use std::rc::Rc;

use ufer_io::{file_name, FileKind};

use crate::log::error::AppendError;
use crate::log::index::SegmentSummary;
use crate::log::segment::{ActiveSegment, Segment, SEGMENT_OFFSET_SPAN_MAX};
use crate::log::tablet::LogTablet;

impl LogTablet {
    /// Seals the active segment and starts a new one if `incoming` bytes or
    /// `incoming_offsets` offsets would overflow it, or it is too old. Called with the append
    /// lock held.
    pub(super) async fn roll_if_due(
        &self,
        incoming: u64,
        incoming_offsets: u64,
    ) -> Result<(), AppendError> {
        if !self.roll_due(incoming, incoming_offsets) {
            return Ok(());
        }
        let writer = self.state.borrow().active.writer.clone();
        // Seal and index the old segment before the new file exists: after a crash, the
        // last file is always the one to recover by scanning.
        if let Err(error) = writer.seal().await {
            self.reconcile_after_failure();
            return Err(error.into());
        }
        let summary = {
            let mut state = self.state.borrow_mut();
            state.refresh_high_watermark();
            assert!(state.nothing_pending(), "sealing made everything durable");
            assert_eq!(state.high_watermark, state.active.segment.end_offset, "all durable");
            state.active.segment.summary()
        };
        assert!(summary.size > 0, "an empty segment is never sealed");
        self.write_seal_files(&summary).await?;
        self.start_next_segment(&summary).await
    }

    /// True if the active segment is not empty and `incoming` bytes or `incoming_offsets`
    /// offsets would overflow it, or it is older than the age limit.
    fn roll_due(&self, incoming: u64, incoming_offsets: u64) -> bool {
        let state = self.state.borrow();
        let segment = &state.active.segment;
        let offsets = segment.end_offset - segment.base_offset + incoming_offsets;
        let full = segment.size + incoming > self.config.segment_size_max_bytes
            || offsets > SEGMENT_OFFSET_SPAN_MAX;
        let age_max_ms = self.config.segment_age_max.as_millis() as i64;
        let old =
            segment.first_timestamp.is_some_and(|first| self.clock.now_ms() - first >= age_max_ms);
        segment.size > 0 && (full || old)
    }

    /// Writes the sealed segment's index files and the writers' snapshot as of its end
    /// (recovery starts from the newest snapshot), and drops the previous snapshot.
    async fn write_seal_files(&self, summary: &SegmentSummary) -> Result<(), AppendError> {
        let (offsets, times) = {
            let state = self.state.borrow();
            (
                state.active.segment.index.encode_offsets(summary),
                state.active.segment.index.encode_times(summary),
            )
        };
        self.dir
            .replace_file(&file_name(summary.base_offset, FileKind::OffsetIndex), &offsets)
            .await?;
        self.dir.replace_file(&file_name(summary.base_offset, FileKind::TimeIndex), &times).await?;
        let snapshot = self.state.borrow().writers.encode();
        let snapshot_name = file_name(summary.base_offset, FileKind::WriterSnapshot);
        self.dir.replace_file(&snapshot_name, &snapshot).await?;
        let previous = self.state.borrow().sealed.last().map(|segment| segment.base_offset);
        if let Some(previous) = previous {
            self.dir.remove(&file_name(previous, FileKind::WriterSnapshot)).await?;
        }
        Ok(())
    }

    /// Creates the next segment at the sealed one's end and makes it the active one.
    async fn start_next_segment(&self, sealed: &SegmentSummary) -> Result<(), AppendError> {
        let name = file_name(sealed.end_offset, FileKind::Segment);
        let new_writer = Rc::new(self.dir.create_writer(&name, self.config.writer).await?);
        let evicted = {
            let mut state = self.state.borrow_mut();
            assert_eq!(state.active.segment.base_offset, sealed.base_offset, "one roll at a time");
            let segment = Segment::empty(sealed.end_offset, Some(new_writer.reader()));
            let old =
                std::mem::replace(&mut state.active, ActiveSegment { segment, writer: new_writer });
            assert_eq!(old.segment.end_offset, sealed.end_offset, "nothing appended meanwhile");
            state.sealed.push(old.segment);
            state.durable_position = 0;
            state.durable_max_timestamp = i64::MIN;
            state.assert_durable_point();
            state.touch_sealed(sealed.base_offset, self.config.open_sealed_segment_count_max)
        };
        for file in evicted {
            file.close().await?;
        }
        Ok(())
    }
}
