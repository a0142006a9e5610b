//! The read path of a [`LogTablet`]: whole batches from an offset up to a byte budget,
//! never past the high watermark — from the tail cache when it holds them, otherwise from
//! the segment files, cut down to a projection if one is asked for — and long polls that
//! wait for the high watermark to move.
//!
//! Invariants: a read returns whole batches in offset order, the first containing the
//! offset asked for; at least one batch is returned if there is one, then batches while
//! they fit the budget ([`ReadPlan`]); stored batches are checked against their CRC before
//! they are returned or projected in memory.

use std::time::Duration;

use futures_util::future::Either;
use ufer_io::ReadBytes;
use ufer_wire::{LogBatch, Projection};

use crate::log::error::ReadError;
use crate::log::projection::{project_cached, project_stored, StoredAt};
use crate::log::read_plan::{ReadPlan, ReadShape};
use crate::log::scan::{CrcCheck, ScanStep, ScannedBatch, SegmentScanner};
use crate::log::segment_view::SegmentView;
use crate::log::tablet::LogTablet;
use crate::log::tail_cache::CachedBytes;

/// What a read asks for.
#[derive(Clone, Copy, Debug)]
pub struct ReadRequest<'a> {
    /// The batch containing this offset comes first.
    pub from_offset: u64,
    /// Bytes to return at most; at least one batch is returned, however large.
    pub max_bytes: usize,
    /// The columns each batch is cut down to; `None` returns the stored batches.
    pub projection: Option<&'a Projection>,
}

impl<'a> ReadRequest<'a> {
    /// The stored batches from the one containing `from_offset`, up to `max_bytes`.
    pub fn new(from_offset: u64, max_bytes: usize) -> Self {
        Self { from_offset, max_bytes, projection: None }
    }

    /// The same read, each batch cut down to `projection`.
    pub fn projected(self, projection: &'a Projection) -> Self {
        Self { projection: Some(projection), ..self }
    }
}

/// Bytes of whole batches returned by a read.
#[derive(Debug)]
pub enum ReadChunk {
    /// Stored batch bytes, a view of the read buffer (no copy).
    Stored(ReadBytes),
    /// A projected batch, assembled from the stored one.
    Projected(Vec<u8>),
    /// A stored batch from the tail cache (no disk read).
    Cached(CachedBytes),
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

/// How the scan of one segment ended.
enum SegmentRead {
    /// Every batch of the segment up to the view's end was gone through.
    Exhausted,
    /// The read has all it takes.
    Stopped,
}

impl LogTablet {
    /// Reads whole batches from the one containing `request.from_offset`, up to
    /// `request.max_bytes` (at least one batch, however large), never past the high
    /// watermark. With a projection, each batch is cut down to the projected columns,
    /// reading only their bytes when the batch is large. Stored batches are checked against
    /// their CRC.
    pub async fn read(&self, request: ReadRequest<'_>) -> Result<LogRead, ReadError> {
        let (log_start_offset, high_watermark) = self.readable_range(request.from_offset)?;
        let mut read = LogRead {
            chunks: Vec::new(),
            next_offset: request.from_offset,
            high_watermark,
            log_start_offset,
        };
        if let Some((chunks, next_offset)) = self.read_cached(&request, high_watermark)? {
            assert!(next_offset <= high_watermark, "reads never go past the high watermark");
            return Ok(LogRead { chunks, next_offset, ..read });
        }
        let shape = match request.projection {
            None => ReadShape::Stored,
            Some(_) => ReadShape::Projected,
        };
        let mut plan = ReadPlan::new(request.max_bytes, shape);
        while read.next_offset < high_watermark {
            let view =
                self.segment_view(read.next_offset, high_watermark, plan.scan_budget()).await?;
            match self.read_segment(&view, request.projection, &mut plan, &mut read).await? {
                // Past a gap a damaged sealed segment left, but not past the durable end of
                // the active segment: its later batches are not readable yet.
                SegmentRead::Exhausted => {
                    let end = view.end_offset.min(high_watermark);
                    read.next_offset = read.next_offset.max(end);
                }
                SegmentRead::Stopped => break,
            }
        }
        assert!(read.next_offset <= high_watermark, "reads never go past the high watermark");
        Ok(read)
    }

    /// The log start offset and the high watermark, if `from_offset` lies between them.
    fn readable_range(&self, from_offset: u64) -> Result<(u64, u64), ReadError> {
        let mut state = self.state.borrow_mut();
        state.refresh_high_watermark();
        let (log_start_offset, high_watermark) = (state.log_start_offset(), state.high_watermark);
        if from_offset < log_start_offset || from_offset > high_watermark {
            return Err(ReadError::OffsetOutOfRange {
                requested: from_offset,
                earliest: log_start_offset,
                high_watermark,
            });
        }
        Ok((log_start_offset, high_watermark))
    }

