//! [`LogTablet`]: the log of one bucket — appends with offsets and commit timestamps,
//! durable by group commit; reads by offset with optional projection; offset lookups by
//! time; retention of whole sealed segments.
//!
//! Invariants: offsets are dense from the log start offset to the log end offset; every
//! offset below the high watermark is durable, and reads never go past it; commit
//! timestamps never decrease; only the active (last) segment is written; retention deletes
//! only whole sealed segments, oldest first; a segment spans at most 2^32 offsets (its
//! index holds 32-bit relative offsets). Appends, rolls, rollbacks and retention are
//! serialized by the append lock; the high watermark and the cache of open sealed files are
//! updated in place, without awaiting, by whichever task notices. After an
//! [`AppendError::Fatal`] (a failed fdatasync anywhere) the tablet refuses every append.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;

use glommio::sync::Semaphore;
use ufer_io::{file_name, AppendEnd, DataDir, FileKind, IoError, Notifier, ReadBytes, SegmentFile};
use ufer_wire::header::{stamp_server_fields, BATCH_HEADER_SIZE_BYTES};
use ufer_wire::{project, required_prefix_size, BatchError, BatchSchema, LogBatch, Projection};

use crate::clock::Clock;
use crate::log::config::LogConfig;
use crate::log::error::{AppendError, OpenError, ReadError, RetentionError};
use crate::log::scan::{ScanStep, SegmentScanner};
use crate::log::segment::{ActiveSegment, Segment};
use crate::log::tail_cache::TailCache;
use crate::log::writers::{SequenceCheck, StoredBatch, WriterTable};

/// Window for scanning batch headers to find an offset or a time.
const LOOKUP_WINDOW_SIZE_BYTES: usize = 64 * 1024;
/// Smallest and largest window of a read.
const READ_WINDOW_SIZE_MIN_BYTES: usize = 64 * 1024;
const READ_WINDOW_SIZE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Leading bytes read first when projecting a batch by ranges.
const PROJECTION_PREFIX_READ_BYTES: usize = 4096;
/// Batches at least this large are projected by reading their metadata and then only the
/// chosen columns' byte ranges; smaller ones are read whole (fewer, larger reads win).
const RANGED_PROJECTION_MIN_BYTES: u64 = 256 * 1024;
/// Most stored bytes one projected read goes through (its answer is a fraction of them).
const PROJECTED_READ_SCAN_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Most offsets one segment spans: its index holds 32-bit relative offsets.
pub const SEGMENT_OFFSET_SPAN_MAX: u64 = u32::MAX as u64;

/// Where to look up an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The earliest offset still in the log.
    Earliest,
    /// The high watermark: the offset the next durable record will get.
    Latest,
    /// The first offset committed at or after this time (ms since the epoch), or the high
    /// watermark if there is none.
    Timestamp(i64),
}

/// What an append was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// First offset of the batch.
    pub base_offset: u64,
    /// Last offset of the batch.
    pub last_offset: u64,
    /// Commit timestamp stamped into it.
    pub commit_timestamp: i64,
    /// True if an idempotent writer's batch was already stored: these are its original
    /// offsets and nothing was written.
    pub duplicate: bool,
    segment_base: u64,
    end: AppendEnd,
}

/// Bytes of whole batches returned by a read.
#[derive(Debug)]
pub enum ReadChunk {
    /// Stored batch bytes, a view of the read buffer (no copy).
    Stored(ReadBytes),
    /// A projected batch, assembled from the stored one.
    Projected(Vec<u8>),
    /// A stored batch from the tail cache (no disk read).
    Cached(crate::log::tail_cache::CachedBytes),
}

impl ReadChunk {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ReadChunk::Stored(bytes) => bytes,
            ReadChunk::Projected(bytes) => bytes,
            ReadChunk::Cached(bytes) => bytes,
        }
    }
}

/// The result of a read.
#[derive(Debug)]
pub struct LogRead {
    /// Whole batches, in offset order; the first contains the offset asked for.
    pub chunks: Vec<ReadChunk>,
    /// The offset after the last batch returned (where the next read starts).
    pub next_offset: u64,
    /// The high watermark when the read was served.
    pub high_watermark: u64,
    /// The earliest offset in the log.
    pub log_start_offset: u64,
}

/// What retention removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes of batches deleted.
    pub deleted_bytes: u64,
}

/// A batch appended to the active segment, not yet known to be durable.
#[derive(Clone, Copy, Debug)]
struct Pending {
    end_position: u64,
    end_offset: u64,
    commit_timestamp: i64,
}

pub(crate) struct State {
    pub(crate) sealed: Vec<Segment>,
    pub(crate) active: ActiveSegment,
    pending: VecDeque<Pending>,
    pub(crate) high_watermark: u64,
    /// Position in the active segment up to which batches are durable.
    durable_position: u64,
    /// Commit timestamp of the last durable batch of the active segment.
    durable_max_timestamp: i64,
    pub(crate) last_commit_timestamp: i64,
    /// Base offsets of sealed segments whose file is open, least recently used first.
    open_sealed: VecDeque<u64>,
    /// Idempotent writers.
    pub(crate) writers: WriterTable,
    /// Notified whenever the high watermark moves.
    data_arrived: Rc<Notifier>,
}

