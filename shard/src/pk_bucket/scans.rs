//! [`SnapshotScans`]: the snapshot scans of a primary-key bucket in progress, each a
//! consistent [`KvView`] read in parts over several requests.
//!
//! A view pins the KV files it reads (compaction cannot delete them) and a copy of the
//! memtable, so scans are bounded: at most [`SNAPSHOT_SCAN_COUNT_MAX`] per bucket, and one
//! idle for [`SNAPSHOT_SCAN_IDLE_MAX`] (on the bucket's clock) is dropped (its reader gets
//! `ScanNotFound` and starts again).
//!
//! Invariants: a scan starts only while fewer than [`SNAPSHOT_SCAN_COUNT_MAX`] are held (scans
//! started meanwhile, whose first part is being read, are not counted); scan ids are never
//! reused; a scan being read is out of the table until its part is read.

use std::collections::HashMap;
use std::rc::Rc;

use crate::clock::MonotonicTime;
use crate::kv::KvView;
use crate::pk_bucket::limits::{SNAPSHOT_SCAN_COUNT_MAX, SNAPSHOT_SCAN_IDLE_MAX};

/// Where a scan is: its view and the last key returned.
#[derive(Debug)]
pub struct ScanPosition {
    /// The consistent state the scan reads.
    pub view: Rc<KvView>,
    /// The last key returned; `None` before the first part.
    pub resume_after: Option<Vec<u8>>,
}

struct Scan {
    position: ScanPosition,
    last_used: MonotonicTime,
}

/// Open scans of one bucket.
#[derive(Default)]
pub struct SnapshotScans {
    next_id: u64,
    scans: HashMap<u64, Scan>,
}

impl std::fmt::Debug for SnapshotScans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotScans").field("open", &self.scans.len()).finish()
    }
}

impl SnapshotScans {
    /// Drops the scans idle for [`SNAPSHOT_SCAN_IDLE_MAX`] at `now`.
    pub fn expire(&mut self, now: MonotonicTime) {
        self.scans.retain(|_, scan| {
            now.saturating_duration_since(scan.last_used) < SNAPSHOT_SCAN_IDLE_MAX
        });
    }

    /// True if no other scan may start.
    pub fn is_full(&self) -> bool {
        self.scans.len() >= SNAPSHOT_SCAN_COUNT_MAX
    }

    /// An id for a new scan (ids start at 1 and are never reused).
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Takes scan `id` out to read its next part; `None` if it is unknown.
    pub fn take(&mut self, id: u64) -> Option<ScanPosition> {
        self.scans.remove(&id).map(|scan| scan.position)
    }

    /// Keeps scan `id`, last used at `now`, for its next part.
    pub fn put_back(&mut self, id: u64, position: ScanPosition, now: MonotonicTime) {
        assert!(id > 0 && id <= self.next_id, "scan ids are handed out here");
        let replaced = self.scans.insert(id, Scan { position, last_used: now });
        assert!(replaced.is_none(), "a scan is read by one request at a time");
    }

    /// Scans open now.
    pub fn len(&self) -> usize {
        self.scans.len()
    }

    /// True if none is open.
    pub fn is_empty(&self) -> bool {
        self.scans.is_empty()
    }
}
