//! Opening a bucket's log after a clean stop or a crash.
//!
//! The last segment is the active one and is always scanned, every batch checked (length,
//! magic, offsets, CRC). Damage with no valid batch after it is where a crash tore the tail
//! (bytes after the last fdatasync): the file is cut there. Damage followed by valid batches
//! is corruption of bytes that may have been acknowledged: nothing is cut; the damaged
//! offsets are kept as a [`damage::DamagedRange`], the scan goes on after them, and the segment is
//! sealed where it ends (index, writers' snapshot and `.damaged` file written) so that
//! appends go on in a new segment and later starts report the range. Its index files, if a
//! crash left any, are stale and removed. Every other segment is sealed: it was synced and
//! indexed before the next one was created, so it is trusted through its index files (and
//! its `.damaged` file); if they are missing, damaged or disagree with the file, the index is
//! rebuilt from the batch headers, going on after damaged headers the same way (a damaged
//! body then surfaces as a typed corruption error when read, not here). Offsets must
//! continue from segment to segment; a gap left by a damaged sealed segment makes reads
//! there fail with a corruption error; overlapping segments cannot be opened.
//!
//! A power cut can persist a later block of an unsynced tail without an earlier one; such a
//! tail looks like damage followed by a valid batch and is kept as a damaged range of
//! offsets that were never acknowledged — reported, never lost: telling it apart from bit rot
//! would need the durable point of every fdatasync on disk.
//!
//! Invariants (asserted): a sealed segment read whole — trusted through its index, or
//! scanned to its end — is followed by a segment starting at its end offset (this code
//! names every new segment after the end of the one it sealed, and retention deletes only
//! the oldest), so only a damaged segment leaves a gap; the newest commit timestamp of each
//! segment is at or after the previous segment's.

use std::rc::Rc;

use ufer_io::{file_name, parse_file_name, DataDir, FileKind, IoError, SegmentFile};

use crate::log::config::LogConfig;
use crate::log::damage;
use crate::log::error::OpenError;
use crate::log::index::SegmentIndex;
use crate::log::scan::{find_resume, CrcCheck, Damage, ScanStep, ScannedBatch, SegmentScanner};
use crate::log::segment::{ActiveSegment, Segment, SEGMENT_OFFSET_SPAN_MAX};
use crate::log::state::State;
use crate::log::writers::{StoredBatch, WriterTable};

/// A file a log leaves in its directory when an fdatasync of its segment failed: the
/// active segment's bytes may be shown by the kernel without being on the device (Linux
/// gives up the blocks of a failed sync, and a later sync succeeds without them), so the
/// next open writes them again before it trusts them, then removes the file.
pub const SYNC_FAILED_FILE_NAME: &str = "sync-failed";

/// Window for recovery scans.
const RECOVERY_WINDOW_SIZE_BYTES: usize = 1024 * 1024;

