//! Background work of a [`PkBucket`]: KV flushes (snapshots, which let retention trim the
//! changelog before them) and compactions, run one at a time on the background queue; a
//! periodic snapshot of a quiet bucket, timed on the bucket's clock.
//!
//! Invariants: at most one maintenance task runs per bucket; its first failure is kept and
//! refuses every later write and lookup until the bucket is reopened; a snapshot covers
//! only durable changelog, and retention keeps the changelog after the newest snapshot.

use std::rc::Rc;
use std::time::Duration;

use crate::kv::KvError;
use crate::pk_bucket::bucket::PkBucket;
use crate::pk_bucket::error::PkBucketError;

impl PkBucket {
    /// Fails if the bucket refuses work: a KV found corrupt that the changelog cannot rebuild,
    /// or the first background failure.
    pub(super) fn check_maintenance(&self) -> Result<(), PkBucketError> {
        self.check_kv_usable()?;
        match self.maintenance_error.borrow().as_ref() {
            Some(reason) => Err(PkBucketError::Maintenance(reason.clone())),
            None => Ok(()),
        }
    }

    pub(super) fn start_maintenance(self: &Rc<Self>) {
        if self.maintenance_running.replace(true) || self.maintenance_error.borrow().is_some() {
            return;
        }
        let bucket = self.clone();
        let task = async move {
            if let Err(error) = bucket.maintain().await {
                bucket.maintenance_error.borrow_mut().get_or_insert(error.to_string());
            }
            bucket.maintenance_running.set(false);
            bucket.maintenance_done.notify_all();
        };
        let spawned = match self.background {
            Some(queue) => glommio::spawn_local_into(task, queue),
            None => Ok(glommio::spawn_local(task)),
        };
        match spawned {
            Ok(task) => {
                task.detach();
            }
            Err(error) => {
                self.maintenance_running.set(false);
                self.maintenance_error.borrow_mut().get_or_insert(error.to_string());
            }
        }
    }

    /// Waits until no background flush or compaction runs.
    pub async fn wait_maintenance(&self) {
        loop {
            let seen = self.maintenance_done.epoch();
            if !self.maintenance_running.get() {
                return;
            }
            self.maintenance_done.changed(seen).await;
        }
    }

    /// Flushes the KV if due (a new snapshot, which lets retention trim the changelog before
    /// it) and compacts until nothing is due.
    pub async fn maintain(&self) -> Result<(), KvError> {
        if self.kv.needs_flush() {
            self.flush().await?;
        }
        while self.kv.needs_compaction() {
            if !self.kv.compact_step().await? {
                break;
            }
        }
        Ok(())
    }

    /// Writes a KV snapshot of everything durable so far.
    pub async fn flush(&self) -> Result<u64, KvError> {
        let snapshot = self.kv.flush().await?;
        assert!(snapshot <= self.log.high_watermark(), "a KV snapshot covers durable changelog");
        // While a corrupt KV waits for its rebuild, retention keeps all the changelog.
        if self.kv_corrupt.borrow().is_none() {
            self.log.set_retention_floor(snapshot);
        }
        self.snapshot_taken_at.set(self.clock.monotonic_now());
        Ok(snapshot)
    }

    /// Writes a KV snapshot if the last one is older than `age` and changes were applied
    /// since: a quiet bucket does not keep a memtable of changes for its next open to
    /// replay, nor a long changelog retention must keep. Returns whether it wrote one.
    pub async fn snapshot_if_older_than(&self, age: Duration) -> Result<bool, KvError> {
        let now = self.clock.monotonic_now();
        let stale = now.saturating_duration_since(self.snapshot_taken_at.get()) >= age;
        if !stale || self.kv.applied_log_offset() == self.kv.snapshot_log_offset() {
            return Ok(false);
        }
        self.wait_maintenance().await;
        self.flush().await?;
        Ok(true)
    }
}