    /// Adds to `read` the batches of the segment in `view` that `plan` takes.
    async fn read_segment(
        &self,
        view: &SegmentView,
        projection: Option<&Projection>,
        plan: &mut ReadPlan,
        read: &mut LogRead,
    ) -> Result<SegmentRead, ReadError> {
        let window = plan.window_size(&view.batch_starts, view.scan_from);
        let (from, end) = (view.scan_from, view.scan_end);
        let mut scanner = SegmentScanner::new(&view.file, from, end, None, CrcCheck::Skip, window);
        loop {
            scanner.set_window_size(plan.window_size(&view.batch_starts, scanner.position()));
            let batch = match scanner.next().await? {
                ScanStep::Batch(batch) => batch,
                ScanStep::End => break,
                ScanStep::Stop(stop) => {
                    let error = ReadError::corrupt(&view.file, stop.position, stop.reason);
                    return stopped_by_damage(view, read, error);
                }
            };
            if batch.end_offset <= read.next_offset {
                continue;
            }
            if batch.base_offset >= read.high_watermark || !plan.admits_stored(batch.length) {
                return Ok(SegmentRead::Stopped);
            }
            let (length, end_offset) = (batch.length, batch.end_offset);
            let chunk = match projection {
                None => stored_batch(&view.file, batch).await,
                Some(projection) => projected_batch(&scanner, batch, projection, plan)
                    .await
                    .map(ReadChunk::Projected),
            };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error @ ReadError::Corrupt { .. }) => {
                    return stopped_by_damage(view, read, error)
                }
                Err(error) => return Err(error),
            };
            if matches!(chunk, ReadChunk::Projected(_))
                && !plan.admits_projected(chunk.as_bytes().len())
            {
                return Ok(SegmentRead::Stopped);
            }
            plan.take(length, chunk.as_bytes().len());
            read.chunks.push(chunk);
            read.next_offset = end_offset;
            if plan.is_exhausted() {
                return Ok(SegmentRead::Stopped);
            }
        }
        if read.next_offset < view.end_offset.min(read.high_watermark) {
            let reason = "segment ends before its last offset".into();
            return Err(ReadError::corrupt(&view.file, scanner.position(), reason));
        }
        Ok(SegmentRead::Exhausted)
    }

    /// [`Self::read`] from the tail cache, if it holds the batch containing the offset asked
    /// for: the chunks and the offset after them.
    fn read_cached(
        &self,
        request: &ReadRequest<'_>,
        high_watermark: u64,
    ) -> Result<Option<(Vec<ReadChunk>, u64)>, ReadError> {
        let cached =
            self.tail.borrow().read(request.from_offset, request.max_bytes, high_watermark);
        let Some(batches) = cached else {
            return Ok(None);
        };
        let mut chunks = Vec::with_capacity(batches.len());
        let mut next_offset = request.from_offset;
        for (end_offset, bytes) in batches {
            let chunk = match request.projection {
                None => ReadChunk::Cached(bytes),
                Some(projection) => {
                    ReadChunk::Projected(project_cached(&bytes, projection, self.dir.path())?)
                }
            };
            chunks.push(chunk);
            next_offset = end_offset;
        }
        Ok(Some((chunks, next_offset)))
    }

    /// Waits until the high watermark passes `offset` or `timeout` elapses; returns the high
    /// watermark. For long-polling reads.
    pub async fn wait_for_data(&self, offset: u64, timeout: Duration) -> u64 {
        let notifier = self.state.borrow().data_arrived.clone();
        // The timeout is a real sleep whatever the tablet's clock: a long poll waits for the
        // network's time to pass, and the timer holds its deadline.
        let mut deadline = std::pin::pin!(glommio::timer::Timer::new(timeout));
        loop {
            let seen = notifier.epoch();
            let high_watermark = self.high_watermark();
            if high_watermark > offset || timeout.is_zero() {
                return high_watermark;
            }
            let changed = Box::pin(notifier.changed(seen));
            if let Either::Right(_) = futures_util::future::select(changed, deadline.as_mut()).await
            {
                return self.high_watermark();
            }
        }
    }
}

/// A stored batch's bytes (read now if the scan did not), checked against its CRC.
async fn stored_batch(
    file: &ufer_io::SegmentFile,
    batch: ScannedBatch,
) -> Result<ReadChunk, ReadError> {
    let bytes = match batch.bytes {
        Some(bytes) => bytes,
        None => file.read_exact_at(batch.position, batch.length as usize).await?,
    };
    if let Err(error) = LogBatch::parse(&bytes) {
        return Err(ReadError::corrupt(file, batch.position, error.to_string()));
    }
    Ok(ReadChunk::Stored(bytes))
}

/// The batch the scanner just found, cut down to `projection`: read whole or by ranges as
/// `plan` decides.
async fn projected_batch(
    scanner: &SegmentScanner<'_>,
    batch: ScannedBatch,
    projection: &Projection,
    plan: &mut ReadPlan,
) -> Result<Vec<u8>, ReadError> {
    plan.note_projected(batch.length);
    let at = StoredAt { file: scanner.file(), position: batch.position, length: batch.length };
    project_stored(at, batch.bytes, projection).await
}

/// A read that met damaged bytes: what it read before them is returned (the next read starts
/// at the damage and gets the error); a read that starts there gets `error`, saying where
/// reading resumes when recovery kept the damaged range.
fn stopped_by_damage(
    view: &SegmentView,
    read: &LogRead,
    error: ReadError,
) -> Result<SegmentRead, ReadError> {
    if !read.chunks.is_empty() {
        return Ok(SegmentRead::Stopped);
    }
    match (error, &view.damaged) {
        (ReadError::Corrupt { path, position, reason }, Some(range)) => Err(ReadError::Corrupt {
            path,
            position,
            reason: format!(
                "{reason}; offsets {}..{} are damaged (bytes {}..{}), reading resumes at offset {}",
                range.offsets.start,
                range.offsets.end,
                range.positions.start,
                range.positions.end,
                range.offsets.end
            ),
        }),
        (error, _) => Err(error),
    }
}
