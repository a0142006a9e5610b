//! Walking the batches of a segment file from a known batch boundary.
//!
//! The scanner reads the file in windows and checks each batch header (magic, length,
//! fields), that offsets continue where the previous batch ended, that the batch lies inside
//! the file, and optionally its CRC. It stops at the first batch that fails; reads report
//! corruption there. Recovery then asks [`find_resume`] whether valid batches follow the
//! damage: if they do, the damage is corruption and is kept; if not, a torn tail, and cut.

use ufer_io::{IoError, ReadBytes, SegmentFile};
use ufer_wire::header::BATCH_ALIGNMENT_BYTES;
use ufer_wire::{check_header, LogBatch, BATCH_HEADER_SIZE_BYTES};

use crate::log::segment::SEGMENT_OFFSET_SPAN_MAX;

/// Bytes read at a time while looking for valid batches after damage.
const RESUME_SEARCH_WINDOW_BYTES: usize = 1024 * 1024;

/// Where valid batches resume after damaged bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// File position of the first valid batch after the damage.
    pub position: u64,
    /// Its base offset: the offsets from the damage's first one up to it are damaged.
    pub base_offset: u64,
}

/// Where a scan met damaged bytes, and what a batch after them must hold to count.
#[derive(Clone, Copy, Debug)]
pub struct Damage {
    /// File position of the damaged batch.
    pub position: u64,
    /// The offset that batch was to start at: a batch after it starts past it.
    pub expected_offset: u64,
    /// The newest commit timestamp before it: a batch after it is not older.
    pub min_timestamp: i64,
}

/// Most candidates a search after damage reads whole and checks (each up to a batch's
/// largest size): a payload full of look-alike headers cannot make it read without end.
const RESUME_CANDIDATE_COUNT_MAX: usize = 16;

/// Whether a valid batch follows `damage` before `end`: a batch that passes every check, its
/// CRC included, starts past the expected offset and is not older than what came before.
/// Where the damaged batch's header looks intact, the position right after it is tried
/// first (with exactly the base offset that header implies), and the search goes on only
/// from there: never inside that batch's own bytes, where a client's payload could hold
/// something that looks like a batch (a torn write of a large batch keeps its header).
/// Otherwise every batch-aligned position after the damage is tried. Damage with no valid
/// batch after it is a torn tail (`None`).
pub async fn find_resume(
    file: &SegmentFile,
    damage: Damage,
    end: u64,
) -> Result<Option<Resume>, IoError> {
    let alignment = BATCH_ALIGNMENT_BYTES as u64;
    let mut position = (damage.position / alignment + 1) * alignment;
    let header = file.read_at(damage.position, BATCH_HEADER_SIZE_BYTES).await?;
    if let Ok((header, _)) = check_header(&header) {
        if header.base_offset.get() == damage.expected_offset {
            let next = damage.position + u64::from(header.batch_length.get());
            let next_offset =
                damage.expected_offset + u64::from(header.last_offset_delta.get()) + 1;
            let exact = Candidates { offsets: next_offset..next_offset + 1, ..damage.into() };
            if next < end {
                if let Some(resume) = exact.valid_batch_at(file, next, end).await? {
                    return Ok(Some(resume));
                }
            }
            position = next.div_ceil(alignment) * alignment;
        }
    }
    let candidates = Candidates::from(damage);
    let mut checked = 0;
    while position + BATCH_HEADER_SIZE_BYTES as u64 <= end && checked < RESUME_CANDIDATE_COUNT_MAX {
        let window = file.read_at(position, RESUME_SEARCH_WINDOW_BYTES).await?;
        let mut at = 0usize;
        while at + BATCH_HEADER_SIZE_BYTES <= window.len() && checked < RESUME_CANDIDATE_COUNT_MAX {
            if candidates.plausible(&window[at..], position + at as u64, end) {
                checked += 1;
                let candidate = position + at as u64;
                if let Some(resume) = candidates.valid_batch_at(file, candidate, end).await? {
                    return Ok(Some(resume));
                }
            }
            at += BATCH_ALIGNMENT_BYTES;
        }
        if window.len() < RESUME_SEARCH_WINDOW_BYTES {
            break;
        }
        position += at as u64;
    }
    Ok(None)
}

