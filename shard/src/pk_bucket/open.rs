//! Opening and closing a [`PkBucket`]. Recovery is the KV's last snapshot plus a replay of
//! the changelog after it; KV files that fail their checks are rebuilt from the whole
//! changelog when retention kept all of it; a KV found corrupt while open is discarded at
//! close so the next open rebuilds it — only when the changelog can rebuild it: otherwise
//! its files are kept as they are and the bucket refuses every request.
//!
//! Invariants: an open bucket's KV snapshot lies between the changelog's start and its high
//! watermark (otherwise it does not open); after the replay the KV holds the changelog up
//! to the high watermark and retention keeps what its snapshot needs.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use glommio::sync::Semaphore;
use ufer_io::DataDir;
use ufer_wire::decode::{aligned_copy, BatchDecoder};
use ufer_wire::{BatchOptions, ChangeType, LogBatch, LogBatchBuilder};

use crate::kv::{BlockCache, KvConfig, KvError, KvTablet};
use crate::log::config::LogConfig;
use crate::log::read::ReadRequest;
use crate::log::tablet::LogTablet;
use crate::pk::changelog::ChangelogGenerator;
use crate::pk::key::KeyEncoder;
use crate::pk_bucket::bucket::{sub_schema, PkBucket, PkBucketEnv, PkBucketSpec};
use crate::pk_bucket::error::PkBucketError;
use crate::pk_bucket::limits::REPLAY_READ_SIZE_BYTES;
use crate::pk_bucket::pending::PendingWrites;
use crate::pk_bucket::scans::SnapshotScans;

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
            snapshot_taken_at: Cell::new(env.clock.monotonic_now()),
            clock: env.clock,
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
            kv_corrupt: RefCell::new(None),
            kv_path: kv_path.to_path_buf(),
        });
        bucket.replay().await?;
        bucket.assert_kv_durable();
        bucket.log.set_retention_floor(bucket.kv.snapshot_log_offset());
        Ok(bucket)
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
                        // Only durable changelog reaches the KV: a read stops at the hwm.
                        assert!(end <= read.high_watermark, "replayed changelog is durable");
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

    /// Waits for the pending writes, writes a last snapshot (so the next open replays
    /// little) and closes both tablets. Fails if something still holds the bucket.
    pub async fn close(self: Rc<Self>) -> Result<(), PkBucketError> {
        if self.needs_rebuild() {
            return self.close_and_discard_kv().await;
        }
        if self.check_kv_usable().is_err() {
            return self.close_keeping_kv().await;
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

    /// Closes a bucket whose KV is corrupt and cannot be rebuilt without writing to it: its
    /// files stay as they are, for a repair.
    async fn close_keeping_kv(self: Rc<Self>) -> Result<(), PkBucketError> {
        let _ = self.log.sync().await;
        self.wait_maintenance().await;
        let bucket = Rc::try_unwrap(self).map_err(|_| PkBucketError::Busy)?;
        let PkBucket { log, kv, .. } = bucket;
        drop(kv);
        if let Ok(log) = Rc::try_unwrap(log) {
            log.close().await?;
        }
        Ok(())
    }

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
        Err(KvError::Corrupt { file, reason })
            if log.log_start_offset() == 0 && log.damaged_ranges().is_empty() =>
        {
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
