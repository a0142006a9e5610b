//! [`PkBucket`]: one bucket of a primary-key table — its changelog (a [`LogTablet`]), its
//! current rows (a [`KvTablet`]), and the write path that keeps the two in step.
//!
//! A write (upsert or delete rows) runs under the bucket's write lock: check the writer's
//! sequence, read the current values of the keys (pending writes first, then the KV), run
//! the table's merge engine ([`ChangelogGenerator`]), append the changelog records as one
//! `LogBatch`, and park the new values in [`PendingWrites`]. The lock is released before the
//! changelog is durable, so many writes share one `fdatasync`; once the high watermark passes
//! a write's records its values move to the KV. The log is the KV's write-ahead log.
//!
//! Invariants: the KV holds exactly the changelog replayed up to `kv.applied_log_offset()`,
//! which never passes the high watermark (lookups and snapshot scans see only durable
//! changes); pending writes cover `[applied, log end)`; retention never deletes changelog
//! past the KV's last snapshot, so recovery (last snapshot + replay) always has what it
//! needs.

pub mod pending;
pub mod scans;

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use glommio::sync::Semaphore;
use glommio::TaskQueueHandle;
use ufer_io::DataDir;
use ufer_wire::decode::{aligned_copy, BatchDecoder};
use ufer_wire::{BatchOptions, BatchSchema, ChangeType, LogBatch, LogBatchBuilder, WriterStamp};

use crate::clock::Clock;
use crate::kv::{
    BlockCache, KvConfig, KvError, KvTablet, KV_KEY_SIZE_MAX_BYTES, KV_VALUE_SIZE_MAX_BYTES,
};
use crate::log::append::Appended;
use crate::log::config::LogConfig;
use crate::log::read::ReadRequest;
use crate::log::tablet::LogTablet;
use crate::log::writers::SequenceCheck;
use crate::pk::changelog::{ChangelogGenerator, RowOp, WriteRequest};
use crate::pk::key::KeyEncoder;
use crate::pk::options::PkTableOptions;
use crate::pk_bucket::pending::PendingWrites;
use crate::pk_bucket::scans::SnapshotScans;

pub use crate::pk_bucket::error::PkBucketError;

mod error;

/// Bytes of changelog read per step when the KV is rebuilt from the log at open.
pub const REPLAY_READ_SIZE_BYTES: usize = 4 * 1024 * 1024;

/// Most rows one prefix lookup answers with (it says so when it stops early).
pub const PREFIX_LOOKUP_ROW_COUNT_MAX: usize = 10_000;

/// Most keys one lookup request may carry.
pub const LOOKUP_KEY_COUNT_MAX: usize = 10_000;

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
    /// Commit timestamps of the changelog.
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

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Offset of the first changelog record (the log end if nothing changed).
    pub changelog_offset: u64,
    /// Changelog records appended (0: nothing changed).
    pub changelog_record_count: u32,
    /// True if the write had been applied already (an idempotent retry).
    pub duplicate: bool,
    appended: Option<Appended>,
}

/// The rows a lookup found.
#[derive(Debug)]
pub struct LookupResult {
    /// Found rows (table schema, or the projection), `None` if none was found.
    pub rows: Option<RecordBatch>,
    /// For each found row, the index of the key (or prefix) that found it.
    pub key_index: Vec<u32>,
    /// The changelog offset the answer is consistent with.
    pub log_offset: u64,
    /// True if a prefix lookup stopped at [`PREFIX_LOOKUP_ROW_COUNT_MAX`] rows.
    pub truncated: bool,
}

