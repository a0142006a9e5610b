//! [`PkBucket`]: one bucket of a primary-key table — its changelog (a
//! [`LogTablet`](crate::log::tablet::LogTablet)), its current rows (a
//! [`KvTablet`](crate::kv::KvTablet)), and the write path that keeps the two in step.
//!
//! A write (upsert or delete rows) runs under the bucket's write lock: check the writer's
//! sequence, read the current values of the keys (pending writes first, then the KV), run
//! the table's merge engine (`ChangelogGenerator`), append the changelog records as one
//! `LogBatch`, and park the new values in [`PendingWrites`]. The lock is released before the
//! changelog is durable, so many writes share one `fdatasync`; once the high watermark passes
//! a write's records its values move to the KV. The log is the KV's write-ahead log.
//!
//! Invariants: the KV holds exactly the changelog replayed up to `kv.applied_log_offset()`,
//! which never passes the high watermark (lookups and snapshot scans see only durable
//! changes); pending writes cover `[applied, log end)`; retention never deletes changelog
//! past the KV's last snapshot, so recovery (last snapshot + replay) always has what it
//! needs.
//!
//! The bucket itself is in `bucket`; `open` opens (recovery, rebuild of a corrupt KV) and
//! closes it, `write` is the write path, `reads` the lookups and snapshot scans (open scans
//! kept in `scans`), `maintenance` the background flushes and compactions; `limits` and
//! `error` serve them all.

mod bucket;
mod error;
mod limits;
mod maintenance;
mod open;
pub mod pending;
mod reads;
pub mod scans;
mod write;

#[cfg(test)]
mod clock_tests;

pub use bucket::{PkBucket, PkBucketEnv, PkBucketSpec};
pub use error::PkBucketError;
pub use limits::{
    LOOKUP_KEY_COUNT_MAX, PREFIX_LOOKUP_ROW_COUNT_MAX, REPLAY_READ_SIZE_BYTES,
    SNAPSHOT_SCAN_COUNT_MAX, SNAPSHOT_SCAN_IDLE_MAX, SNAPSHOT_SCAN_PART_SIZE_MAX_BYTES,
};
pub use open::discard_kv;
pub use pending::PendingWrites;
pub use reads::{LookupBy, LookupResult, ScanCursor, ScanPart};
pub use scans::SnapshotScans;
pub use write::{WriteColumns, WriteOutcome};