/// Rebuilds the tablet's state from the files in `dir`.
pub(crate) async fn recover(dir: &DataDir, config: &LogConfig) -> Result<State, OpenError> {
    let mut bases = Vec::new();
    let mut other_files = Vec::new();
    for name in dir.list()? {
        match parse_file_name(&name) {
            Some((base, FileKind::Segment)) => bases.push(base),
            Some((base, kind)) => other_files.push((base, kind, name)),
            None => {}
        }
    }
    bases.sort_unstable();
    let active_base = bases.last().copied();
    let newest_sealed = bases.len().checked_sub(2).map(|index| bases[index]);
    for (base, kind, name) in other_files {
        // Files of a segment that is gone, or of the active segment, are stale; so are
        // writer snapshots older than the newest sealed segment's.
        let stale = bases.binary_search(&base).is_err()
            || Some(base) == active_base
            || (kind == FileKind::WriterSnapshot && Some(base) != newest_sealed);
        if stale {
            dir.remove(&name).await?;
        }
    }
    let Some(active_base) = active_base else {
        let writer =
            Rc::new(dir.create_writer(&file_name(0, FileKind::Segment), config.writer).await?);
        let segment = Segment::empty(0, Some(writer.reader()));
        let active = ActiveSegment { segment, writer };
        return Ok(State::new(Vec::new(), active, i64::MIN, WriterTable::default()));
    };

    let mut sealed: Vec<Segment> = Vec::new();
    let mut previous_whole = false;
    for &base in &bases[..bases.len() - 1] {
        let OpenedSealed { segment, whole } = open_sealed(dir, base, config).await?;
        check_continuity(dir, sealed.last(), &segment)?;
        assert_follows(sealed.last(), previous_whole, &segment);
        previous_whole = whole;
        sealed.push(segment);
    }
    let mut writers = match newest_sealed {
        Some(base) => match dir.read_file(&file_name(base, FileKind::WriterSnapshot)).await? {
            Some(bytes) => match WriterTable::decode(&bytes) {
                Some(writers) => writers,
                None => rebuild_writers(dir, &sealed).await?,
            },
            None => rebuild_writers(dir, &sealed).await?,
        },
        None => WriterTable::default(),
    };
    let sync_failed = dir.read_file(SYNC_FAILED_FILE_NAME).await?.is_some();
    let (damaged_active, active) =
        recover_active(dir, active_base, config, &mut writers, sync_failed).await?;
    if sync_failed {
        // The active segment is durable as read now (rewritten, then synced).
        dir.remove(SYNC_FAILED_FILE_NAME).await?;
        dir.sync().await?;
    }
    if let Some(segment) = damaged_active {
        check_continuity(dir, sealed.last(), &segment)?;
        assert_follows(sealed.last(), previous_whole, &segment);
        previous_whole = true;
        sealed.push(segment);
    }
    check_continuity(dir, sealed.last(), &active.segment)?;
    assert_follows(sealed.last(), previous_whole, &active.segment);
    let last_commit_timestamp = sealed
        .iter()
        .map(|segment| segment.max_timestamp)
        .chain([active.segment.max_timestamp])
        .max()
        .unwrap_or(i64::MIN);
    Ok(State::new(sealed, active, last_commit_timestamp, writers))
}