/// One bucket of a primary-key table on the shard that owns it.
pub struct PkBucket {
    log: Rc<LogTablet>,
    kv: Rc<KvTablet>,
    generator: ChangelogGenerator,
    spec: PkBucketSpec,
    /// Decoder of write requests' batches (the table schema).
    decoder: BatchDecoder,
    /// The key columns alone, as lookups send them.
    key_schema: BatchSchema,
    key_encoder: KeyEncoder,
    key_decoder: BatchDecoder,
    /// The bucket key columns alone, as prefix lookups send them.
    prefix_schema: BatchSchema,
    prefix_encoder: KeyEncoder,
    prefix_decoder: BatchDecoder,
    builder: RefCell<LogBatchBuilder>,
    write_lock: Semaphore,
    pending: RefCell<PendingWrites>,
    pub(crate) scans: RefCell<SnapshotScans>,
    background: Option<TaskQueueHandle>,
    maintenance_running: Cell<bool>,
    /// Notified when background work finishes.
    maintenance_done: ufer_io::Notifier,
    /// The first failure of background flushing or compaction, reported by the next call.
    maintenance_error: RefCell<Option<String>>,
    /// A read found a KV file corrupt: closing the bucket discards its KV files, so the
    /// next open rebuilds them from the changelog.
    kv_corrupt: Cell<bool>,
    kv_path: std::path::PathBuf,
    /// When the last KV snapshot was written (or the bucket opened).
    snapshot_taken_at: Cell<std::time::Instant>,
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

fn sub_schema(schema: &BatchSchema, columns: &[usize]) -> Result<BatchSchema, PkBucketError> {
    let fields: Vec<_> =
        columns.iter().map(|&column| schema.arrow().field(column).clone()).collect();
    BatchSchema::new(schema.id(), Arc::new(Schema::new(fields)))
        .map_err(|error| PkBucketError::Definition(error.to_string()))
}

impl PkBucket {
    /// Opens the bucket: its changelog in `log_path`, its KV in `kv_path`, then replays the
    /// changelog after the KV's last snapshot. KV files that fail their checks are rebuilt
    /// from the whole changelog when retention kept all of it, and refused otherwise.
    pub async fn open(
        log_path: &Path,
        kv_path: &Path,
        spec: PkBucketSpec,
        log_config: LogConfig,
        kv_config: KvConfig,
        env: PkBucketEnv,
    ) -> Result<Rc<Self>, PkBucketError> {
        let generator = ChangelogGenerator::new(
            spec.schema.id(),
            spec.schema.arrow().clone(),
            spec.options.clone(),
        )
        .map_err(PkBucketError::Definition)?;
        let key_columns = spec.options.primary_key.clone();
        let bucket_key_columns = spec.options.bucket_key.clone();
        let key_schema = sub_schema(&spec.schema, &key_columns)?;
        let prefix_schema = sub_schema(&spec.schema, &bucket_key_columns)?;
        let all = |count: usize| (0..count).collect::<Vec<usize>>();
        let key_encoder = KeyEncoder::new(key_schema.arrow(), &all(key_columns.len()))
            .map_err(PkBucketError::Definition)?;
        let prefix_encoder = KeyEncoder::new(prefix_schema.arrow(), &all(bucket_key_columns.len()))
            .map_err(PkBucketError::Definition)?;
        let builder = LogBatchBuilder::new(spec.schema.clone(), BatchOptions::default())
            .map_err(|error| PkBucketError::Definition(error.to_string()))?;

        let log = Rc::new(LogTablet::open(log_path, log_config, env.clock.clone()).await?);
        let kv = Rc::new(open_kv(kv_path, kv_config, env.block_cache.clone(), &log).await?);
        let bucket = Rc::new(Self {
            decoder: BatchDecoder::new(spec.schema.clone()),
            log,
            kv,
            generator,
            spec,
            key_decoder: BatchDecoder::new(key_schema.clone()),
            key_schema,
            key_encoder,
            prefix_decoder: BatchDecoder::new(prefix_schema.clone()),
            prefix_schema,
            prefix_encoder,
            builder: RefCell::new(builder),
            write_lock: Semaphore::new(1),
            pending: RefCell::new(PendingWrites::default()),
            scans: RefCell::new(SnapshotScans::default()),
            background: env.background,
            maintenance_running: Cell::new(false),
            maintenance_done: ufer_io::Notifier::default(),
            maintenance_error: RefCell::new(None),
            kv_corrupt: Cell::new(false),
            kv_path: kv_path.to_path_buf(),
            snapshot_taken_at: Cell::new(std::time::Instant::now()),
        });
        bucket.replay().await?;
        bucket.log.set_retention_floor(bucket.kv.snapshot_log_offset());
        Ok(bucket)
    }

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