/// What a batch after damage must hold to count.
struct Candidates {
    offsets: std::ops::Range<u64>,
    min_timestamp: i64,
}

impl From<Damage> for Candidates {
    fn from(damage: Damage) -> Self {
        let first = damage.expected_offset + 1;
        Self {
            offsets: first..damage.expected_offset.saturating_add(SEGMENT_OFFSET_SPAN_MAX),
            min_timestamp: damage.min_timestamp,
        }
    }
}

impl Candidates {
    /// A cheap look at a header before its batch is read and checked whole.
    fn plausible(&self, bytes: &[u8], position: u64, end: u64) -> bool {
        let Ok((header, _)) = check_header(bytes) else { return false };
        let length = u64::from(header.batch_length.get());
        self.offsets.contains(&header.base_offset.get())
            && header.commit_timestamp.get() >= self.min_timestamp
            && position + length <= end
    }

    /// The batch at `position`, if it is whole inside `end`, passes every check (CRC
    /// included) and is plausible.
    async fn valid_batch_at(
        &self,
        file: &SegmentFile,
        position: u64,
        end: u64,
    ) -> Result<Option<Resume>, IoError> {
        let header = file.read_at(position, BATCH_HEADER_SIZE_BYTES).await?;
        if !self.plausible(&header, position, end) {
            return Ok(None);
        }
        let Ok((header, _)) = check_header(&header) else { return Ok(None) };
        let (length, base_offset) = (header.batch_length.get() as usize, header.base_offset.get());
        let bytes = file.read_exact_at(position, length).await?;
        let valid = LogBatch::parse(&bytes).is_ok_and(|batch| batch.len() == length);
        Ok(valid.then_some(Resume { position, base_offset }))
    }
}

/// A batch found by a scan.
#[derive(Debug)]
pub struct ScannedBatch {
    /// File position of the batch.
    pub position: u64,
    /// Size in bytes.
    pub length: u64,
    /// First offset.
    pub base_offset: u64,
    /// Offset after the batch.
    pub end_offset: u64,
    /// Commit timestamp.
    pub commit_timestamp: i64,
    /// Idempotent writer id, or -1.
    pub writer_id: i64,
    /// The writer's sequence number for this batch, or -1.
    pub batch_sequence: i32,
    /// The batch's bytes, when they were read (whole batch inside the window, or CRC
    /// checked).
    pub bytes: Option<ReadBytes>,
}

/// Why a scan stopped before the end of the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanStop {
    /// Position of the first bad batch.
    pub position: u64,
    /// What was wrong with it.
    pub reason: String,
}

/// One step of a scan.
#[derive(Debug)]
pub enum ScanStep {
    /// A valid batch.
    Batch(ScannedBatch),
    /// The end of the range was reached.
    End,
    /// A batch failed a check.
    Stop(ScanStop),
}

/// Whether a scan checks each batch's CRC (reading every batch whole) or only its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrcCheck {
    /// Read every batch whole and check its CRC: recovery of the active segment.
    Verify,
    /// Check headers only; whoever uses a batch's bytes checks them.
    Skip,
}

/// A forward scan over `[position, end)` of a segment file.
#[derive(Debug)]
pub struct SegmentScanner<'a> {
    file: &'a SegmentFile,
    position: u64,
    end: u64,
    expected_offset: Option<u64>,
    crc_check: CrcCheck,
    window_size_bytes: usize,
    window: Option<(u64, ReadBytes)>,
}

impl<'a> SegmentScanner<'a> {
    /// Scans from `position` (a batch boundary) to `end`. `expected_offset` is the base
    /// offset the first batch must have, if known.
    pub fn new(
        file: &'a SegmentFile,
        position: u64,
        end: u64,
        expected_offset: Option<u64>,
        crc_check: CrcCheck,
        window_size_bytes: usize,
    ) -> Self {
        assert!(window_size_bytes >= BATCH_HEADER_SIZE_BYTES);
        assert!(position <= end, "a scan starts inside its range");
        Self { file, position, end, expected_offset, crc_check, window_size_bytes, window: None }
    }