impl State {
    pub(crate) fn new(
        sealed: Vec<Segment>,
        active: ActiveSegment,
        last_commit_timestamp: i64,
        writers: WriterTable,
    ) -> Self {
        let high_watermark = active.segment.end_offset;
        let durable_position = active.segment.size;
        let durable_max_timestamp = active.segment.max_timestamp;
        Self {
            sealed,
            active,
            pending: VecDeque::new(),
            high_watermark,
            durable_position,
            durable_max_timestamp,
            last_commit_timestamp,
            open_sealed: VecDeque::new(),
            writers,
            data_arrived: Rc::new(Notifier::default()),
        }
    }

    /// Notes that sealed segment `base` was used; returns files to close if too many are
    /// open.
    fn touch_sealed(&mut self, base: u64, open_max: usize) -> Vec<SegmentFile> {
        self.open_sealed.retain(|open| *open != base);
        self.open_sealed.push_back(base);
        let mut evicted = Vec::new();
        while self.open_sealed.len() > open_max {
            let Some(oldest) = self.open_sealed.pop_front() else { break };
            if let Some(segment) =
                self.sealed.iter_mut().find(|segment| segment.base_offset == oldest)
            {
                evicted.extend(segment.file.take());
            }
        }
        evicted
    }

    fn log_start_offset(&self) -> u64 {
        self.sealed.first().map_or(self.active.segment.base_offset, |segment| segment.base_offset)
    }

    /// Moves the high watermark over every batch the writer has made durable.
    fn refresh_high_watermark(&mut self) {
        let durable = self.active.writer.durable_size();
        let before = self.high_watermark;
        while let Some(pending) = self.pending.front().copied() {
            if pending.end_position > durable {
                break;
            }
            self.pending.pop_front();
            self.high_watermark = pending.end_offset;
            self.durable_position = pending.end_position;
            self.durable_max_timestamp = pending.commit_timestamp;
        }
        if self.high_watermark != before {
            self.data_arrived.notify_all();
        }
    }
}

/// The log of one bucket, owned by one shard.
pub struct LogTablet {
    pub(crate) dir: DataDir,
    pub(crate) config: LogConfig,
    pub(crate) clock: Rc<dyn Clock>,
    pub(crate) state: RefCell<State>,
    append_lock: Semaphore,
    leader_epoch: std::cell::Cell<u32>,
    /// Set by the first fatal error; every later append fails with it.
    fatal: RefCell<Option<String>>,
    /// The newest small batches, for tailing readers.
    tail: RefCell<TailCache>,
    /// Retention keeps every segment holding offsets at or past this one (a primary-key
    /// bucket's changelog after its last KV snapshot). `u64::MAX`: no floor.
    retention_floor: std::cell::Cell<u64>,
    /// Retention keeps every segment holding offsets at or past this one: a lake-enabled
    /// table's records not yet tiered. `u64::MAX`: no floor.
    lake_floor: std::cell::Cell<u64>,
}

impl std::fmt::Debug for LogTablet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogTablet")
            .field("dir", &self.dir.path())
            .field("log_start_offset", &self.log_start_offset())
            .field("high_watermark", &self.high_watermark())
            .field("log_end_offset", &self.log_end_offset())
            .finish_non_exhaustive()
    }
}

/// A read position: a segment's file and where to scan it.
struct SegmentView {
    file: SegmentFile,
    end_offset: u64,
    scan_from: u64,
    scan_end: u64,
    /// Known batch starts (from the index) in `(scan_from, scan_from + reach]`.
    batch_starts: Vec<u64>,
}

/// How many bytes a read at `position` with `budget` bytes left should fetch: up to the
/// last known batch start within the budget (and the largest window), plus the header of
/// the batch there — so no partial batch is read only to be thrown away (a read that stops
/// at the budget cuts the batch after it, which the next fetch reads again) and the header
/// says whether that batch still fits. With no batch start known there: the budget, but
/// at least a generous window for the `first` batch of a read (returned whatever its size).
fn read_window_size(batch_starts: &[u64], position: u64, budget: usize, first: bool) -> usize {
    let limit = position.saturating_add(budget.min(READ_WINDOW_SIZE_MAX_BYTES) as u64);
    // `batch_starts` is ascending: the last start at or below the limit, if past `position`.
    let below = batch_starts.partition_point(|start| *start <= limit);
    let last = below.checked_sub(1).map(|index| batch_starts[index]);
    match last.filter(|start| *start > position) {
        Some(end) => (end - position) as usize + BATCH_HEADER_SIZE_BYTES,
        None if first => budget.clamp(READ_WINDOW_SIZE_MIN_BYTES, READ_WINDOW_SIZE_MAX_BYTES),
        None => budget.clamp(BATCH_HEADER_SIZE_BYTES, READ_WINDOW_SIZE_MAX_BYTES),
    }
}

