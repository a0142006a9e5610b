//! [`SnapshotScans`]: the snapshot scans of a primary-key bucket in progress, each a
//! consistent [`KvView`] read in parts over several requests.
//!
//! A view pins the KV files it reads (compaction cannot delete them) and a copy of the
//! memtable, so scans are bounded: at most [`SNAPSHOT_SCAN_COUNT_MAX`] per bucket, and one
//! idle for [`SNAPSHOT_SCAN_IDLE_MAX`] is dropped (its reader gets `ScanNotFound` and starts
//! again).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;

use crate::kv::KvView;
use crate::pk_bucket::{PkBucket, PkBucketError};

/// Snapshot scans open at once per bucket.
pub const SNAPSHOT_SCAN_COUNT_MAX: usize = 16;

/// A scan not continued for this long is dropped.
pub const SNAPSHOT_SCAN_IDLE_MAX: Duration = Duration::from_secs(60);

/// Most bytes of rows one part of a scan returns.
pub const SNAPSHOT_SCAN_PART_SIZE_MAX_BYTES: usize = 16 * 1024 * 1024;

struct Scan {
    view: Rc<KvView>,
    resume_after: Option<Vec<u8>>,
    last_used: Instant,
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
    fn expire(&mut self, now: Instant) {
        self.scans.retain(|_, scan| now.duration_since(scan.last_used) < SNAPSHOT_SCAN_IDLE_MAX);
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

/// One part of a snapshot scan.
#[derive(Debug)]
pub struct ScanPart {
    /// The scan, to continue it.
    pub scan_id: u64,
    /// The changelog offset the snapshot is consistent with.
    pub log_offset: u64,
    /// Rows in key order (`None` if this part has none).
    pub rows: Option<RecordBatch>,
    /// True if more parts follow.
    pub more: bool,
}

impl PkBucket {
    /// Reads the next part of scan `scan_id`, or starts a scan of everything durable now
    /// when `scan_id` is 0. At least one row is returned when there is one, then rows up to
    /// `max_bytes` of stored values.
    pub async fn snapshot_scan(
        self: &Rc<Self>,
        scan_id: u64,
        max_bytes: usize,
        projection: Option<&[usize]>,
    ) -> Result<ScanPart, PkBucketError> {
        let now = Instant::now();
        let (scan_id, view, resume_after) = {
            let mut scans = self.scans.borrow_mut();
            scans.expire(now);
            if scan_id == 0 {
                if scans.scans.len() >= SNAPSHOT_SCAN_COUNT_MAX {
                    return Err(PkBucketError::TooManyScans { max: SNAPSHOT_SCAN_COUNT_MAX });
                }
                drop(scans);
                self.apply_durable();
                let mut scans = self.scans.borrow_mut();
                scans.next_id += 1;
                (scans.next_id, Rc::new(self.kv().read_view()), None)
            } else {
                let scan =
                    scans.scans.remove(&scan_id).ok_or(PkBucketError::ScanNotFound(scan_id))?;
                (scan_id, scan.view, scan.resume_after)
            }
        };
        let budget = max_bytes.clamp(1, SNAPSHOT_SCAN_PART_SIZE_MAX_BYTES);
        let (entries, more) = view
            .scan(resume_after.as_deref(), &[], budget)
            .await
            .map_err(|error| self.noted(error))?;
        let values: Vec<Vec<u8>> = entries.iter().map(|(_, value)| value.clone()).collect();
        let rows = self.decode_rows(&values, projection)?;
        let log_offset = view.log_offset();
        if more {
            let resume_after = entries.last().map(|(key, _)| key.clone()).or(resume_after);
            let scan = Scan { view, resume_after, last_used: Instant::now() };
            self.scans.borrow_mut().scans.insert(scan_id, scan);
        }
        Ok(ScanPart { scan_id, log_offset, rows, more })
    }
}