    /// The file scanned.
    pub fn file(&self) -> &'a SegmentFile {
        self.file
    }

    /// Sets how many bytes the next read of the file fetches (a batch larger than that is
    /// still read whole).
    pub fn set_window_size(&mut self, window_size_bytes: usize) {
        assert!(window_size_bytes >= BATCH_HEADER_SIZE_BYTES);
        self.window_size_bytes = window_size_bytes;
    }

    /// The bytes already in memory from `position` to the end of the last read, if any.
    pub fn window_from(&self, position: u64) -> Option<ReadBytes> {
        let (start, bytes) = self.window.as_ref()?;
        let offset = position.checked_sub(*start)? as usize;
        let length = bytes.len().checked_sub(offset)?;
        ReadBytes::slice(bytes, offset, length)
    }

    /// Position of the next batch.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next batch, or why there is none.
    pub async fn next(&mut self) -> Result<ScanStep, IoError> {
        if self.position >= self.end {
            return Ok(ScanStep::End);
        }
        let stop = |position, reason: String| Ok(ScanStep::Stop(ScanStop { position, reason }));
        let position = self.position;
        let available = self.bytes_at(position, BATCH_HEADER_SIZE_BYTES).await?;
        if available.len() < BATCH_HEADER_SIZE_BYTES {
            return stop(position, "the file ends inside a batch header".into());
        }
        let (header, _) = match check_header(&available) {
            Ok(checked) => checked,
            Err(error) => return stop(position, error.to_string()),
        };
        let length = u64::from(header.batch_length.get());
        let base_offset = header.base_offset.get();
        let end_offset = base_offset + u64::from(header.last_offset_delta.get()) + 1;
        let commit_timestamp = header.commit_timestamp.get();
        let writer_id = header.writer_id.get();
        let batch_sequence = header.batch_sequence.get();
        if position + length > self.end {
            return stop(
                position,
                format!("batch of {length} bytes runs past the end at {}", self.end),
            );
        }
        if let Some(expected) = self.expected_offset {
            if base_offset != expected {
                return stop(
                    position,
                    format!("batch has base offset {base_offset}, expected {expected}"),
                );
            }
        }
        let bytes = if self.crc_check == CrcCheck::Verify {
            let bytes = self.whole_batch(position, length).await?;
            if let Err(error) = LogBatch::parse(&bytes) {
                return stop(position, error.to_string());
            }
            Some(bytes)
        } else {
            self.window_slice(position, length)
        };
        self.position = position + length;
        self.expected_offset = Some(end_offset);
        Ok(ScanStep::Batch(ScannedBatch {
            position,
            length,
            base_offset,
            end_offset,
            commit_timestamp,
            writer_id,
            batch_sequence,
            bytes,
        }))
    }

    /// At least `min` bytes at `position` if the file has them (fewer at its end).
    async fn bytes_at(&mut self, position: u64, min: usize) -> Result<ReadBytes, IoError> {
        if let Some(slice) = self.window_slice(position, min as u64) {
            return Ok(slice);
        }
        let len = (self.end - position).min(self.window_size_bytes as u64) as usize;
        let bytes = self.file.read_at(position, len.max(min)).await?;
        self.window = Some((position, bytes.clone()));
        Ok(bytes)
    }

    /// The whole batch at `position`, from the window or read on its own.
    async fn whole_batch(&mut self, position: u64, length: u64) -> Result<ReadBytes, IoError> {
        if let Some(slice) = self.window_slice(position, length) {
            return Ok(slice);
        }
        if length <= self.window_size_bytes as u64 {
            // Refill the window from here so the following batches come with it.
            self.window = None;
            let bytes = self.bytes_at(position, length as usize).await?;
            return Ok(ReadBytes::slice(&bytes, 0, length as usize).unwrap_or(bytes));
        }
        self.file.read_exact_at(position, length as usize).await
    }

    fn window_slice(&self, position: u64, length: u64) -> Option<ReadBytes> {
        let (start, bytes) = self.window.as_ref()?;
        let offset = position.checked_sub(*start)?;
        if offset + length > bytes.len() as u64 {
            return None;
        }
        ReadBytes::slice(bytes, offset as usize, length as usize)
    }
}