    /// Applies the changelog from the KV's applied offset to the high watermark.
    async fn replay(&self) -> Result<(), PkBucketError> {
        let mut from = self.kv.applied_log_offset();
        loop {
            let high_watermark = self.log.high_watermark();
            if from >= high_watermark {
                return Ok(());
            }
            let read = self.log.read(ReadRequest::new(from, REPLAY_READ_SIZE_BYTES)).await?;
            for chunk in &read.chunks {
                let mut bytes = chunk.as_bytes();
                while !bytes.is_empty() {
                    let (length, end) = {
                        let batch = LogBatch::parse(bytes)?;
                        (batch.len(), batch.last_offset() + 1)
                    };
                    let decoded = self.decoder.decode(&aligned_copy(&bytes[..length]))?;
                    if end > from {
                        let rows = &decoded.record_batch;
                        let change_types: Vec<ChangeType> =
                            (0..rows.num_rows()).map(|row| decoded.change_type(row)).collect();
                        let mutations = self.generator.replay_mutations(rows, &change_types)?;
                        self.kv.apply(end, mutations);
                    }
                    bytes = &bytes[length..];
                }
            }
            assert!(read.next_offset > from, "a read of the changelog makes progress");
            from = read.next_offset;
        }
    }

    /// Upserts and deletes the rows of `batch` (one `LogBatch` of the table's schema whose
    /// change types, if any, mark deletes), merging with the stored rows. `target_columns`
    /// makes it a partial update. Returns once the changelog is appended; see
    /// [`Self::wait_durable`].
    pub async fn write(
        &self,
        batch: &[u8],
        target_columns: Option<&[usize]>,
    ) -> Result<WriteOutcome, PkBucketError> {
        self.check_maintenance()?;
        let decoded = self.decoder.decode(&aligned_copy(batch))?;
        let rows = &decoded.record_batch;
        let ops = row_ops(&decoded)?;
        self.check_buckets(rows)?;
        let stamp = WriterStamp {
            writer_id: decoded.header.writer_id.get(),
            batch_sequence: decoded.header.batch_sequence.get(),
        };
        let request = WriteRequest { batch: rows, ops: ops.as_deref(), target_columns };
        let _permit = self.write_lock.acquire_permit(1).await.map_err(|_| PkBucketError::Closed)?;
        if stamp.writer_id >= 0 {
            match self.log.check_sequence(stamp.writer_id, stamp.batch_sequence) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(stored) => {
                    let empty = stored.last_offset == stored.base_offset.wrapping_sub(1);
                    let count = if empty { 0 } else { stored.last_offset - stored.base_offset + 1 };
                    return Ok(WriteOutcome {
                        changelog_offset: stored.base_offset,
                        changelog_record_count: count as u32,
                        duplicate: true,
                        appended: None,
                    });
                }
                SequenceCheck::OutOfOrder { expected, got } => {
                    return Err(PkBucketError::OutOfOrderSequence {
                        writer_id: stamp.writer_id,
                        expected,
                        got,
                    })
                }
            }
        }
        let keys = self.generator.keys_to_read(&request)?;
        let current = self.current_values(&keys).await?;
        let output = self.generator.generate(&request, &current)?;
        check_sizes(&output.mutations)?;
        let Some(changelog) = output.changelog else {
            if stamp.writer_id >= 0 {
                self.log.record_sequence_without_records(stamp.writer_id, stamp.batch_sequence);
            }
            return Ok(WriteOutcome {
                changelog_offset: self.log.log_end_offset(),
                changelog_record_count: 0,
                duplicate: false,
                appended: None,
            });
        };
        let mut bytes =
            self.builder.borrow_mut().build(&changelog, Some(&output.change_types), stamp)?;
        let appended = self.log.append(&mut bytes, &self.spec.schema).await?;
        assert!(!appended.duplicate, "the sequence was checked under the write lock");
        self.pending.borrow_mut().push(appended.last_offset + 1, output.mutations);
        Ok(WriteOutcome {
            changelog_offset: appended.base_offset,
            changelog_record_count: changelog.num_rows() as u32,
            duplicate: false,
            appended: Some(appended),
        })
    }

