//! [`State`]: what a log tablet knows about its files between awaits — the sealed segments
//! and the active one, the appends not yet known to be durable, the high watermark, the
//! idempotent writers, and which sealed segments' files are open. Recovery builds it; the
//! append, read and retention paths of the tablet share it.
//!
//! Invariants: sealed segments are in offset order and never overlap, and the active
//! segment starts at or after the end of the last sealed one; pending appends are in offset
//! and file order, each ending past the high watermark when it is noted; the high watermark
//! only moves forward and never passes the log end offset; the durable position never
//! passes the active segment's size. The state is updated without awaiting, so no task
//! sees it half-changed.

use std::collections::VecDeque;
use std::rc::Rc;

use ufer_io::{Notifier, SegmentFile};

use crate::log::segment::{ActiveSegment, Segment};
use crate::log::writers::WriterTable;

/// A batch appended to the active segment, not yet known to be durable.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    /// Position in the active segment after the batch.
    pub(crate) end_position: u64,
    /// The offset after the batch.
    pub(crate) end_offset: u64,
    /// Its commit timestamp.
    pub(crate) commit_timestamp: i64,
}

/// The segments, durability and writers of one log tablet.
pub(crate) struct State {
    pub(crate) sealed: Vec<Segment>,
    pub(crate) active: ActiveSegment,
    pending: VecDeque<Pending>,
    pub(crate) high_watermark: u64,
    /// Position in the active segment up to which batches are durable.
    pub(crate) durable_position: u64,
    /// Commit timestamp of the last durable batch of the active segment.
    pub(crate) durable_max_timestamp: i64,
    pub(crate) last_commit_timestamp: i64,
    /// Base offsets of sealed segments whose file is open, least recently used first.
    open_sealed: VecDeque<u64>,
    /// Idempotent writers.
    pub(crate) writers: WriterTable,
    /// Notified whenever the high watermark moves.
    pub(crate) data_arrived: Rc<Notifier>,
}

impl State {
    /// The state of a log whose every batch is durable (as recovery finds it).
    pub(crate) fn new(
        sealed: Vec<Segment>,
        active: ActiveSegment,
        last_commit_timestamp: i64,
        writers: WriterTable,
    ) -> Self {
        for pair in sealed.windows(2) {
            assert!(
                pair[0].end_offset <= pair[1].base_offset,
                "sealed segment {} ends at {}, past the start of the next one ({})",
                pair[0].base_offset,
                pair[0].end_offset,
                pair[1].base_offset
            );
        }
        if let Some(last) = sealed.last() {
            assert!(last.end_offset <= active.segment.base_offset, "sealed segments precede");
        }
        for segment in sealed.iter().chain([&active.segment]) {
            assert!(
                segment.max_timestamp <= last_commit_timestamp,
                "the last commit timestamp is the newest"
            );
        }
        let high_watermark = active.segment.end_offset;
        let durable_position = active.segment.size;
        let durable_max_timestamp = active.segment.max_timestamp;
        Self {
            sealed,
            active,
            pending: VecDeque::new(),
            high_watermark,
            durable_position,
            durable_max_timestamp,
            last_commit_timestamp,
            open_sealed: VecDeque::new(),
            writers,
            data_arrived: Rc::new(Notifier::default()),
        }
    }

    /// Notes that sealed segment `base` was used; returns files to close if too many are
    /// open.
    pub(crate) fn touch_sealed(&mut self, base: u64, open_max: usize) -> Vec<SegmentFile> {
        self.open_sealed.retain(|open| *open != base);
        self.open_sealed.push_back(base);
        let mut evicted = Vec::new();
        while self.open_sealed.len() > open_max {
            let Some(oldest) = self.open_sealed.pop_front() else { break };
            if let Some(segment) =
                self.sealed.iter_mut().find(|segment| segment.base_offset == oldest)
            {
                evicted.extend(segment.file.take());
            }
        }
        evicted
    }

    /// Forgets that sealed segment `base` has an open file (it is being deleted).
    pub(crate) fn forget_sealed(&mut self, base: u64) {
        self.open_sealed.retain(|open| *open != base);
    }

    /// The earliest offset in the log.
    pub(crate) fn log_start_offset(&self) -> u64 {
        self.sealed.first().map_or(self.active.segment.base_offset, |segment| segment.base_offset)
    }

    /// Bytes of batches in all segments.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.sealed.iter().map(|segment| segment.size).sum::<u64>() + self.active.segment.size
    }

    /// Notes a batch appended to the active segment, durable once the writer's durable size
    /// reaches `pending.end_position`.
    pub(crate) fn push_pending(&mut self, pending: Pending) {
        assert!(pending.end_offset > self.high_watermark, "a new batch is past the durable");
        assert!(pending.end_position > self.durable_position, "a new batch is past the durable");
        if let Some(last) = self.pending.back() {
            assert!(
                pending.end_offset > last.end_offset && pending.end_position > last.end_position,
                "pending batches are in offset and file order"
            );
        }
        assert_eq!(pending.end_offset, self.active.segment.end_offset, "noted once appended");
        self.pending.push_back(pending);
    }

    /// True if every appended batch is known to be durable.
    pub(crate) fn nothing_pending(&self) -> bool {
        self.pending.is_empty()
    }

    /// Moves the high watermark over every batch the writer has made durable.
    pub(crate) fn refresh_high_watermark(&mut self) {
        let durable = self.active.writer.durable_size();
        let before = self.high_watermark;
        while let Some(pending) = self.pending.front().copied() {
            if pending.end_position > durable {
                break;
            }
            self.pending.pop_front();
            // The pair of `push_pending`'s checks: a batch becomes durable past the last one.
            assert!(pending.end_offset > self.high_watermark, "the high watermark moves forward");
            self.high_watermark = pending.end_offset;
            self.durable_position = pending.end_position;
            self.durable_max_timestamp = pending.commit_timestamp;
        }
        self.assert_durable_point();
        if self.high_watermark != before {
            self.data_arrived.notify_all();
        }
    }

    /// After the writer discarded the appends past `kept_size` (a failed write), forgets
    /// them here too. Returns the new end of the active segment: offset, newest commit
    /// timestamp, size.
    pub(crate) fn discard_pending_after(&mut self, kept_size: u64) -> (u64, i64, u64) {
        while self.pending.back().is_some_and(|pending| pending.end_position > kept_size) {
            self.pending.pop_back();
        }
        let end = match self.pending.back() {
            Some(pending) => (pending.end_offset, pending.commit_timestamp, pending.end_position),
            None => (self.high_watermark, self.durable_max_timestamp, self.durable_position),
        };
        assert_eq!(end.2, kept_size, "the writer keeps exactly the batches the tablet keeps");
        end
    }

    /// The durable point lies inside what is appended: the high watermark never passes the
    /// log end offset, the durable position never passes the active segment's size.
    pub(crate) fn assert_durable_point(&self) {
        let segment = &self.active.segment;
        assert!(
            self.high_watermark <= segment.end_offset,
            "high watermark {} is past the log end offset {}",
            self.high_watermark,
            segment.end_offset
        );
        assert!(
            self.high_watermark >= segment.base_offset,
            "the active segment's start is durable"
        );
        assert!(self.durable_position <= segment.size, "the durable position is in the file");
    }
}
