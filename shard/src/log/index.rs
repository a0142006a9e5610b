//! The sparse indexes of a segment and their files.
//!
//! Every `index_interval_bytes` of log, the batch that starts there gets an offset entry
//! (relative offset → file position) and a time entry (commit timestamp → relative offset).
//! Commit timestamps never decrease within a bucket, so both lists are sorted and a lookup
//! is a binary search followed by a short scan of batch headers.
//!
//! On disk (written when a segment is sealed, `docs/format.md`): a 48-byte header — magic,
//! version, entry size, base offset, end offset, segment size, max timestamp, entry count,
//! CRC-32C of the header's first 44 bytes and the entries — then the entries. The header
//! doubles as the sealed segment's summary, so recovery trusts a sealed segment by reading
//! only its index.

use core::mem::size_of;

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Magic of an offset index file.
pub const OFFSET_INDEX_MAGIC: [u8; 4] = *b"UFOI";
/// Magic of a time index file.
pub const TIME_INDEX_MAGIC: [u8; 4] = *b"UFTI";
/// Version of both index file formats.
pub const INDEX_FORMAT_VERSION: u16 = 1;

/// Header of an index file.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct IndexHeader {
    /// [`OFFSET_INDEX_MAGIC`] or [`TIME_INDEX_MAGIC`].
    pub magic: [u8; 4],
    /// [`INDEX_FORMAT_VERSION`].
    pub version: U16,
    /// Bytes per entry.
    pub entry_size: U16,
    /// The segment's base offset.
    pub base_offset: U64,
    /// The offset after the segment's last batch.
    pub end_offset: U64,
    /// The sealed segment's size in bytes.
    pub segment_size: U64,
    /// Commit timestamp of the segment's last batch (`i64::MIN` if empty).
    pub max_timestamp: I64,
    /// Entries after the header.
    pub entry_count: U32,
    /// CRC-32C of the header up to this field and of the entries.
    pub crc: U32,
}

/// An offset index entry: the batch with base offset `base + relative_offset` starts at
/// `position` in the segment.
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct OffsetEntry {
    /// Base offset of the batch, relative to the segment's base offset.
    pub relative_offset: U32,
    /// File position of the batch.
    pub position: U32,
}

/// A time index entry: the batch with base offset `base + relative_offset` was committed at
/// `timestamp`.
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct TimeEntry {
    /// Commit timestamp of the batch, milliseconds since the Unix epoch.
    pub timestamp: I64,
    /// Base offset of the batch, relative to the segment's base offset.
    pub relative_offset: U32,
}

const _: () = assert!(size_of::<IndexHeader>() == 48);
const _: () = assert!(size_of::<OffsetEntry>() == 8);
const _: () = assert!(size_of::<TimeEntry>() == 12);
const HEADER_CRC_AT: usize = 44;
const _: () = assert!(core::mem::offset_of!(IndexHeader, crc) == HEADER_CRC_AT);

/// What a sealed segment holds, as its index header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// First offset.
    pub base_offset: u64,
    /// Offset after the last batch.
    pub end_offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Commit timestamp of the last batch, `i64::MIN` if empty.
    pub max_timestamp: i64,
}

/// The sparse offset and time indexes of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    /// Position of the last indexed batch, to space entries.
    last_indexed_position: Option<u64>,
}

impl SegmentIndex {
    /// Notes a batch at `position` with base offset `base_offset + relative_offset`
    /// committed at `timestamp`; adds entries if it is `interval_bytes` past the last.
    pub fn observe(
        &mut self,
        relative_offset: u32,
        position: u32,
        timestamp: i64,
        interval_bytes: u64,
    ) {
        let due = self
            .last_indexed_position
            .is_none_or(|last| u64::from(position) >= last + interval_bytes);
        if !due {
            return;
        }
        if let Some(last) = self.offsets.last() {
            assert!(last.relative_offset.get() < relative_offset && last.position.get() < position);
        }
        if let Some(last) = self.times.last() {
            assert!(last.timestamp.get() <= timestamp, "commit timestamps never decrease");
        }
        self.offsets.push(OffsetEntry {
            relative_offset: relative_offset.into(),
            position: position.into(),
        });
        self.times.push(TimeEntry {
            timestamp: timestamp.into(),
            relative_offset: relative_offset.into(),
        });
        self.last_indexed_position = Some(u64::from(position));
    }

    /// Makes the next observed batch an entry whatever its distance from the last one (the
    /// first batch after damaged bytes: reads of its offsets must not start before them).
    pub fn force_next_entry(&mut self) {
        self.last_indexed_position = None;
    }

