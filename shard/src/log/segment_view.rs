//! [`SegmentView`]: where a read of a [`LogTablet`] starts — the segment holding an offset,
//! its file (a sealed segment's is opened on demand and kept among the most recently used),
//! the indexed position to scan from and the known batch starts ahead.
//!
//! Invariants: a view of the active segment ends at its durable position, so a read never
//! sees bytes past the high watermark's batch; an offset inside a gap that a damaged sealed
//! segment left is a corruption error, never a silent skip.

use ufer_io::{file_name, FileKind, SegmentFile};

use crate::log::damage::{self, DamagedRange};
use crate::log::error::ReadError;
use crate::log::tablet::LogTablet;

/// A read position: a segment's file and where to scan it.
pub(crate) struct SegmentView {
    pub(crate) file: SegmentFile,
    /// The offset after the segment's last batch.
    pub(crate) end_offset: u64,
    /// A batch boundary at or before the offset asked for.
    pub(crate) scan_from: u64,
    /// Where its readable bytes end.
    pub(crate) scan_end: u64,
    /// Known batch starts (from the index) in `(scan_from, scan_from + reach]`.
    pub(crate) batch_starts: Vec<u64>,
    /// The damaged range holding the offset asked for, if recovery kept one there.
    pub(crate) damaged: Option<DamagedRange>,
}

/// The segment holding an offset, found in the state without awaiting.
struct Located {
    /// The file, if it is open.
    file: Option<SegmentFile>,
    /// Whether the segment is sealed (its open file is then counted among the recent ones).
    sealed: bool,
    base_offset: u64,
    end_offset: u64,
    scan_from: u64,
    scan_end: u64,
    batch_starts: Vec<u64>,
    damaged: Option<DamagedRange>,
}

impl LogTablet {
    /// The segment holding `offset`, its file (opened if it was closed) and where to start
    /// scanning it; `reach` bytes past that are looked up for known batch starts.
    pub(crate) async fn segment_view(
        &self,
        offset: u64,
        high_watermark: u64,
        reach: usize,
    ) -> Result<SegmentView, ReadError> {
        let located = self.locate(offset, high_watermark, reach)?;
        let base_offset = located.base_offset;
        let file = match located.file {
            Some(file) => file,
            None => self.dir.open_reader(&file_name(base_offset, FileKind::Segment)).await?,
        };
        if located.sealed {
            let evicted = {
                let mut state = self.state.borrow_mut();
                if let Some(segment) =
                    state.sealed.iter_mut().find(|segment| segment.base_offset == base_offset)
                {
                    segment.file.get_or_insert_with(|| file.clone());
                }
                state.touch_sealed(base_offset, self.config.open_sealed_segment_count_max)
            };
            for evicted in evicted {
                evicted.close().await?;
            }
        }
        Ok(SegmentView {
            file,
            end_offset: located.end_offset,
            scan_from: located.scan_from,
            scan_end: located.scan_end,
            batch_starts: located.batch_starts,
            damaged: located.damaged,
        })
    }

    /// Finds the segment holding `offset` and the indexed position at or before it.
    fn locate(&self, offset: u64, high_watermark: u64, reach: usize) -> Result<Located, ReadError> {
        let state = self.state.borrow();
        let position = state.sealed.partition_point(|segment| segment.base_offset <= offset);
        let in_sealed = position < state.sealed.len() || state.active.segment.base_offset > offset;
        let (segment, scan_end, next_base) = if in_sealed {
            let index = position.checked_sub(1).ok_or(ReadError::OffsetOutOfRange {
                requested: offset,
                earliest: state.log_start_offset(),
                high_watermark,
            })?;
            let segment = &state.sealed[index];
            let next = state
                .sealed
                .get(position)
                .map_or(state.active.segment.base_offset, |next| next.base_offset);
            (segment, segment.size, next)
        } else {
            (&state.active.segment, state.durable_position, u64::MAX)
        };
        if offset >= segment.end_offset && offset < next_base {
            let path = self.dir.file_path(&file_name(segment.base_offset, FileKind::Segment));
            return Err(ReadError::Corrupt {
                path,
                position: segment.size,
                reason: format!(
                    "offsets {}..{next_base} were lost from this segment",
                    segment.end_offset
                ),
            });
        }
        assert!(scan_end <= segment.size, "a view ends inside its segment");
        let relative =
            u32::try_from(offset.saturating_sub(segment.base_offset)).unwrap_or(u32::MAX);
        let scan_from = segment.index.position_for(relative);
        let reach_end = scan_from.saturating_add(reach as u64).min(scan_end);
        Ok(Located {
            file: segment.file.clone(),
            sealed: in_sealed,
            base_offset: segment.base_offset,
            end_offset: segment.end_offset,
            scan_from,
            scan_end,
            batch_starts: segment.index.positions_between(scan_from, reach_end),
            damaged: damage::containing(&segment.damaged, offset).cloned(),
        })
    }
}