impl LogTablet {
    /// Opens the log in `path`, recovering it (see `recovery`), or creates an empty one.
    pub async fn open(
        path: impl AsRef<Path>,
        config: LogConfig,
        clock: Rc<dyn Clock>,
    ) -> Result<Self, OpenError> {
        config.validate().map_err(OpenError::Config)?;
        let dir = DataDir::open(path.as_ref()).await?;
        let state = crate::log::recovery::recover(&dir, &config).await?;
        let tail_cache_bytes = config.tail_cache_bytes;
        Ok(Self {
            dir,
            config,
            clock,
            state: RefCell::new(state),
            append_lock: Semaphore::new(1),
            leader_epoch: std::cell::Cell::new(0),
            fatal: RefCell::new(None),
            tail: RefCell::new(TailCache::new(tail_cache_bytes)),
            retention_floor: std::cell::Cell::new(u64::MAX),
            lake_floor: std::cell::Cell::new(u64::MAX),
        })
    }

    /// Keeps every segment with offsets at or past `offset` from retention: the changelog a
    /// primary-key bucket's KV snapshot still needs to be rebuilt.
    pub fn set_retention_floor(&self, offset: u64) {
        self.retention_floor.set(offset);
    }

    /// Keeps every segment with offsets at or past `offset` from retention: the records of a
    /// lake-enabled table that are not in the lake yet.
    pub fn set_lake_floor(&self, offset: u64) {
        self.lake_floor.set(offset);
    }

    /// What an append of batch `sequence` from idempotent writer `writer_id` would do now.
    /// A primary-key bucket asks before it turns a write into changelog records.
    pub fn check_sequence(&self, writer_id: i64, sequence: i32) -> SequenceCheck {
        self.state.borrow().writers.check(writer_id, sequence)
    }

    /// Notes batch `sequence` of `writer_id` as applied without records (a primary-key write
    /// that changed nothing), so its retry is a duplicate and its successor is in order. The
    /// note is kept in memory only: it is not in the log to be recovered.
    pub fn record_sequence_without_records(&self, writer_id: i64, sequence: i32) {
        let mut state = self.state.borrow_mut();
        let end = state.active.segment.end_offset;
        let stored = StoredBatch {
            sequence,
            base_offset: end,
            last_offset: end.wrapping_sub(1),
            commit_timestamp: state.last_commit_timestamp,
        };
        state.writers.record(writer_id, stored);
    }

    /// The bucket directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Sets the leader epoch stamped into appended batches.
    pub fn set_leader_epoch(&self, epoch: u32) {
        self.leader_epoch.set(epoch);
    }

