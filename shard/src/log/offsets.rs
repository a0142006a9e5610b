//! Offset lookups of a [`LogTablet`]: the earliest offset, the high watermark, or the first
//! offset committed at or after a time — found through the sparse time index, then by
//! scanning batch headers from there.
//!
//! Invariants: an answer lies between the log start offset and the high watermark; a
//! lookup by time never reads past the high watermark.

use crate::log::error::ReadError;
use crate::log::scan::{CrcCheck, ScanStep, SegmentScanner};
use crate::log::tablet::LogTablet;

/// Window for scanning batch headers to find an offset or a time.
const LOOKUP_WINDOW_SIZE_BYTES: usize = 64 * 1024;

/// Where to look up an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The earliest offset still in the log.
    Earliest,
    /// The high watermark: the offset the next durable record will get.
    Latest,
    /// The first offset committed at or after this time (ms since the epoch), or the high
    /// watermark if there is none.
    Timestamp(i64),
}

/// What a scan of one segment for a time found.
enum TimeScan {
    /// The first offset at or after the time (or the high watermark).
    Found(u64),
    /// Not in this segment.
    NotHere,
}

impl LogTablet {
    /// The first offset at or after `spec`.
    pub async fn list_offsets(&self, spec: OffsetSpec) -> Result<u64, ReadError> {
        let (log_start_offset, high_watermark) = {
            let mut state = self.state.borrow_mut();
            state.refresh_high_watermark();
            (state.log_start_offset(), state.high_watermark)
        };
        let timestamp = match spec {
            OffsetSpec::Earliest => return Ok(log_start_offset),
            OffsetSpec::Latest => return Ok(high_watermark),
            OffsetSpec::Timestamp(timestamp) => timestamp,
        };
        let Some(mut offset) = self.indexed_offset_before(timestamp) else {
            return Ok(high_watermark);
        };
        while offset < high_watermark {
            let view = self.segment_view(offset, high_watermark, 0).await?;
            let mut scanner = SegmentScanner::new(
                &view.file,
                view.scan_from,
                view.scan_end,
                None,
                CrcCheck::Skip,
                LOOKUP_WINDOW_SIZE_BYTES,
            );
            let scanned = scan_for_time(&mut scanner, timestamp, offset, high_watermark).await?;
            if let TimeScan::Found(found) = scanned {
                let found = found.max(log_start_offset);
                assert!(found <= high_watermark, "an offset lookup never passes the hwm");
                return Ok(found);
            }
            offset = offset.max(view.end_offset);
        }
        Ok(high_watermark)
    }

    /// Where a scan for the first batch committed at or after `timestamp` starts: in the
    /// first segment whose newest durable batch is at or after it, per its time index.
    fn indexed_offset_before(&self, timestamp: i64) -> Option<u64> {
        let state = self.state.borrow();
        let sealed = state.sealed.iter().find(|segment| segment.max_timestamp >= timestamp);
        let segment = match sealed {
            Some(segment) => segment,
            None if state.durable_max_timestamp >= timestamp => &state.active.segment,
            None => return None,
        };
        Some(segment.base_offset + u64::from(segment.index.offset_before_time(timestamp)))
    }
}

/// Scans one segment for the first batch committed at or after `timestamp` that ends past
/// `offset`, stopping at `high_watermark`.
async fn scan_for_time(
    scanner: &mut SegmentScanner<'_>,
    timestamp: i64,
    offset: u64,
    high_watermark: u64,
) -> Result<TimeScan, ReadError> {
    loop {
        match scanner.next().await? {
            ScanStep::Batch(batch) if batch.base_offset >= high_watermark => {
                return Ok(TimeScan::Found(high_watermark))
            }
            ScanStep::Batch(batch)
                if batch.commit_timestamp >= timestamp && batch.end_offset > offset =>
            {
                return Ok(TimeScan::Found(batch.base_offset));
            }
            ScanStep::Batch(_) => {}
            ScanStep::End => return Ok(TimeScan::NotHere),
            ScanStep::Stop(stop) => {
                return Err(ReadError::corrupt(scanner.file(), stop.position, stop.reason));
            }
        }
    }
}
