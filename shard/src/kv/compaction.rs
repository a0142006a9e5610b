//! The compaction scheme: tiered, with a fanout `F` (`KvConfig::level_file_count_max`).
//!
//! Flushes add files to level 0. When a level holds `F` files, all of them are merged into
//! one new file that becomes the newest file of the next level (the last level,
//! `KV_LEVEL_COUNT_MAX - 1`, merges into itself). Every file of level `i` is newer than
//! every file of level `i + 1`, and within a level files are ordered newest first, so the
//! read order is simply level by level. Tombstones are dropped only when no older file
//! exists below the merged level (the output is then the oldest data).
//!
//! Write amplification: a byte is rewritten at most once per level it moves down through,
//! and a level-`i` file holds the data of at most `F^i` flushes, so with `L` levels in use
//! (`L ≤ 1 + ⌈log_F(flush count)⌉`) compaction writes at most `(L − 1)` times the bytes
//! flushes wrote (merged output is never larger than its inputs, up to per-block framing).
//! Read amplification: at most `F − 1` files per level are probed, most skipped by their
//! bloom filters. Space amplification: an overwritten key may have one version per level.

use crate::kv::config::KV_LEVEL_COUNT_MAX;

/// The level to compact: the shallowest with at least `fanout` files.
pub(crate) fn level_to_compact(level_file_counts: &[usize], fanout: usize) -> Option<usize> {
    level_file_counts.iter().position(|count| *count >= fanout)
}

/// Where the merge of `level` goes.
pub(crate) fn output_level(level: usize) -> usize {
    assert!(level < KV_LEVEL_COUNT_MAX, "level {level} of {KV_LEVEL_COUNT_MAX}");
    (level + 1).min(KV_LEVEL_COUNT_MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_shallowest_full_level() {
        assert_eq!(level_to_compact(&[1, 3, 4], 4), Some(2));
        assert_eq!(level_to_compact(&[4, 4], 4), Some(0));
        assert_eq!(level_to_compact(&[3, 3], 4), None);
        assert_eq!(output_level(0), 1);
        assert_eq!(output_level(KV_LEVEL_COUNT_MAX - 1), KV_LEVEL_COUNT_MAX - 1);
    }
}