    /// The earliest offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.state.borrow().log_start_offset()
    }

    /// Offsets below this are durable and readable.
    pub fn high_watermark(&self) -> u64 {
        let mut state = self.state.borrow_mut();
        state.refresh_high_watermark();
        state.high_watermark
    }

    /// The offset the next append gets (durable or not).
    pub fn log_end_offset(&self) -> u64 {
        self.state.borrow().active.segment.end_offset
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.state.borrow().sealed.len() + 1
    }

    /// Bytes of batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        let state = self.state.borrow();
        state.sealed.iter().map(|segment| segment.size).sum::<u64>() + state.active.segment.size
    }

    /// Appends one batch: checks it (CRC, structure against `schema`, size), assigns its
    /// offsets, stamps offset, commit time and leader epoch into `batch`, and writes it.
    /// Returns once it is written, not once it is durable: see [`Self::wait_durable`].
    pub async fn append(
        &self,
        batch: &mut [u8],
        schema: &BatchSchema,
    ) -> Result<Appended, AppendError> {
        self.check_fatal()?;
        let appended = self.append_unchecked(batch, schema).await;
        appended.map_err(|error| self.remember_fatal(error))
    }

    /// Fails with the first fatal error, if there was one.
    fn check_fatal(&self) -> Result<(), AppendError> {
        match self.fatal.borrow().as_ref() {
            Some(reason) => Err(AppendError::Fatal(IoError::Fatal {
                path: self.dir.path().to_path_buf(),
                reason: reason.clone(),
            })),
            None => Ok(()),
        }
    }

    /// Passes `error` on, remembering it if it is fatal.
    fn remember_fatal(&self, error: AppendError) -> AppendError {
        if let AppendError::Fatal(fatal) = &error {
            self.fatal.borrow_mut().get_or_insert_with(|| fatal.to_string());
        }
        error
    }

    async fn append_unchecked(
        &self,
        batch: &mut [u8],
        schema: &BatchSchema,
    ) -> Result<Appended, AppendError> {
        if batch.len() > self.config.batch_size_max_bytes as usize {
            return Err(AppendError::TooLarge {
                size: batch.len(),
                max: self.config.batch_size_max_bytes,
            });
        }
        let parsed = LogBatch::parse(batch)?;
        if parsed.len() != batch.len() {
            return Err(AppendError::InvalidBatch(BatchError::BadLength {
                length: batch.len() as u64,
                reason: "bytes follow the batch",
            }));
        }
        if parsed.attributes().is_projected() {
            return Err(AppendError::InvalidBatch(BatchError::BadHeader {
                field: "attributes",
                reason: "a projected batch cannot be stored".into(),
            }));
        }
        parsed.check_schema(schema)?;
        let offset_count = parsed.offset_count();
        let length = batch.len() as u64;

        let _permit = self.append_lock.acquire_permit(1).await.map_err(|error| {
            AppendError::Io(IoError::from_glommio("waiting to append to", self.dir.path(), error))
        })?;
        let (writer_id, sequence) =
            (parsed.header().writer_id.get(), parsed.header().batch_sequence.get());
        if writer_id >= 0 {
            let check = self.state.borrow().writers.check(writer_id, sequence);
            match check {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(stored) => return Ok(self.duplicate(stored)),
                SequenceCheck::OutOfOrder { expected, got } => {
                    return Err(AppendError::OutOfOrderSequence { writer_id, expected, got })
                }
            }
        }
        self.roll_if_due(length, offset_count).await?;
        let (writer, base_offset, commit_timestamp, position, segment_base) = {
            let mut state = self.state.borrow_mut();
            let commit_timestamp = self.clock.now_ms().max(state.last_commit_timestamp);
            state.last_commit_timestamp = commit_timestamp;
            let active = &state.active;
            (
                active.writer.clone(),
                active.segment.end_offset,
                commit_timestamp,
                active.segment.size,
                active.segment.base_offset,
            )
        };
        stamp_server_fields(batch, base_offset, commit_timestamp, self.leader_epoch.get());
        let end = match writer.append(batch).await {
            Ok(end) => end,
            Err(error) => {
                self.reconcile_after_failure();
                return Err(error.into());
            }
        };
        let end_offset = base_offset + offset_count;
        self.tail.borrow_mut().push(base_offset, end_offset, batch);
        let mut state = self.state.borrow_mut();
        assert_eq!(end.end, position + length, "the writer appends where the tablet expects");
        let interval = self.config.index_interval_bytes;
        state.active.segment.observe_batch(
            position,
            length,
            base_offset,
            end_offset,
            commit_timestamp,
            interval,
        );
        state.pending.push_back(Pending { end_position: end.end, end_offset, commit_timestamp });
        if writer_id >= 0 {
            let stored = StoredBatch {
                sequence,
                base_offset,
                last_offset: end_offset - 1,
                commit_timestamp,
            };
            state.writers.record(writer_id, stored);
        }
        Ok(Appended {
            base_offset,
            last_offset: end_offset - 1,
            commit_timestamp,
            duplicate: false,
            segment_base,
            end,
        })
    }

    /// The answer to a retried batch: its original offsets, waited for like a new append.
    fn duplicate(&self, stored: StoredBatch) -> Appended {
        let state = self.state.borrow();
        Appended {
            base_offset: stored.base_offset,
            last_offset: stored.last_offset,
            commit_timestamp: stored.commit_timestamp,
            duplicate: true,
            // Wait for everything appended so far: the original is among it.
            segment_base: state.active.segment.base_offset,
            end: state.active.writer.appended_end(),
        }
    }

    /// Waits until the high watermark passes `offset` or `timeout` elapses; returns the high
    /// watermark. For long-polling reads.
    pub async fn wait_for_data(&self, offset: u64, timeout: std::time::Duration) -> u64 {
        let notifier = self.state.borrow().data_arrived.clone();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = notifier.epoch();
            let high_watermark = self.high_watermark();
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if high_watermark > offset || left.is_zero() {
                return high_watermark;
            }
            let timer = glommio::timer::Timer::new(left);
            futures_util::future::select(Box::pin(notifier.changed(seen)), timer).await;
        }
    }

    /// Waits until an appended batch is durable (group commit: concurrent waiters share one
    /// `fdatasync`). On failure the batch and every later one not yet durable are gone.
    pub async fn wait_durable(&self, appended: &Appended) -> Result<(), AppendError> {
        let writer = {
            let mut state = self.state.borrow_mut();
            if state.active.segment.base_offset != appended.segment_base {
                // Its segment was sealed, which synced it.
                state.refresh_high_watermark();
                return Ok(());
            }
            state.active.writer.clone()
        };
        match writer.sync_to(appended.end).await {
            Ok(()) => {
                self.state.borrow_mut().refresh_high_watermark();
                Ok(())
            }
            Err(error) => {
                // The lock is never closed, so the permit is always granted.
                let _permit = self.append_lock.acquire_permit(1).await;
                self.reconcile_after_failure();
                Err(self.remember_fatal(error.into()))
            }
        }
    }

    /// [`Self::append`] then [`Self::wait_durable`]: the `acks=all` path of one node.
    pub async fn append_durable(
        &self,
        batch: &mut [u8],
        schema: &BatchSchema,
    ) -> Result<Appended, AppendError> {
        let appended = self.append(batch, schema).await?;
        self.wait_durable(&appended).await?;
        Ok(appended)
    }

    /// Makes everything appended durable (graceful shutdown).
    pub async fn sync(&self) -> Result<u64, AppendError> {
        let writer = self.state.borrow().active.writer.clone();
        match writer.sync().await {
            Ok(_) => Ok(self.high_watermark()),
            Err(error) => {
                // The lock is never closed, so the permit is always granted.
                let _permit = self.append_lock.acquire_permit(1).await;
                self.reconcile_after_failure();
                Err(self.remember_fatal(error.into()))
            }
        }
    }

    /// After the writer discarded appends that were not durable (a failed write), forget
    /// them here too: offsets, sizes and index entries go back to the durable point.
    fn reconcile_after_failure(&self) {
        let mut state = self.state.borrow_mut();
        state.refresh_high_watermark();
        let kept_size = state.active.writer.appended_size();
        while state.pending.back().is_some_and(|pending| pending.end_position > kept_size) {
            state.pending.pop_back();
        }
        let (end_offset, max_timestamp, size) = match state.pending.back() {
            Some(pending) => (pending.end_offset, pending.commit_timestamp, pending.end_position),
            None => (state.high_watermark, state.durable_max_timestamp, state.durable_position),
        };
        assert_eq!(size, kept_size, "the writer keeps exactly the batches the tablet keeps");
        let segment = &mut state.active.segment;
        segment.end_offset = end_offset;
        segment.size = size;
        segment.max_timestamp = max_timestamp;
        if size == 0 {
            segment.first_timestamp = None;
        }
        segment.index.truncate_from(size);
        state.writers.forget_from(end_offset);
        self.tail.borrow_mut().truncate_from(end_offset);
    }

    /// Seals the active segment and starts a new one if `incoming` bytes or
    /// `incoming_offsets` offsets would overflow it, or it is too old. Called with the append
    /// lock held.
    async fn roll_if_due(&self, incoming: u64, incoming_offsets: u64) -> Result<(), AppendError> {
        let (due, writer) = {
            let state = self.state.borrow();
            let segment = &state.active.segment;
            let offsets = segment.end_offset - segment.base_offset + incoming_offsets;
            let full = segment.size + incoming > self.config.segment_size_max_bytes
                || offsets > SEGMENT_OFFSET_SPAN_MAX;
            let age_max_ms = self.config.segment_age_max.as_millis() as i64;
            let old = segment
                .first_timestamp
                .is_some_and(|first| self.clock.now_ms() - first >= age_max_ms);
            (segment.size > 0 && (full || old), state.active.writer.clone())
        };
        if !due {
            return Ok(());
        }
        // Seal and index the old segment before the new file exists: after a crash, the
        // last file is always the one to recover by scanning.
        if let Err(error) = writer.seal().await {
            self.reconcile_after_failure();
            return Err(error.into());
        }
        let summary = {
            let mut state = self.state.borrow_mut();
            state.refresh_high_watermark();
            assert!(state.pending.is_empty(), "sealing made everything durable");
            state.active.segment.summary()
        };
        let (offsets, times) = {
            let state = self.state.borrow();
            (
                state.active.segment.index.encode_offsets(&summary),
                state.active.segment.index.encode_times(&summary),
            )
        };
        self.dir
            .replace_file(&file_name(summary.base_offset, FileKind::OffsetIndex), &offsets)
            .await?;
        self.dir.replace_file(&file_name(summary.base_offset, FileKind::TimeIndex), &times).await?;
        // The writers' state as of the end of this segment; recovery starts from the newest.
        let snapshot = self.state.borrow().writers.encode();
        let snapshot_name = file_name(summary.base_offset, FileKind::WriterSnapshot);
        self.dir.replace_file(&snapshot_name, &snapshot).await?;
        let previous = self.state.borrow().sealed.last().map(|segment| segment.base_offset);
        if let Some(previous) = previous {
            self.dir.remove(&file_name(previous, FileKind::WriterSnapshot)).await?;
        }
        let name = file_name(summary.end_offset, FileKind::Segment);
        let new_writer = Rc::new(self.dir.create_writer(&name, self.config.writer).await?);
        let evicted = {
            let mut state = self.state.borrow_mut();
            let segment = Segment::empty(summary.end_offset, Some(new_writer.reader()));
            let old =
                std::mem::replace(&mut state.active, ActiveSegment { segment, writer: new_writer });
            state.sealed.push(old.segment);
            state.durable_position = 0;
            state.durable_max_timestamp = i64::MIN;
            state.touch_sealed(summary.base_offset, self.config.open_sealed_segment_count_max)
        };
        for file in evicted {
            file.close().await?;
        }
        Ok(())
    }

    /// Reads whole batches from the one containing `from_offset`, up to `max_bytes` (at
    /// least one batch, however large), never past the high watermark. With a projection,
    /// each batch is cut down to the projected columns, reading only their bytes when the
    /// batch is larger than the read window. Stored batches are checked against their CRC.
    pub async fn read(
        &self,
        from_offset: u64,
        max_bytes: usize,
        projection: Option<&Projection>,
    ) -> Result<LogRead, ReadError> {
        let (log_start_offset, high_watermark) = {
            let mut state = self.state.borrow_mut();
            state.refresh_high_watermark();
            (state.log_start_offset(), state.high_watermark)
        };
        if from_offset < log_start_offset || from_offset > high_watermark {
            return Err(ReadError::OffsetOutOfRange {
                requested: from_offset,
                earliest: log_start_offset,
                high_watermark,
            });
        }
        if let Some(cached) =
            self.read_cached(from_offset, max_bytes, projection, high_watermark)?
        {
            return Ok(LogRead {
                next_offset: cached.1,
                chunks: cached.0,
                high_watermark,
                log_start_offset,
            });
        }
        let mut chunks = Vec::new();
        let mut offset = from_offset;
        // Bytes still to return, and stored bytes still to go through: the same without a
        // projection; with one, a read returns up to `max_bytes` of projected batches but
        // goes through at most `PROJECTED_READ_SCAN_MAX_BYTES` of stored ones.
        let mut budget = max_bytes;
        let mut scan_budget = if projection.is_some() {
            PROJECTED_READ_SCAN_MAX_BYTES.max(max_bytes)
        } else {
            max_bytes
        };
        // With a projection: whether the batches seen are large enough to read by ranges.
        let mut large_batches = true;
        'segments: while offset < high_watermark {
            let view = self.segment_view(offset, high_watermark, scan_budget).await?;
            let window = read_window_size(
                &view.batch_starts,
                view.scan_from,
                scan_budget,
                chunks.is_empty(),
            );
            let mut scanner =
                SegmentScanner::new(&view.file, view.scan_from, view.scan_end, None, false, window);
            loop {
                scanner.set_window_size(if projection.is_some() && large_batches {
                    // Headers only: the batches are projected by ranged reads.
                    PROJECTION_PREFIX_READ_BYTES
                } else {
                    let first = chunks.is_empty();
                    read_window_size(&view.batch_starts, scanner.position(), scan_budget, first)
                });
                let batch = match scanner.next().await? {
                    ScanStep::Batch(batch) => batch,
                    ScanStep::End => break,
                    ScanStep::Stop(stop) => {
                        return Err(corrupt(&view.file, stop.position, stop.reason));
                    }
                };
                if batch.end_offset <= offset {
                    continue;
                }
                if batch.base_offset >= high_watermark {
                    break 'segments;
                }
                if !chunks.is_empty() && batch.length as usize > scan_budget {
                    break 'segments;
                }
                let chunk = match projection {
                    None => {
                        self.stored_batch(&view.file, batch.position, batch.length, batch.bytes)
                            .await?
                    }
                    Some(projection) => {
                        // Batches in a bucket tend to be alike: the size of this one picks
                        // how the next is read.
                        large_batches = batch.length >= RANGED_PROJECTION_MIN_BYTES;
                        let (bytes, head) = match batch.bytes {
                            None if !large_batches => {
                                let length = batch.length as usize;
                                (Some(view.file.read_exact_at(batch.position, length).await?), None)
                            }
                            None => (None, scanner.window_from(batch.position)),
                            bytes => (bytes, None),
                        };
                        let chunk = project_stored(
                            &view.file,
                            batch.position,
                            batch.length,
                            bytes,
                            head,
                            projection,
                        )
                        .await?;
                        if !chunks.is_empty() && chunk.as_bytes().len() > budget {
                            break 'segments;
                        }
                        chunk
                    }
                };
                budget = budget.saturating_sub(chunk.as_bytes().len());
                scan_budget = scan_budget.saturating_sub(batch.length as usize);
                if projection.is_none() {
                    scan_budget = budget;
                }
                chunks.push(chunk);
                offset = batch.end_offset;
                if budget == 0 || scan_budget == 0 {
                    break 'segments;
                }
            }
            if offset < view.end_offset.min(high_watermark) {
                return Err(corrupt(
                    &view.file,
                    scanner.position(),
                    "segment ends before its last offset".into(),
                ));
            }
            offset = offset.max(view.end_offset);
        }
        Ok(LogRead { chunks, next_offset: offset, high_watermark, log_start_offset })
    }

    /// [`Self::read`] from the tail cache, if it holds the batch containing `from_offset`:
    /// the chunks and the offset after them.
    fn read_cached(
        &self,
        from_offset: u64,
        max_bytes: usize,
        projection: Option<&Projection>,
        high_watermark: u64,
    ) -> Result<Option<(Vec<ReadChunk>, u64)>, ReadError> {
        let Some(batches) = self.tail.borrow().read(from_offset, max_bytes, high_watermark) else {
            return Ok(None);
        };
        let mut chunks = Vec::with_capacity(batches.len());
        let mut next_offset = from_offset;
        for (end_offset, bytes) in batches {
            let chunk = match projection {
                None => ReadChunk::Cached(bytes),
                Some(projection) => {
                    let projected = project(&bytes, projection).map_err(|error| match error {
                        BatchError::SchemaMismatch(_) | BatchError::BadProjection { .. } => {
                            ReadError::Projection(error)
                        }
                        other => ReadError::Corrupt {
                            path: self.dir.path().to_path_buf(),
                            position: 0,
                            reason: format!("a cached batch: {other}"),
                        },
                    })?;
                    ReadChunk::Projected(projected.assemble(&bytes))
                }
            };
            chunks.push(chunk);
            next_offset = end_offset;
        }
        Ok(Some((chunks, next_offset)))
    }

    /// The first offset at or after `spec`.
    pub async fn list_offsets(&self, spec: OffsetSpec) -> Result<u64, ReadError> {
        let (log_start_offset, high_watermark) = {
            let mut state = self.state.borrow_mut();
            state.refresh_high_watermark();
            (state.log_start_offset(), state.high_watermark)
        };
        let timestamp = match spec {
            OffsetSpec::Earliest => return Ok(log_start_offset),
            OffsetSpec::Latest => return Ok(high_watermark),
            OffsetSpec::Timestamp(timestamp) => timestamp,
        };
        // The first segment whose newest durable batch is at or after the time holds it.
        let start = {
            let state = self.state.borrow();
            let sealed = state.sealed.iter().find(|segment| segment.max_timestamp >= timestamp);
            match sealed {
                Some(segment) => Some(
                    segment.base_offset + u64::from(segment.index.offset_before_time(timestamp)),
                ),
                None if state.durable_max_timestamp >= timestamp => {
                    let segment = &state.active.segment;
                    Some(
                        segment.base_offset
                            + u64::from(segment.index.offset_before_time(timestamp)),
                    )
                }
                None => None,
            }
        };
        let Some(mut offset) = start else {
            return Ok(high_watermark);
        };
        while offset < high_watermark {
            let view = self.segment_view(offset, high_watermark, 0).await?;
            let mut scanner = SegmentScanner::new(
                &view.file,
                view.scan_from,
                view.scan_end,
                None,
                false,
                LOOKUP_WINDOW_SIZE_BYTES,
            );
            loop {
                match scanner.next().await? {
                    ScanStep::Batch(batch) if batch.base_offset >= high_watermark => {
                        return Ok(high_watermark)
                    }
                    ScanStep::Batch(batch)
                        if batch.commit_timestamp >= timestamp && batch.end_offset > offset =>
                    {
                        return Ok(batch.base_offset.max(log_start_offset));
                    }
                    ScanStep::Batch(_) => {}
                    ScanStep::End => break,
                    ScanStep::Stop(stop) => {
                        return Err(corrupt(&view.file, stop.position, stop.reason))
                    }
                }
            }
            offset = offset.max(view.end_offset);
        }
        Ok(high_watermark)
    }

    /// Deletes sealed segments, oldest first, while the log is over its size limit or the
    /// oldest segment's newest batch is past the age limit. Never the active segment.
    pub async fn apply_retention(&self) -> Result<RetentionOutcome, RetentionError> {
        let _permit = self.append_lock.acquire_permit(1).await.map_err(|error| {
            RetentionError(IoError::from_glommio("waiting to trim", self.dir.path(), error))
        })?;
        let mut outcome = RetentionOutcome::default();
        loop {
            let victim = {
                let mut state = self.state.borrow_mut();
                let total: u64 = state.sealed.iter().map(|segment| segment.size).sum::<u64>()
                    + state.active.segment.size;
                let Some(oldest) = state.sealed.first() else { break };
                let floor = self.retention_floor.get().min(self.lake_floor.get());
                if oldest.end_offset > floor {
                    break;
                }
                let over_size = self.config.retention_size_max_bytes.is_some_and(|max| total > max);
                let too_old = self.config.retention_age_max.is_some_and(|age| {
                    oldest.max_timestamp < self.clock.now_ms() - age.as_millis() as i64
                });
                if !over_size && !too_old {
                    break;
                }
                let victim = state.sealed.remove(0);
                state.open_sealed.retain(|open| *open != victim.base_offset);
                victim
            };
            if let Some(file) = victim.file {
                file.close().await?;
            }
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += victim.size;
            // The log file first: once it is gone the segment is gone; leftover index files
            // are removed at the next open.
            for kind in [
                FileKind::Segment,
                FileKind::OffsetIndex,
                FileKind::TimeIndex,
                FileKind::WriterSnapshot,
            ] {
                self.dir.remove(&file_name(victim.base_offset, kind)).await?;
            }
        }
        if outcome.deleted_segments > 0 {
            self.dir.sync().await?;
        }
        Ok(outcome)
    }

    /// The segment holding `offset`, its file (opened if it was closed) and where to start
    /// scanning it.
    async fn segment_view(
        &self,
        offset: u64,
        high_watermark: u64,
        reach: usize,
    ) -> Result<SegmentView, ReadError> {
        let (file, sealed, base_offset, end_offset, scan_from, scan_end, batch_starts) = {
            let state = self.state.borrow();
            let position = state.sealed.partition_point(|segment| segment.base_offset <= offset);
            let in_sealed =
                position < state.sealed.len() || state.active.segment.base_offset > offset;
            let (segment, scan_end, next_base) = if in_sealed {
                let index = position.checked_sub(1).ok_or(ReadError::OffsetOutOfRange {
                    requested: offset,
                    earliest: state.log_start_offset(),
                    high_watermark,
                })?;
                let segment = &state.sealed[index];
                let next = state
                    .sealed
                    .get(position)
                    .map_or(state.active.segment.base_offset, |next| next.base_offset);
                (segment, segment.size, next)
            } else {
                (&state.active.segment, state.durable_position, u64::MAX)
            };
            if offset >= segment.end_offset && offset < next_base {
                let path = self.dir.file_path(&file_name(segment.base_offset, FileKind::Segment));
                return Err(ReadError::Corrupt {
                    path,
                    position: segment.size,
                    reason: format!(
                        "offsets {}..{next_base} were lost from this segment",
                        segment.end_offset
                    ),
                });
            }
            let relative =
                u32::try_from(offset.saturating_sub(segment.base_offset)).unwrap_or(u32::MAX);
            let scan_from = segment.index.position_for(relative);
            let reach_end = scan_from.saturating_add(reach as u64).min(scan_end);
            (
                segment.file.clone(),
                in_sealed,
                segment.base_offset,
                segment.end_offset,
                scan_from,
                scan_end,
                segment.index.positions_between(scan_from, reach_end),
            )
        };
        let file = match file {
            Some(file) => file,
            None => self.dir.open_reader(&file_name(base_offset, FileKind::Segment)).await?,
        };
        if sealed {
            let evicted = {
                let mut state = self.state.borrow_mut();
                if let Some(segment) =
                    state.sealed.iter_mut().find(|segment| segment.base_offset == base_offset)
                {
                    segment.file.get_or_insert_with(|| file.clone());
                }
                state.touch_sealed(base_offset, self.config.open_sealed_segment_count_max)
            };
            for evicted in evicted {
                evicted.close().await?;
            }
        }
        Ok(SegmentView { file, end_offset, scan_from, scan_end, batch_starts })
    }

    /// Syncs everything appended and closes every file (graceful shutdown). Files dropped
    /// without this are closed by the reactor later, or not at all if the executor stops.
    pub async fn close(self) -> Result<(), AppendError> {
        self.sync().await?;
        let state = self.state.into_inner();
        for segment in state.sealed {
            if let Some(file) = segment.file {
                file.close().await?;
            }
        }
        if let Some(file) = state.active.segment.file {
            file.close().await?;
        }
        if let Ok(writer) = Rc::try_unwrap(state.active.writer) {
            writer.close().await?;
        }
        Ok(())
    }

    /// A stored batch's bytes, checked against its CRC.
    async fn stored_batch(
        &self,
        file: &SegmentFile,
        position: u64,
        length: u64,
        bytes: Option<ReadBytes>,
    ) -> Result<ReadChunk, ReadError> {
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => file.read_exact_at(position, length as usize).await?,
        };
        if let Err(error) = LogBatch::parse(&bytes) {
            return Err(corrupt(file, position, error.to_string()));
        }
        Ok(ReadChunk::Stored(bytes))
    }
}