    /// Waits until the changelog of `outcome` is durable, then moves every durable pending
    /// write into the KV. On failure the write (and every later one not yet durable) is gone
    /// from the changelog and from the pending writes.
    pub async fn wait_durable(
        self: &Rc<Self>,
        outcome: &WriteOutcome,
    ) -> Result<(), PkBucketError> {
        let result = match &outcome.appended {
            Some(appended) => self.log.wait_durable(appended).await,
            None => Ok(()),
        };
        if let Err(error) = result {
            self.pending.borrow_mut().discard_after(self.log.log_end_offset());
            return Err(error.into());
        }
        self.apply_durable();
        Ok(())
    }

    /// Moves the pending writes below the high watermark into the KV; starts a background
    /// flush or compaction when one is due.
    pub fn apply_durable(self: &Rc<Self>) {
        let high_watermark = self.log.high_watermark();
        let durable = self.pending.borrow_mut().take_durable(high_watermark);
        for write in durable {
            self.kv.apply(write.end_offset, write.mutations);
        }
        if self.kv.needs_flush() || self.kv.needs_compaction() {
            self.start_maintenance();
        }
    }

    /// Current values of `keys`: the newest pending write's, else the KV's.
    async fn current_values(
        &self,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, PkBucketError> {
        let mut values = vec![None; keys.len()];
        let mut missing = Vec::new();
        {
            let pending = self.pending.borrow();
            for (index, key) in keys.iter().enumerate() {
                match pending.get(key) {
                    Some(value) => values[index] = value.map(<[u8]>::to_vec),
                    None => missing.push(index),
                }
            }
        }
        if !missing.is_empty() {
            let wanted: Vec<Vec<u8>> = missing.iter().map(|&index| keys[index].clone()).collect();
            let found = self.kv.multi_get(&wanted).await.map_err(|error| self.noted(error))?;
            for (index, value) in missing.into_iter().zip(found) {
                values[index] = value;
            }
        }
        Ok(values)
    }

    /// Refuses rows whose bucket key hashes to another bucket: stored here, they would be a
    /// second row for their key, invisible to lookups routed by the key.
    fn check_buckets(&self, rows: &RecordBatch) -> Result<(), PkBucketError> {
        if self.spec.bucket_count == 1 {
            return Ok(());
        }
        let buckets = ufer_wire::bucketing::buckets_of_rows(
            rows,
            &self.spec.options.bucket_key,
            self.spec.bucket_count,
        )
        .map_err(PkBucketError::Definition)?;
        match buckets.iter().position(|bucket| *bucket != self.spec.bucket) {
            Some(row) => Err(PkBucketError::WrongBucket {
                row,
                bucket: buckets[row],
                this_bucket: self.spec.bucket,
            }),
            None => Ok(()),
        }
    }

    /// Looks up rows by key (`prefix` false: `keys` has the key columns) or by bucket-key
    /// prefix (`keys` has the bucket key columns), reading only durable changes.
    pub async fn lookup(
        self: &Rc<Self>,
        keys: &[u8],
        prefix: bool,
        projection: Option<&[usize]>,
    ) -> Result<LookupResult, PkBucketError> {
        self.check_maintenance()?;
        self.apply_durable();
        if prefix && !self.spec.options.bucket_key_is_prefix {
            return Err(PkBucketError::PrefixLookupUnsupported);
        }
        let (decoder, encoder) = if prefix {
            (&self.prefix_decoder, &self.prefix_encoder)
        } else {
            (&self.key_decoder, &self.key_encoder)
        };
        let decoded = decoder.decode(&aligned_copy(keys))?;
        let rows = &decoded.record_batch;
        if rows.num_rows() > LOOKUP_KEY_COUNT_MAX {
            return Err(PkBucketError::TooManyKeys { count: rows.num_rows() });
        }
        let mut encoded = Vec::with_capacity(rows.num_rows());
        for row in 0..rows.num_rows() {
            let mut key = Vec::new();
            encoder.encode(rows, row, &mut key)?;
            encoded.push(key);
        }
        let log_offset = self.kv.applied_log_offset();
        let mut values = Vec::new();
        let mut key_index = Vec::new();
        let mut truncated = false;
        if prefix {
            for (index, key) in encoded.iter().enumerate() {
                let room = PREFIX_LOOKUP_ROW_COUNT_MAX - values.len();
                let found =
                    self.kv.scan_prefix(key, room + 1).await.map_err(|error| self.noted(error))?;
                truncated |= found.len() > room;
                for (_, value) in found.into_iter().take(room) {
                    values.push(value);
                    key_index.push(index as u32);
                }
                if truncated {
                    break;
                }
            }
        } else {
            let found = self.kv.multi_get(&encoded).await.map_err(|error| self.noted(error))?;
            for (index, value) in found.into_iter().enumerate() {
                if let Some(value) = value {
                    values.push(value);
                    key_index.push(index as u32);
                }
            }
        }
        let rows = self.decode_rows(&values, projection)?;
        Ok(LookupResult { rows, key_index, log_offset, truncated })
    }

    /// Stored row values as a record batch of the table (or of `projection`).
    pub(crate) fn decode_rows(
        &self,
        values: &[Vec<u8>],
        projection: Option<&[usize]>,
    ) -> Result<Option<RecordBatch>, PkBucketError> {
        if values.is_empty() {
            return Ok(None);
        }
        let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let batch = self.generator.row_codec().decode_rows(&slices)?;
        Ok(Some(match projection {
            Some(columns) => batch.project(columns)?,
            None => batch,
        }))
    }

    /// Notes a KV file found corrupt (see [`Self::needs_rebuild`]) and passes the error on.
    pub(crate) fn noted(&self, error: KvError) -> PkBucketError {
        if matches!(error, KvError::Corrupt { .. }) {
            self.kv_corrupt.set(true);
        }
        error.into()
    }

    /// True once a read found a KV file corrupt: the bucket should be closed (which discards
    /// its KV files) and opened again (which rebuilds them from the changelog).
    pub fn needs_rebuild(&self) -> bool {
        self.kv_corrupt.get()
    }

    /// Fails with the first background failure, if there was one.
    fn check_maintenance(&self) -> Result<(), PkBucketError> {
        match self.maintenance_error.borrow().as_ref() {
            Some(reason) => Err(PkBucketError::Maintenance(reason.clone())),
            None => Ok(()),
        }
    }

    fn start_maintenance(self: &Rc<Self>) {
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
        self.log.set_retention_floor(snapshot);
        self.snapshot_taken_at.set(std::time::Instant::now());
        Ok(snapshot)
    }

    /// Writes a KV snapshot if the last one is older than `age` and changes were applied
    /// since: a quiet bucket does not keep a memtable of changes for its next open to
    /// replay, nor a long changelog retention must keep. Returns whether it wrote one.
    pub async fn snapshot_if_older_than(&self, age: std::time::Duration) -> Result<bool, KvError> {
        let stale = self.snapshot_taken_at.get().elapsed() >= age;
        if !stale || self.kv.applied_log_offset() == self.kv.snapshot_log_offset() {
            return Ok(false);
        }
        self.wait_maintenance().await;
        self.flush().await?;
        Ok(true)
    }

    /// Waits for the pending writes, writes a last snapshot (so the next open replays
    /// little) and closes both tablets. Fails if something still holds the bucket.
    pub async fn close(self: Rc<Self>) -> Result<(), PkBucketError> {
        if self.kv_corrupt.get() {
            return self.close_and_discard_kv().await;
        }
        let _ = self.log.sync().await;
        self.apply_durable();
        self.wait_maintenance().await;
        self.flush().await?;
        let bucket = Rc::try_unwrap(self).map_err(|_| PkBucketError::Busy)?;
        let PkBucket { log, kv, .. } = bucket;
        if let Ok(kv) = Rc::try_unwrap(kv) {
            kv.close().await?;
        }
        if let Ok(log) = Rc::try_unwrap(log) {
            log.close().await?;
        }
        Ok(())
    }
}

impl PkBucket {
    /// Closes a bucket whose KV is corrupt without flushing it, then deletes the KV files.
    async fn close_and_discard_kv(self: Rc<Self>) -> Result<(), PkBucketError> {
        let _ = self.log.sync().await;
        self.wait_maintenance().await;
        let kv_path = self.kv_path.clone();
        let bucket = Rc::try_unwrap(self).map_err(|_| PkBucketError::Busy)?;
        let PkBucket { log, kv, .. } = bucket;
        drop(kv);
        if let Ok(log) = Rc::try_unwrap(log) {
            log.close().await?;
        }
        discard_kv(&kv_path)
    }
}

/// Deletes the KV files of a closed bucket, so that the next open rebuilds them from the
/// whole changelog (after a read found a KV file corrupt). The changelog is untouched.
pub fn discard_kv(kv_path: &Path) -> Result<(), PkBucketError> {
    match std::fs::remove_dir_all(kv_path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => {
            Err(KvError::from(ufer_io::IoError::from_io("discarding the KV", kv_path, error))
                .into())
        }
    }
}

/// Opens the KV in `path`, rebuilding it from the whole changelog when its files fail their
/// checks and the changelog still starts at offset 0.
async fn open_kv(
    path: &Path,
    config: KvConfig,
    cache: Option<Rc<BlockCache>>,
    log: &LogTablet,
) -> Result<KvTablet, PkBucketError> {
    let cache =
        cache.unwrap_or_else(|| Rc::new(BlockCache::new(config.block_cache_size_max_bytes)));
    let dir = DataDir::open(path).await.map_err(KvError::from)?;
    let kv = match KvTablet::open_with_cache(&dir, config.clone(), cache.clone()).await {
        Ok(kv) => kv,
        Err(KvError::Corrupt { file, reason }) if log.log_start_offset() == 0 => {
            log_rebuild(path, &file, &reason);
            drop(dir);
            std::fs::remove_dir_all(path).map_err(|error| {
                KvError::from(ufer_io::IoError::from_io("removing the corrupt KV", path, error))
            })?;
            let dir = DataDir::open(path).await.map_err(KvError::from)?;
            KvTablet::open_with_cache(&dir, config, cache).await?
        }
        Err(error) => return Err(error.into()),
    };
    let snapshot = kv.snapshot_log_offset();
    if snapshot < log.log_start_offset() {
        return Err(PkBucketError::ChangelogGone {
            snapshot,
            log_start_offset: log.log_start_offset(),
        });
    }
    if snapshot > log.high_watermark() {
        return Err(PkBucketError::KvAheadOfChangelog {
            snapshot,
            high_watermark: log.high_watermark(),
        });
    }
    Ok(kv)
}

fn log_rebuild(path: &Path, file: &str, reason: &str) {
    eprintln!(
        "ufer: KV of {} is corrupt ({file}: {reason}); rebuilding it from the changelog",
        path.display()
    );
}

/// The operation of each row: from the batch's change types (`-D` deletes, `+I`/`+U`
/// upsert), or all upserts without them.
fn row_ops(decoded: &ufer_wire::decode::DecodedBatch) -> Result<Option<Vec<RowOp>>, PkBucketError> {
    if decoded.change_types.is_none() {
        return Ok(None);
    }
    (0..decoded.record_batch.num_rows())
        .map(|row| match decoded.change_type(row) {
            ChangeType::Insert | ChangeType::UpdateAfter | ChangeType::AppendOnly => {
                Ok(RowOp::Upsert)
            }
            ChangeType::Delete => Ok(RowOp::Delete),
            ChangeType::UpdateBefore => Err(PkBucketError::BadChangeType { row }),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Refuses keys and rows the KV cannot store, before anything is appended.
fn check_sizes(mutations: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), PkBucketError> {
    for (key, value) in mutations {
        if key.len() > KV_KEY_SIZE_MAX_BYTES {
            return Err(PkBucketError::KeyTooLarge { size: key.len(), max: KV_KEY_SIZE_MAX_BYTES });
        }
        let size = value.as_ref().map_or(0, Vec::len);
        if size > KV_VALUE_SIZE_MAX_BYTES {
            return Err(PkBucketError::RowTooLarge { size, max: KV_VALUE_SIZE_MAX_BYTES });
        }
    }
    Ok(())
}
