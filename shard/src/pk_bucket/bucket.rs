//! [`PkBucket`]: what one bucket of a primary-key table holds — its changelog, its KV, the
//! codecs of its table, the pending writes, the open snapshot scans and the state of its
//! background work — and what it tells about itself. Opening, writing, reading and
//! maintenance are `impl PkBucket` blocks in the modules beside this one.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use arrow_schema::Schema;
use glommio::sync::Semaphore;
use glommio::TaskQueueHandle;
use ufer_wire::decode::BatchDecoder;
use ufer_wire::{BatchSchema, LogBatchBuilder};

use crate::clock::{Clock, MonotonicTime};
use crate::kv::{BlockCache, KvError, KvTablet};
use crate::log::tablet::LogTablet;
use crate::pk::changelog::ChangelogGenerator;
use crate::pk::key::KeyEncoder;
use crate::pk::options::PkTableOptions;
use crate::pk_bucket::error::PkBucketError;
use crate::pk_bucket::pending::PendingWrites;
use crate::pk_bucket::scans::SnapshotScans;

/// What a bucket of a primary-key table is: its schema and options, and where it sits.
#[derive(Debug, Clone)]
pub struct PkBucketSpec {
    /// The table's schema.
    pub schema: BatchSchema,
    /// Key, bucket key, merge engine, delete behaviour, changelog image.
    pub options: PkTableOptions,
    /// This bucket.
    pub bucket: u32,
    /// Buckets of the table (rows are checked to hash to this bucket).
    pub bucket_count: u32,
}

/// What a bucket shares with the rest of its shard.
#[derive(Clone)]
pub struct PkBucketEnv {
    /// Commit timestamps of the changelog; the age of the KV snapshot and of idle scans.
    pub clock: Rc<dyn Clock>,
    /// Where flushes and compactions run (the current queue if `None`).
    pub background: Option<TaskQueueHandle>,
    /// The shard's block cache (the bucket makes its own if `None`).
    pub block_cache: Option<Rc<BlockCache>>,
}

impl std::fmt::Debug for PkBucketEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkBucketEnv").field("background", &self.background).finish_non_exhaustive()
    }
}

/// One bucket of a primary-key table on the shard that owns it.
pub struct PkBucket {
    pub(super) log: Rc<LogTablet>,
    pub(super) kv: Rc<KvTablet>,
    pub(super) generator: ChangelogGenerator,
    pub(super) spec: PkBucketSpec,
    pub(super) clock: Rc<dyn Clock>,
    /// Decoder of write requests' batches (the table schema).
    pub(super) decoder: BatchDecoder,
    /// The key columns alone, as lookups send them.
    pub(super) key_schema: BatchSchema,
    pub(super) key_encoder: KeyEncoder,
    pub(super) key_decoder: BatchDecoder,
    /// The bucket key columns alone, as prefix lookups send them.
    pub(super) prefix_schema: BatchSchema,
    pub(super) prefix_encoder: KeyEncoder,
    pub(super) prefix_decoder: BatchDecoder,
    pub(super) builder: RefCell<LogBatchBuilder>,
    pub(super) write_lock: Semaphore,
    pub(super) pending: RefCell<PendingWrites>,
    pub(crate) scans: RefCell<SnapshotScans>,
    pub(super) background: Option<TaskQueueHandle>,
    pub(super) maintenance_running: Cell<bool>,
    /// Notified when background work finishes.
    pub(super) maintenance_done: ufer_io::Notifier,
    /// The first failure of background flushing or compaction, reported by the next call.
    pub(super) maintenance_error: RefCell<Option<String>>,
    /// What a read found corrupt in the KV, if anything: while the changelog can rebuild
    /// the KV, closing the bucket discards its KV files so the next open rebuilds them;
    /// otherwise the bucket refuses every request and keeps its files.
    pub(super) kv_corrupt: RefCell<Option<String>>,
    pub(super) kv_path: PathBuf,
    /// When the last KV snapshot was written (or the bucket opened), on `clock`.
    pub(super) snapshot_taken_at: Cell<MonotonicTime>,
}