/// Projects the stored batch at `position`: in memory if it was read whole, otherwise by
/// reading its metadata and then only the projected columns' byte ranges.
async fn project_stored(
    file: &SegmentFile,
    position: u64,
    length: u64,
    bytes: Option<ReadBytes>,
    head: Option<ReadBytes>,
    projection: &Projection,
) -> Result<ReadChunk, ReadError> {
    let to_read_error = |error: BatchError| match error {
        BatchError::SchemaMismatch(_) | BatchError::BadProjection { .. } => {
            ReadError::Projection(error)
        }
        other => corrupt(file, position, other.to_string()),
    };
    if let Some(bytes) = bytes {
        // The whole batch is in memory anyway: check its stored CRC before trusting it.
        if let Err(error) = LogBatch::parse(&bytes) {
            return Err(corrupt(file, position, error.to_string()));
        }
        let projected = project(&bytes, projection).map_err(to_read_error)?;
        return Ok(ReadChunk::Projected(projected.assemble(&bytes)));
    }
    // The leading bytes the scan already read, or a read of them.
    let mut prefix = match head {
        Some(head) => head,
        None => file.read_at(position, PROJECTION_PREFIX_READ_BYTES.min(length as usize)).await?,
    };
    let needed = required_prefix_size(&prefix).map_err(to_read_error)?;
    if needed > prefix.len() {
        prefix = file.read_exact_at(position, needed).await?;
    }
    let mut projected = project(&prefix, projection).map_err(to_read_error)?;
    // The ranges are read at once: the disk works on all of them together.
    let reads = projected
        .body_ranges()
        .iter()
        .map(|range| file.read_exact_at(position + range.start as u64, range.len()));
    let parts = futures_util::future::try_join_all(reads).await?;
    projected.seal(parts.iter().map(|part| &part[..]));
    let mut out = Vec::with_capacity(projected.len());
    out.extend_from_slice(projected.head());
    for part in &parts {
        out.extend_from_slice(part);
    }
    Ok(ReadChunk::Projected(out))
}

fn corrupt(file: &SegmentFile, position: u64, reason: String) -> ReadError {
    ReadError::Corrupt { path: file.path().to_path_buf(), position, reason }
}
