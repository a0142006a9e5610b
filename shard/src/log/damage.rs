//! [`DamagedRange`]: offsets of a segment whose bytes are damaged but are followed by valid
//! batches — corruption, not a torn tail, so recovery keeps them (never truncates acknowledged
//! batches away), reads of those offsets fail with a corruption error that says where reading
//! resumes, and `describe` and the metrics report them until a replica repairs them.
//!
//! A sealed segment's ranges are kept in its `.damaged` file (`docs/format.md` §5.6), written
//! when recovery finds them, so later starts, which trust the segment through its index,
//! still report them: `u32` count, then per range `u64` first offset, `u64` end offset,
//! `u64` first position, `u64` end position, then a CRC-32C of everything before it.
//!
//! Invariants (asserted when encoding): ranges are non-empty, in order and do not overlap,
//! in offsets and in positions.

use std::ops::Range;

/// Most ranges a segment's file lists (past it, the segment is not one worth keeping apart).
pub const DAMAGED_RANGE_COUNT_MAX: usize = 4096;

/// Bytes of one encoded range.
const RANGE_SIZE_BYTES: usize = 32;

/// Offsets of a segment that are damaged on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedRange {
    /// The segment's base offset (its file name).
    pub segment_base: u64,
    /// The offsets reads cannot return; reading resumes at `offsets.end`.
    pub offsets: Range<u64>,
    /// Where the damaged bytes are in the segment's file.
    pub positions: Range<u64>,
}

/// Encodes the ranges of one segment for its `.damaged` file.
pub fn encode(ranges: &[DamagedRange]) -> Vec<u8> {
    assert!(ranges.len() <= DAMAGED_RANGE_COUNT_MAX, "at most {DAMAGED_RANGE_COUNT_MAX} ranges");
    for pair in ranges.windows(2) {
        assert!(
            pair[0].offsets.end <= pair[1].offsets.start
                && pair[0].positions.end <= pair[1].positions.start,
            "damaged ranges are in order and do not overlap: {pair:?}"
        );
    }
    let mut out = Vec::with_capacity(4 + ranges.len() * RANGE_SIZE_BYTES + 4);
    out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
    for range in ranges {
        assert!(!range.offsets.is_empty() && !range.positions.is_empty(), "{range:?} is empty");
        for value in
            [range.offsets.start, range.offsets.end, range.positions.start, range.positions.end]
        {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes the `.damaged` file of the segment at `segment_base`; `None` if it is damaged
/// itself in any way.
pub fn decode(segment_base: u64, bytes: &[u8]) -> Option<Vec<DamagedRange>> {
    let (body, crc) = bytes.split_last_chunk::<4>()?;
    if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (count, rest) = body.split_first_chunk::<4>()?;
    let count = u32::from_le_bytes(*count) as usize;
    if count > DAMAGED_RANGE_COUNT_MAX || rest.len() != count * RANGE_SIZE_BYTES {
        return None;
    }
    let mut ranges: Vec<DamagedRange> = Vec::with_capacity(count);
    for chunk in rest.chunks_exact(RANGE_SIZE_BYTES) {
        let value = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&chunk[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let range = DamagedRange {
            segment_base,
            offsets: value(0)..value(8),
            positions: value(16)..value(24),
        };
        let after_previous = ranges.last().is_none_or(|previous| {
            previous.offsets.end <= range.offsets.start
                && previous.positions.end <= range.positions.start
        });
        if range.offsets.is_empty() || range.positions.is_empty() || !after_previous {
            return None;
        }
        ranges.push(range);
    }
    Some(ranges)
}

/// The range of `ranges` that holds `offset`, if any.
pub fn containing(ranges: &[DamagedRange], offset: u64) -> Option<&DamagedRange> {
    ranges.iter().find(|range| range.offsets.contains(&offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(offsets: Range<u64>, positions: Range<u64>) -> DamagedRange {
        DamagedRange { segment_base: 100, offsets, positions }
    }

    #[test]
    fn ranges_round_trip_and_damage_is_refused() {
        let ranges = vec![range(104..110, 4096..8192), range(200..201, 20_480..20_544)];
        let bytes = encode(&ranges);
        assert_eq!(bytes.len(), 4 + 2 * RANGE_SIZE_BYTES + 4);
        assert_eq!(decode(100, &bytes), Some(ranges.clone()));
        assert_eq!(decode(100, &encode(&[])), Some(Vec::new()));
        for cut in 0..bytes.len() {
            assert_eq!(decode(100, &bytes[..cut]), None, "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            assert_eq!(decode(100, &flipped), None, "flipped byte {at}");
        }
        assert_eq!(containing(&ranges, 105), Some(&ranges[0]));
        assert_eq!(containing(&ranges, 110), None);
    }

    #[test]
    #[should_panic(expected = "in order")]
    fn overlapping_ranges_are_a_bug() {
        encode(&[range(104..110, 4096..8192), range(109..111, 8192..8256)]);
    }
}