impl std::fmt::Debug for PkBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkBucket")
            .field("log", &self.log)
            .field("bucket", &self.spec.bucket)
            .field("applied_log_offset", &self.kv.applied_log_offset())
            .finish_non_exhaustive()
    }
}

/// The schema of some of `schema`'s columns.
pub(super) fn sub_schema(
    schema: &BatchSchema,
    columns: &[usize],
) -> Result<BatchSchema, PkBucketError> {
    let fields: Vec<_> =
        columns.iter().map(|&column| schema.arrow().field(column).clone()).collect();
    BatchSchema::new(schema.id(), Arc::new(Schema::new(fields)))
        .map_err(|error| PkBucketError::Definition(error.to_string()))
}

impl PkBucket {
    /// The changelog.
    pub fn log(&self) -> &Rc<LogTablet> {
        &self.log
    }

    /// The KV.
    pub fn kv(&self) -> &Rc<KvTablet> {
        &self.kv
    }

    /// The table's schema.
    pub fn schema(&self) -> &BatchSchema {
        &self.spec.schema
    }

    /// The schema of a point lookup's keys.
    pub fn key_schema(&self) -> &BatchSchema {
        &self.key_schema
    }

    /// The schema of a prefix lookup's prefixes.
    pub fn prefix_schema(&self) -> &BatchSchema {
        &self.prefix_schema
    }

    /// Notes a KV file found corrupt (see [`Self::needs_rebuild`]) and passes the error on.
    /// While the changelog can rebuild the KV, retention keeps all of it until it has.
    pub(crate) fn noted(&self, error: KvError) -> PkBucketError {
        if let KvError::Corrupt { file, reason } = &error {
            if self.kv_corrupt.replace(Some(format!("{file}: {reason}"))).is_none() {
                let rebuild = if self.can_rebuild_kv() {
                    self.log.set_retention_floor(0);
                    "it is rebuilt from the changelog once no request holds the bucket"
                } else {
                    "the changelog cannot rebuild it (retention deleted its start): the bucket \
                     refuses every request and its files are kept for a repair"
                };
                eprintln!(
                    "ufer: KV of {} is corrupt ({file}: {reason}); {rebuild}",
                    self.kv_path.display()
                );
            }
        }
        error.into()
    }

    /// Whether the changelog can rebuild the KV: retention has not deleted its start and
    /// no range of it is damaged.
    fn can_rebuild_kv(&self) -> bool {
        self.log.log_start_offset() == 0 && self.log.damaged_ranges().is_empty()
    }

    /// True once a read found a KV file corrupt and the changelog can rebuild it: the bucket
    /// should be closed (which discards its KV files) and opened again (which rebuilds them).
    pub fn needs_rebuild(&self) -> bool {
        self.kv_corrupt.borrow().is_some() && self.can_rebuild_kv()
    }

    /// Fails with [`PkBucketError::KvUnrepairable`] once a KV file was found corrupt that
    /// the changelog cannot rebuild: no request may read or change what is left of the KV.
    pub(super) fn check_kv_usable(&self) -> Result<(), PkBucketError> {
        match self.kv_corrupt.borrow().as_ref() {
            Some(reason) if !self.can_rebuild_kv() => Err(PkBucketError::KvUnrepairable {
                reason: reason.clone(),
                log_start_offset: self.log.log_start_offset(),
            }),
            _ => Ok(()),
        }
    }

    /// What the bucket promises about its KV: it holds the changelog replayed up to its
    /// applied offset, which is durable — lookups and snapshot scans never show a change a
    /// crash could take back.
    pub(super) fn assert_kv_durable(&self) {
        let applied = self.kv.applied_log_offset();
        let high_watermark = self.log.high_watermark();
        assert!(
            applied <= high_watermark,
            "the KV applied the changelog up to {applied}, past its high watermark \
             {high_watermark}"
        );
    }
}
