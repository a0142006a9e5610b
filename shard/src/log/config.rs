//! [`LogConfig`]: the limits of one bucket's log, with the two presets every config has.

use std::time::Duration;

use ufer_io::WriterOptions;
use ufer_wire::limits::BATCH_SIZE_MAX_BYTES;

/// Limits and policies of a log tablet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A non-empty segment is rolled before an append would take it past this size (so a
    /// batch larger than this gets a segment of its own).
    pub segment_size_max_bytes: u64,
    /// A segment is rolled at the first append after its first batch is this old.
    pub segment_age_max: Duration,
    /// Log bytes between two sparse index entries.
    pub index_interval_bytes: u64,
    /// Largest batch an append accepts (at most the format's own limit).
    pub batch_size_max_bytes: u32,
    /// Retention by size: oldest sealed segments are deleted while the log is larger.
    pub retention_size_max_bytes: Option<u64>,
    /// Retention by age: sealed segments whose newest batch is older are deleted.
    pub retention_age_max: Option<Duration>,
    /// Sealed segment files kept open for reads; older ones are closed and reopened when
    /// read again, so a long log does not hold a descriptor per segment.
    pub open_sealed_segment_count_max: usize,
    /// Memory of the active segment's writer.
    pub writer: WriterOptions,
    /// Memory for the newest small batches, served to tailing readers without a disk read
    /// (0: off). See `tail_cache`.
    pub tail_cache_bytes: usize,
}

/// Segments are addressed with 32-bit positions in their index.
pub const SEGMENT_SIZE_MAX_BYTES: u64 = u32::MAX as u64;

impl LogConfig {
    /// Production defaults: 1 GiB segments rolled at least weekly, 64 KiB index interval,
    /// 16 MiB batches, no retention limit.
    pub fn production() -> Self {
        Self {
            segment_size_max_bytes: 1 << 30,
            segment_age_max: Duration::from_secs(7 * 24 * 3600),
            index_interval_bytes: 64 * 1024,
            batch_size_max_bytes: 16 * 1024 * 1024,
            retention_size_max_bytes: None,
            retention_age_max: None,
            open_sealed_segment_count_max: 32,
            writer: WriterOptions::production(),
            tail_cache_bytes: 1024 * 1024,
        }
    }

    /// Tiny limits so rolls, index entries and buffer rotations happen in every test.
    pub fn test_min() -> Self {
        Self {
            segment_size_max_bytes: 4096,
            segment_age_max: Duration::from_secs(3600),
            index_interval_bytes: 512,
            batch_size_max_bytes: 1024 * 1024,
            retention_size_max_bytes: None,
            retention_age_max: None,
            open_sealed_segment_count_max: 2,
            writer: WriterOptions::test_min(),
            tail_cache_bytes: 16 * 1024,
        }
    }

    /// Checks the relations between the limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_size_max_bytes == 0 || self.segment_size_max_bytes > SEGMENT_SIZE_MAX_BYTES
        {
            return Err(format!(
                "segment_size_max_bytes must be in 1..={SEGMENT_SIZE_MAX_BYTES}, not {}",
                self.segment_size_max_bytes
            ));
        }
        if self.batch_size_max_bytes == 0 || self.batch_size_max_bytes > BATCH_SIZE_MAX_BYTES {
            return Err(format!(
                "batch_size_max_bytes must be in 1..={BATCH_SIZE_MAX_BYTES}, not {}",
                self.batch_size_max_bytes
            ));
        }
        if self.open_sealed_segment_count_max == 0 {
            return Err("open_sealed_segment_count_max must be positive".into());
        }
        if self.index_interval_bytes == 0 {
            return Err("index_interval_bytes must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        LogConfig::production().validate().unwrap();
        LogConfig::test_min().validate().unwrap();
        let mut config = LogConfig::test_min();
        config.segment_size_max_bytes = SEGMENT_SIZE_MAX_BYTES + 1;
        assert!(config.validate().is_err());
    }
}
