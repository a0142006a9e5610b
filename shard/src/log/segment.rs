//! A segment as the tablet keeps it in memory: its offsets, size, timestamps, sparse index
//! and file; plus the active segment's writer.

use std::rc::Rc;

use ufer_io::{SegmentFile, SegmentWriter};

use crate::log::damage::DamagedRange;
use crate::log::index::{SegmentIndex, SegmentSummary};

/// Most offsets one segment spans: its index holds 32-bit relative offsets.
pub const SEGMENT_OFFSET_SPAN_MAX: u64 = u32::MAX as u64;

/// One segment of a bucket's log.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first batch (also the file name).
    pub base_offset: u64,
    /// Offset after the last batch.
    pub end_offset: u64,
    /// Bytes of batches in the file.
    pub size: u64,
    /// Commit timestamp of the first batch, if any (segment age for rolling).
    pub first_timestamp: Option<i64>,
    /// Commit timestamp of the last batch (`i64::MIN` if empty).
    pub max_timestamp: i64,
    /// Sparse offset and time index.
    pub index: SegmentIndex,
    /// The file, for reads: always open for the active segment, opened on demand (and
    /// closed again when many are open) for sealed ones.
    pub file: Option<SegmentFile>,
    /// Damaged offsets recovery kept (followed by valid batches), in order.
    pub damaged: Vec<DamagedRange>,
}

impl Segment {
    /// An empty segment starting at `base_offset`.
    pub fn empty(base_offset: u64, file: Option<SegmentFile>) -> Self {
        Self {
            base_offset,
            end_offset: base_offset,
            size: 0,
            first_timestamp: None,
            max_timestamp: i64::MIN,
            index: SegmentIndex::default(),
            file,
            damaged: Vec::new(),
        }
    }

    /// The summary written into the index files when the segment is sealed.
    pub fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            base_offset: self.base_offset,
            end_offset: self.end_offset,
            size: self.size,
            max_timestamp: self.max_timestamp,
        }
    }

    /// Notes damaged bytes from the segment's end to `resume_position`, where a valid batch
    /// with base offset `resume_offset` starts: the offsets between are kept as damaged, and
    /// that batch is indexed so that reads from its offset on start there.
    pub fn skip_damage(&mut self, resume_position: u64, resume_offset: u64) {
        assert!(resume_position > self.size, "damage takes bytes");
        assert!(resume_offset > self.end_offset, "damage takes offsets");
        self.damaged.push(DamagedRange {
            segment_base: self.base_offset,
            offsets: self.end_offset..resume_offset,
            positions: self.size..resume_position,
        });
        self.size = resume_position;
        self.end_offset = resume_offset;
        self.index.force_next_entry();
    }

    /// Notes a batch appended (or recovered) at `position`.
    pub fn observe_batch(
        &mut self,
        position: u64,
        length: u64,
        base_offset: u64,
        end_offset: u64,
        commit_timestamp: i64,
        index_interval_bytes: u64,
    ) {
        assert_eq!(position, self.size, "batches are laid back to back");
        assert_eq!(base_offset, self.end_offset, "offsets are dense");
        let relative = u32::try_from(base_offset - self.base_offset).unwrap_or(u32::MAX);
        let position_u32 = u32::try_from(position).unwrap_or(u32::MAX);
        self.index.observe(relative, position_u32, commit_timestamp, index_interval_bytes);
        self.size = position + length;
        self.end_offset = end_offset;
        self.first_timestamp.get_or_insert(commit_timestamp);
        self.max_timestamp = self.max_timestamp.max(commit_timestamp);
    }
}

/// The segment appends go to.
#[derive(Debug)]
pub struct ActiveSegment {
    /// What is appended so far (durable or not).
    pub segment: Segment,
    /// The writer; shared so it can be used across awaits without holding the state.
    pub writer: Rc<SegmentWriter>,
}