/// The writers' state from the batch headers of every sealed segment, when the snapshot is
/// missing or damaged.
async fn rebuild_writers(dir: &DataDir, sealed: &[Segment]) -> Result<WriterTable, OpenError> {
    let mut writers = WriterTable::default();
    for segment in sealed {
        let file = dir.open_reader(&file_name(segment.base_offset, FileKind::Segment)).await?;
        let mut scanner = SegmentScanner::new(
            &file,
            0,
            segment.size,
            Some(segment.base_offset),
            CrcCheck::Skip,
            RECOVERY_WINDOW_SIZE_BYTES,
        );
        let scanned = loop {
            match scanner.next().await {
                Ok(ScanStep::Batch(batch)) => record_writer(&mut writers, &batch),
                Ok(ScanStep::End | ScanStep::Stop(_)) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        file.close().await?;
        scanned?;
    }
    Ok(writers)
}

fn record_writer(writers: &mut WriterTable, batch: &ScannedBatch) {
    if batch.writer_id >= 0 {
        let stored = StoredBatch {
            sequence: batch.batch_sequence,
            base_offset: batch.base_offset,
            last_offset: batch.end_offset - 1,
            commit_timestamp: batch.commit_timestamp,
        };
        writers.record(batch.writer_id, stored);
    }
}

fn check_continuity(
    dir: &DataDir,
    previous: Option<&Segment>,
    next: &Segment,
) -> Result<(), OpenError> {
    match previous {
        Some(previous) if next.base_offset < previous.end_offset => Err(OpenError::Corrupt {
            path: dir.path().to_path_buf(),
            reason: format!(
                "segment {} starts inside segment {} (which ends at offset {})",
                next.base_offset, previous.base_offset, previous.end_offset
            ),
        }),
        _ => Ok(()),
    }
}

/// Asserts what a segment that follows `previous` must hold, when `previous` was read whole
/// (`previous_whole`): it starts where `previous` ends, and its commit timestamps are not
/// older than `previous`'s newest. The pair of `check_continuity`, which refuses overlaps.
fn assert_follows(previous: Option<&Segment>, previous_whole: bool, next: &Segment) {
    let Some(previous) = previous else { return };
    if previous_whole {
        assert_eq!(
            previous.end_offset, next.base_offset,
            "segment {} was read whole, so the next one starts at its end (offsets are dense)",
            previous.base_offset
        );
    }
    // An empty segment (all of it damaged) has no timestamps.
    if previous.size > 0 && next.size > 0 {
        assert!(
            next.max_timestamp >= previous.max_timestamp,
            "commit timestamps never decrease: segment {} ends at {}, segment {} at {}",
            previous.base_offset,
            previous.max_timestamp,
            next.base_offset,
            next.max_timestamp
        );
    }
}

/// A sealed segment as recovery opened it.
struct OpenedSealed {
    segment: Segment,
    /// Whether it was read to the end of its file (through its index or a clean scan),
    /// rather than cut short at a damaged batch.
    whole: bool,
}

/// A sealed segment, trusted through its index or re-indexed from its headers.
async fn open_sealed(
    dir: &DataDir,
    base: u64,
    config: &LogConfig,
) -> Result<OpenedSealed, OpenError> {
    let name = file_name(base, FileKind::Segment);
    let path = dir.file_path(&name);
    let file_size =
        std::fs::metadata(&path).map_err(|error| IoError::from_io("sizing", &path, error))?.len();
    let offsets = dir.read_file(&file_name(base, FileKind::OffsetIndex)).await?;
    let times = dir.read_file(&file_name(base, FileKind::TimeIndex)).await?;
    if let (Some(offsets), Some(times)) = (offsets, times) {
        if let Ok((index, summary)) = SegmentIndex::decode(base, &offsets, &times) {
            if summary.size == file_size {
                let damaged = match dir.read_file(&file_name(base, FileKind::Damage)).await? {
                    Some(bytes) => damage::decode(base, &bytes),
                    None => Some(Vec::new()),
                };
                // A damaged `.damaged` file: scan the segment again to find the ranges.
                if let Some(damaged) = damaged {
                    let segment = Segment {
                        base_offset: base,
                        end_offset: summary.end_offset,
                        size: summary.size,
                        first_timestamp: None,
                        max_timestamp: summary.max_timestamp,
                        index,
                        file: None,
                        damaged,
                    };
                    return Ok(OpenedSealed { segment, whole: true });
                }
            }
        }
    }
    let file = dir.open_reader(&name).await?;
    let scanned = scan_segment(&file, base, file_size, SegmentRole::Sealed, config).await;
    file.close().await?;
    let (segment, clean) = scanned?;
    if clean {
        write_sealed_files(dir, &segment).await?;
    }
    Ok(OpenedSealed { segment, whole: clean })
}

/// Writes what a sealed segment is trusted through at the next start: its `.damaged` file
/// (when it has damaged ranges) first, then its index files.
async fn write_sealed_files(dir: &DataDir, segment: &Segment) -> Result<(), IoError> {
    let base = segment.base_offset;
    if !segment.damaged.is_empty() {
        dir.replace_file(&file_name(base, FileKind::Damage), &damage::encode(&segment.damaged))
            .await?;
    }
    let summary = segment.summary();
    dir.replace_file(
        &file_name(base, FileKind::OffsetIndex),
        &segment.index.encode_offsets(&summary),
    )
    .await?;
    dir.replace_file(&file_name(base, FileKind::TimeIndex), &segment.index.encode_times(&summary))
        .await?;
    Ok(())
}

/// The active segment: every batch checked, the file cut after the last good one. One with
/// damaged ranges is sealed there (returned first) and appends go on in a new segment.
async fn recover_active(
    dir: &DataDir,
    base: u64,
    config: &LogConfig,
    writers: &mut WriterTable,
    sync_failed: bool,
) -> Result<(Option<Segment>, ActiveSegment), OpenError> {
    let name = file_name(base, FileKind::Segment);
    let file = dir.open_reader(&name).await?;
    let file_size = file.size().await?;
    let role = SegmentRole::Active(writers);
    let scanned = scan_segment(&file, base, file_size, role, config).await;
    file.close().await?;
    let (mut segment, _) = scanned?;
    if sync_failed {
        // What was read is what is kept: make it what the device holds.
        dir.rewrite(&name, segment.size).await?;
    }
    let writer = Rc::new(dir.open_writer(&name, segment.size, config.writer).await?);
    if segment.damaged.is_empty() {
        segment.file = Some(writer.reader());
        return Ok((None, ActiveSegment { segment, writer }));
    }
    for range in &segment.damaged {
        eprintln!(
            "ufer: {}: offsets {}..{} are damaged (bytes {}..{}) and followed by valid \
             batches: kept, reported, and failing reads until repaired",
            dir.file_path(&name).display(),
            range.offsets.start,
            range.offsets.end,
            range.positions.start,
            range.positions.end
        );
    }
    // Sealed where it ends: the cut torn tail (if any) durable first, then what the next
    // start trusts it through, then the next segment.
    writer.seal().await?;
    write_sealed_files(dir, &segment).await?;
    dir.replace_file(&file_name(base, FileKind::WriterSnapshot), &writers.encode()).await?;
    let next_base = segment.end_offset;
    let next =
        Rc::new(dir.create_writer(&file_name(next_base, FileKind::Segment), config.writer).await?);
    dir.sync().await?;
    let active =
        ActiveSegment { segment: Segment::empty(next_base, Some(next.reader())), writer: next };
    Ok((Some(segment), active))
}

/// Which segment a recovery scan reads, and so what it checks and notes.
enum SegmentRole<'a> {
    /// A sealed segment being re-indexed: headers only (a damaged body is found when read).
    Sealed,
    /// The active segment: every batch's CRC checked (a crash may have torn it), and each
    /// idempotent writer's batches noted in the table.
    Active(&'a mut WriterTable),
}

/// Scans a segment from its start; returns what it holds up to the first bad batch, and
/// whether the scan reached the end of the file.
async fn scan_segment(
    file: &SegmentFile,
    base: u64,
    file_size: u64,
    mut role: SegmentRole<'_>,
    config: &LogConfig,
) -> Result<(Segment, bool), IoError> {
    let mut segment = Segment::empty(base, None);
    let crc_check = match role {
        SegmentRole::Sealed => CrcCheck::Skip,
        SegmentRole::Active(_) => CrcCheck::Verify,
    };
    let mut scanner =
        SegmentScanner::new(file, 0, file_size, Some(base), crc_check, RECOVERY_WINDOW_SIZE_BYTES);
    let clean = loop {
        let step = scanner.next().await?;
        if let ScanStep::Stop(stop) = &step {
            // Valid batches after the damage make it corruption: keep it and go on after it.
            let damage = Damage {
                position: stop.position,
                expected_offset: segment.end_offset,
                min_timestamp: segment.max_timestamp,
            };
            match find_resume(file, damage, file_size).await? {
                Some(resume) if resume.base_offset - base <= SEGMENT_OFFSET_SPAN_MAX => {
                    segment.skip_damage(resume.position, resume.base_offset);
                    scanner = SegmentScanner::new(
                        file,
                        resume.position,
                        file_size,
                        Some(resume.base_offset),
                        crc_check,
                        RECOVERY_WINDOW_SIZE_BYTES,
                    );
                    continue;
                }
                _ => break false,
            }
        }
        match step {
            // A segment never spans more offsets than its index can address: past that, the
            // file is not one this code wrote.
            ScanStep::Batch(batch) if batch.end_offset - base > SEGMENT_OFFSET_SPAN_MAX => {
                break false
            }
            ScanStep::Batch(batch) => {
                segment.observe_batch(
                    batch.position,
                    batch.length,
                    batch.base_offset,
                    batch.end_offset,
                    batch.commit_timestamp,
                    config.index_interval_bytes,
                );
                if let SegmentRole::Active(writers) = &mut role {
                    record_writer(writers, &batch);
                }
            }
            ScanStep::End => break true,
            ScanStep::Stop(_) => break false,
        }
    };
    Ok((segment, clean))
}
