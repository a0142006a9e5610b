//! The KV tablet: the latest row per primary key of a bucket, as a log-structured merge
//! tree over direct I/O.
//!
//! Writes go to an ordered in-memory memtable; flushes turn frozen memtables into
//! immutable sorted files (data blocks with CRC32C, a block index, a bloom filter, a
//! footer); a tiered compaction merges files with bounded write amplification; a manifest
//! names the live files and the changelog offset they cover. The table's changelog is the
//! write-ahead log: after a crash the caller replays it from `snapshot_log_offset`.
//! Byte formats: `docs/format.md`, "KV files".

mod block;
mod bloom;
mod cache;
mod codec;
mod compaction;
mod config;
mod error;
mod manifest;
mod memtable;
mod merge;
mod sst;
mod tablet;
mod view;

#[cfg(test)]
mod tablet_tests;

pub use cache::{BlockCache, BLOCK_CACHE_ENTRY_OVERHEAD_BYTES};
pub use config::{
    KvConfig, KV_FROZEN_MEMTABLE_COUNT_MAX, KV_KEY_SIZE_MAX_BYTES, KV_LEVEL_COUNT_MAX,
    KV_VALUE_SIZE_MAX_BYTES,
};
pub use error::KvError;
pub use tablet::{KvStats, KvTablet};
pub use view::{KvEntries, KvView};
