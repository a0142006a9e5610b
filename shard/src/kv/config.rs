//! [`KvConfig`]: the limits of one KV tablet, with the two presets every config has, and
//! the size limits of keys and values.

use ufer_io::WriterOptions;

/// Largest key the KV accepts. Keys are stored with a 16-bit length.
pub const KV_KEY_SIZE_MAX_BYTES: usize = 4096;
/// Largest value the KV accepts. Values are stored with a 32-bit length.
pub const KV_VALUE_SIZE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Levels of the tiered compaction scheme; the last one merges into itself.
pub const KV_LEVEL_COUNT_MAX: usize = 32;
/// Frozen memtables (taken by views or waiting for a flush) after which a flush is due,
/// so reads do not probe an unbounded list of small memtables.
pub const KV_FROZEN_MEMTABLE_COUNT_MAX: usize = 16;

const _: () = assert!(KV_KEY_SIZE_MAX_BYTES <= u16::MAX as usize);
const _: () = assert!(KV_VALUE_SIZE_MAX_BYTES < u32::MAX as usize);

/// Limits and policies of a KV tablet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvConfig {
    /// Memtable bytes (keys, values and per-entry overhead) after which a flush is due.
    pub memtable_size_max_bytes: usize,
    /// Target size of a data block of a sorted file; a block holds at least one entry.
    pub block_size_bytes: usize,
    /// Bloom filter bits per key of a sorted file (~10 gives ~1% false positives).
    pub bloom_bits_per_key: u32,
    /// Bytes of decoded blocks the tablet's own block cache keeps (when no shared cache is
    /// passed to `open_with_cache`).
    pub block_cache_size_max_bytes: usize,
    /// Compaction fanout: when a level holds this many files they are merged into one file
    /// of the next level.
    pub level_file_count_max: usize,
    /// Memory of the writer of one sorted file.
    pub writer: WriterOptions,
}

impl KvConfig {
    /// Production defaults: 64 MiB memtables, 4 KiB blocks, 10 bloom bits per key, a
    /// 256 MiB block cache, fanout 4.
    pub fn production() -> Self {
        Self {
            memtable_size_max_bytes: 64 * 1024 * 1024,
            block_size_bytes: 4096,
            bloom_bits_per_key: 10,
            block_cache_size_max_bytes: 256 * 1024 * 1024,
            level_file_count_max: 4,
            writer: WriterOptions::production(),
        }
    }

    /// Tiny limits so flushes, block splits, cache evictions and compactions happen
    /// constantly in tests.
    pub fn test_min() -> Self {
        Self {
            memtable_size_max_bytes: 1024,
            block_size_bytes: 128,
            bloom_bits_per_key: 10,
            block_cache_size_max_bytes: 4096,
            level_file_count_max: 2,
            writer: WriterOptions::test_min(),
        }
    }

    /// Checks the limits against each other and against the format.
    pub fn validate(&self) -> Result<(), String> {
        if self.memtable_size_max_bytes == 0 {
            return Err("memtable_size_max_bytes must be positive".into());
        }
        if !(64..=1024 * 1024).contains(&self.block_size_bytes) {
            return Err("block_size_bytes must be in 64..=1 MiB".into());
        }
        if !(1..=32).contains(&self.bloom_bits_per_key) {
            return Err("bloom_bits_per_key must be in 1..=32".into());
        }
        if !(2..=64).contains(&self.level_file_count_max) {
            return Err("level_file_count_max must be in 2..=64".into());
        }
        let buffer = self.writer.buffer_size_bytes;
        if buffer == 0 || !buffer.is_multiple_of(ufer_io::BLOCK_SIZE_BYTES as usize) {
            return Err("writer.buffer_size_bytes must be a positive multiple of 4096".into());
        }
        if self.writer.queued_buffer_count_max == 0 {
            return Err("writer.queued_buffer_count_max must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        assert_eq!(KvConfig::production().validate(), Ok(()));
        assert_eq!(KvConfig::test_min().validate(), Ok(()));
        let config = KvConfig { level_file_count_max: 1, ..KvConfig::test_min() };
        assert!(config.validate().is_err());
    }
}
