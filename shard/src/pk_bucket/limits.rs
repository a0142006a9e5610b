//! The limits of a primary-key bucket's reads: changelog replay steps, lookups and snapshot
//! scans.

use std::time::Duration;

/// Bytes of changelog read per step when the KV is rebuilt from the log at open.
pub const REPLAY_READ_SIZE_BYTES: usize = 4 * 1024 * 1024;

/// Most rows one prefix lookup answers with (it says so when it stops early).
pub const PREFIX_LOOKUP_ROW_COUNT_MAX: usize = 10_000;

/// Most keys one lookup request may carry.
pub const LOOKUP_KEY_COUNT_MAX: usize = 10_000;

/// Snapshot scans open at once per bucket.
pub const SNAPSHOT_SCAN_COUNT_MAX: usize = 16;

/// A scan not continued for this long is dropped.
pub const SNAPSHOT_SCAN_IDLE_MAX: Duration = Duration::from_secs(60);

/// Most bytes of rows one part of a scan returns.
pub const SNAPSHOT_SCAN_PART_SIZE_MAX_BYTES: usize = 16 * 1024 * 1024;