    /// Forgets entries at or past `position` (after a rollback of unsynced appends).
    pub fn truncate_from(&mut self, position: u64) {
        let keep = self.offsets.partition_point(|entry| u64::from(entry.position.get()) < position);
        self.offsets.truncate(keep);
        self.times.truncate(keep);
        self.last_indexed_position =
            self.offsets.last().map(|entry| u64::from(entry.position.get()));
    }

    /// The position of the last indexed batch whose base offset is at most
    /// `relative_offset` (0 if none): where a scan for that offset starts.
    pub fn position_for(&self, relative_offset: u32) -> u64 {
        let after =
            self.offsets.partition_point(|entry| entry.relative_offset.get() <= relative_offset);
        after.checked_sub(1).map_or(0, |index| u64::from(self.offsets[index].position.get()))
    }

    /// Positions of indexed batches in `(after, up_to]`, ascending: known batch starts, so a
    /// read that ends at one of them holds only whole batches.
    pub fn positions_between(&self, after: u64, up_to: u64) -> Vec<u64> {
        let first = self.offsets.partition_point(|entry| u64::from(entry.position.get()) <= after);
        self.offsets[first..]
            .iter()
            .map(|entry| u64::from(entry.position.get()))
            .take_while(|position| *position <= up_to)
            .collect()
    }

    /// The relative offset of the last indexed batch committed before `timestamp` (0 if
    /// none): where a scan for the first batch at or after `timestamp` starts.
    pub fn offset_before_time(&self, timestamp: i64) -> u32 {
        let after = self.times.partition_point(|entry| entry.timestamp.get() < timestamp);
        after.checked_sub(1).map_or(0, |index| self.times[index].relative_offset.get())
    }

    /// Entries in each list.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Encodes the offset index file.
    pub fn encode_offsets(&self, summary: &SegmentSummary) -> Vec<u8> {
        encode(
            OFFSET_INDEX_MAGIC,
            summary,
            self.offsets.as_bytes(),
            self.offsets.len(),
            size_of::<OffsetEntry>(),
        )
    }

    /// Encodes the time index file.
    pub fn encode_times(&self, summary: &SegmentSummary) -> Vec<u8> {
        encode(
            TIME_INDEX_MAGIC,
            summary,
            self.times.as_bytes(),
            self.times.len(),
            size_of::<TimeEntry>(),
        )
    }

    /// Decodes both files of a segment with base offset `base_offset`. Any inconsistency
    /// (CRC, magic, sizes, order, the two disagreeing) is an error: the caller rebuilds.
    pub fn decode(
        base_offset: u64,
        offsets: &[u8],
        times: &[u8],
    ) -> Result<(Self, SegmentSummary), String> {
        let (offset_header, offset_entries) =
            decode_file(OFFSET_INDEX_MAGIC, offsets, size_of::<OffsetEntry>())?;
        let (time_header, time_entries) =
            decode_file(TIME_INDEX_MAGIC, times, size_of::<TimeEntry>())?;
        let summary = SegmentSummary {
            base_offset: offset_header.base_offset.get(),
            end_offset: offset_header.end_offset.get(),
            size: offset_header.segment_size.get(),
            max_timestamp: offset_header.max_timestamp.get(),
        };
        let time_summary = SegmentSummary {
            base_offset: time_header.base_offset.get(),
            end_offset: time_header.end_offset.get(),
            size: time_header.segment_size.get(),
            max_timestamp: time_header.max_timestamp.get(),
        };
        if summary != time_summary || summary.base_offset != base_offset {
            return Err("offset and time index disagree about the segment".into());
        }
        if summary.end_offset < summary.base_offset
            || summary.end_offset - summary.base_offset > u64::from(u32::MAX)
        {
            return Err(format!("end offset {} does not fit the segment", summary.end_offset));
        }
        let offsets = <[OffsetEntry]>::ref_from_bytes(offset_entries)
            .map_err(|_| "offset entries misshapen")?
            .to_vec();
        let times = <[TimeEntry]>::ref_from_bytes(time_entries)
            .map_err(|_| "time entries misshapen")?
            .to_vec();
        if offsets.len() != times.len() {
            return Err("offset and time index have different entry counts".into());
        }
        for (index, (offset, time)) in offsets.iter().zip(&times).enumerate() {
            let ordered = index == 0 || {
                let previous = &offsets[index - 1];
                previous.relative_offset.get() < offset.relative_offset.get()
                    && previous.position.get() < offset.position.get()
                    && times[index - 1].timestamp.get() <= time.timestamp.get()
            };
            let inside = u64::from(offset.position.get()) < summary.size
                && summary.base_offset + u64::from(offset.relative_offset.get())
                    < summary.end_offset;
            if !ordered || !inside || offset.relative_offset != time.relative_offset {
                return Err(format!("index entry {index} is out of order or out of the segment"));
            }
        }
        let last_indexed_position = offsets.last().map(|entry| u64::from(entry.position.get()));
        Ok((Self { offsets, times, last_indexed_position }, summary))
    }
}

fn encode(
    magic: [u8; 4],
    summary: &SegmentSummary,
    entries: &[u8],
    count: usize,
    entry_size: usize,
) -> Vec<u8> {
    let header = IndexHeader {
        magic,
        version: INDEX_FORMAT_VERSION.into(),
        entry_size: (entry_size as u16).into(),
        base_offset: summary.base_offset.into(),
        end_offset: summary.end_offset.into(),
        segment_size: summary.size.into(),
        max_timestamp: summary.max_timestamp.into(),
        entry_count: (count as u32).into(),
        crc: 0.into(),
    };
    let mut out = Vec::with_capacity(size_of::<IndexHeader>() + entries.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(entries);
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&out[..HEADER_CRC_AT]),
        &out[size_of::<IndexHeader>()..],
    );
    out[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_file(
    magic: [u8; 4],
    bytes: &[u8],
    entry_size: usize,
) -> Result<(IndexHeader, &[u8]), String> {
    let (header, entries) = IndexHeader::read_from_prefix(bytes)
        .map_err(|_| format!("{} bytes is too short for a header", bytes.len()))?;
    if header.magic != magic || header.version.get() != INDEX_FORMAT_VERSION {
        return Err("bad magic or version".into());
    }
    if usize::from(header.entry_size.get()) != entry_size
        || entries.len() != header.entry_count.get() as usize * entry_size
    {
        return Err("entry size or count does not match the file".into());
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..HEADER_CRC_AT]), entries);
    if crc != header.crc.get() {
        return Err(format!(
            "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
            header.crc.get()
        ));
    }
    Ok((header, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SegmentIndex, SegmentSummary) {
        let mut index = SegmentIndex::default();
        for batch in 0..50u32 {
            index.observe(batch * 10, batch * 300, 1_000 + i64::from(batch / 3), 1000);
        }
        let summary = SegmentSummary {
            base_offset: 500,
            end_offset: 1000,
            size: 15_000,
            max_timestamp: 1_016,
        };
        (index, summary)
    }

    #[test]
    fn entries_are_sparse_and_lookups_find_the_scan_start() {
        let (index, _) = sample();
        // One entry per 1000 bytes of 300-byte batches: every fourth batch.
        assert_eq!(index.len(), 13);
        assert_eq!(index.position_for(0), 0);
        assert_eq!(index.position_for(39), 0);
        assert_eq!(index.position_for(40), 1200);
        assert_eq!(index.position_for(u32::MAX), 48 * 300);
        assert_eq!(index.offset_before_time(1_000), 0);
        assert_eq!(index.offset_before_time(1_002), 40);
    }

    #[test]
    fn files_round_trip_and_any_damage_is_refused() {
        let (index, summary) = sample();
        let offsets = index.encode_offsets(&summary);
        let times = index.encode_times(&summary);
        let (decoded, decoded_summary) = SegmentIndex::decode(500, &offsets, &times).unwrap();
        assert_eq!(decoded, index);
        assert_eq!(decoded_summary, summary);
        for at in 0..offsets.len() {
            let mut damaged = offsets.clone();
            damaged[at] ^= 0x10;
            assert!(SegmentIndex::decode(500, &damaged, &times).is_err(), "flip at {at}");
        }
        assert!(SegmentIndex::decode(500, &offsets[..offsets.len() - 1], &times).is_err());
        assert!(SegmentIndex::decode(501, &offsets, &times).is_err());
        assert!(SegmentIndex::decode(500, &times, &offsets).is_err());
        assert!(SegmentIndex::decode(500, b"garbage", &times).is_err());
    }

    #[test]
    fn truncation_forgets_entries_at_and_after_the_position() {
        let (mut index, _) = sample();
        index.truncate_from(1200);
        assert_eq!(index.len(), 1);
        index.observe(40, 1200, 1_013, 1000);
        assert_eq!(index.len(), 2);
    }
}
