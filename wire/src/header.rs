//! The fixed 56-byte little-endian header that opens every `LogBatch`.
//!
//! The header is read in place (`zerocopy`): checking a batch copies nothing (a decoded batch
//! keeps a copy of its 56 bytes for convenience). Its layout
//! is pinned by the compile-time assertions below and documented byte by byte in
//! `docs/format.md`. The first five fields (base offset, batch length, magic, commit timestamp,
//! leader epoch) are outside the CRC: the server stamps base offset, commit timestamp and
//! leader epoch without re-hashing, and a wrong length or magic makes the CRC check fail or is
//! rejected on its own.

use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{I32, I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The magic byte of format version 1 of the `LogBatch`. A different value is a different
/// (or corrupt) format and is rejected.
pub const BATCH_MAGIC_V1: u8 = 0xB1;

/// Every batch starts, and its Arrow message starts, at a multiple of this many bytes from the
/// start of the segment (or receive buffer), so Arrow column buffers can be used in place.
/// 64 is Arrow's own recommended alignment and covers every native type (i256 needs 32).
pub const BATCH_ALIGNMENT_BYTES: usize = 64;

/// Size of [`BatchHeader`] in bytes.
pub const BATCH_HEADER_SIZE_BYTES: usize = size_of::<BatchHeader>();

/// Offset of the first byte covered by the CRC: the schema id. Everything before it is
/// stamped by the server or checked on its own.
pub const CRC_START_OFFSET: usize = offset_of!(BatchHeader, schema_id);

/// `writer_id` of a batch from a writer without idempotence.
pub const NO_WRITER_ID: i64 = -1;

/// `batch_sequence` of a batch from a writer without idempotence.
pub const NO_BATCH_SEQUENCE: i32 = -1;

/// The fixed header of a `LogBatch`, exactly as it lies on disk and on the wire.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct BatchHeader {
    /// Offset of the first record. Assigned by the server at append (0 when built).
    pub base_offset: U64,
    /// Total size of the batch in bytes, header included; a multiple of
    /// [`BATCH_ALIGNMENT_BYTES`].
    pub batch_length: U32,
    /// [`BATCH_MAGIC_V1`].
    pub magic: u8,
    /// Milliseconds since the Unix epoch at which the server appended the batch (0 when
    /// built). Non-decreasing within a bucket.
    pub commit_timestamp: I64,
    /// Leader epoch of the replica that appended the batch (0 when built).
    pub leader_epoch: U32,
    /// CRC-32C (Castagnoli) of bytes `[CRC_START_OFFSET, batch_length)`.
    pub crc: U32,
    /// Id of the table schema the Arrow message is encoded with.
    pub schema_id: U16,
    /// Bit set, see [`Attributes`].
    pub attributes: u8,
    /// `last offset - base offset`: `record_count - 1`, or 0 for an empty batch (an empty
    /// batch still takes one offset so a writer's sequence can advance).
    pub last_offset_delta: U32,
    /// Idempotent writer id, or [`NO_WRITER_ID`].
    pub writer_id: I64,
    /// Sequence number of this batch for its writer, or [`NO_BATCH_SEQUENCE`].
    pub batch_sequence: I32,
    /// Number of records (rows) in the Arrow message.
    pub record_count: U32,
    /// Size in bytes of the statistics block that follows the header (0: none).
    pub statistics_length: U32,
}

const _: () = assert!(size_of::<BatchHeader>() == 56);
const _: () = assert!(offset_of!(BatchHeader, base_offset) == 0);
const _: () = assert!(offset_of!(BatchHeader, batch_length) == 8);
const _: () = assert!(offset_of!(BatchHeader, magic) == 12);
const _: () = assert!(offset_of!(BatchHeader, commit_timestamp) == 13);
const _: () = assert!(offset_of!(BatchHeader, leader_epoch) == 21);
const _: () = assert!(offset_of!(BatchHeader, crc) == 25);
const _: () = assert!(offset_of!(BatchHeader, schema_id) == 29);
const _: () = assert!(offset_of!(BatchHeader, attributes) == 31);
const _: () = assert!(offset_of!(BatchHeader, last_offset_delta) == 32);
const _: () = assert!(offset_of!(BatchHeader, writer_id) == 36);
const _: () = assert!(offset_of!(BatchHeader, batch_sequence) == 44);
const _: () = assert!(offset_of!(BatchHeader, record_count) == 48);
const _: () = assert!(offset_of!(BatchHeader, statistics_length) == 52);
const _: () = assert!(BATCH_ALIGNMENT_BYTES.is_power_of_two());
// The format is little-endian and decoded in place: only little-endian hosts are supported.
const _: () = assert!(cfg!(target_endian = "little"));

/// Body compression of the Arrow message's column buffers (Arrow IPC body compression, one
/// codec per batch). Projection works on compressed batches without decompressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Column buffers are stored as they are.
    #[default]
    None,
    /// Each buffer is an LZ4 frame (fast; the default for tables that compress).
    Lz4Frame,
    /// Each buffer is a Zstandard frame (smaller, slower).
    Zstd,
}

/// The attribute bits of a batch.
///
/// | bits | meaning |
/// |---|---|
/// | 0–1 | compression: 0 none, 1 LZ4 frame, 2 ZSTD (3 is invalid) |
/// | 2 | a change-type vector is present (primary-key changelog); clear = append-only |
/// | 3 | the batch is a server-side projection of a stored batch |
/// | 4–7 | reserved, must be zero |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Attributes(pub u8);

impl Attributes {
    const COMPRESSION_MASK: u8 = 0b0000_0011;
    const CHANGE_TYPES: u8 = 0b0000_0100;
    const PROJECTED: u8 = 0b0000_1000;
    const RESERVED_MASK: u8 = 0b1111_0000;

    /// Attributes of a freshly built batch.
    pub fn new(compression: Compression, has_change_types: bool) -> Self {
        let codec = match compression {
            Compression::None => 0,
            Compression::Lz4Frame => 1,
            Compression::Zstd => 2,
        };
        let change_types = if has_change_types { Self::CHANGE_TYPES } else { 0 };
        Self(codec | change_types)
    }

    /// The compression codec, or `None` if the bits hold the invalid value 3.
    pub fn compression(self) -> Option<Compression> {
        match self.0 & Self::COMPRESSION_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Lz4Frame),
            2 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// True if a change-type vector (one byte per record) follows the statistics.
    pub fn has_change_types(self) -> bool {
        self.0 & Self::CHANGE_TYPES != 0
    }

    /// True if the batch was produced by server-side projection.
    pub fn is_projected(self) -> bool {
        self.0 & Self::PROJECTED != 0
    }

    /// The same attributes with the projected bit set.
    pub fn with_projected(self) -> Self {
        Self(self.0 | Self::PROJECTED)
    }

    /// True if no reserved bit is set and the compression bits are valid.
    pub fn is_valid(self) -> bool {
        self.0 & Self::RESERVED_MASK == 0 && self.compression().is_some()
    }
}

/// Rounds `value` up to the next multiple of [`BATCH_ALIGNMENT_BYTES`].
pub const fn align_to_batch(value: usize) -> usize {
    (value + BATCH_ALIGNMENT_BYTES - 1) & !(BATCH_ALIGNMENT_BYTES - 1)
}

/// Offset of the Arrow message inside a batch: after the header, the statistics block and
/// the change-type vector, rounded up to [`BATCH_ALIGNMENT_BYTES`]. Derived, never stored.
pub fn message_offset(statistics_length: usize, change_type_count: usize) -> usize {
    align_to_batch(BATCH_HEADER_SIZE_BYTES + statistics_length + change_type_count)
}

/// CRC-32C of a batch's covered bytes (`bytes[CRC_START_OFFSET..]`).
///
/// # Panics
/// If `batch` is shorter than the header; callers check lengths first.
pub fn compute_crc(batch: &[u8]) -> u32 {
    assert!(batch.len() >= BATCH_HEADER_SIZE_BYTES);
    crc32c::crc32c(&batch[CRC_START_OFFSET..])
}

/// Writes `crc` into the header of `batch`.
///
/// # Panics
/// If `batch` is shorter than the header.
pub fn set_crc(batch: &mut [u8], crc: u32) {
    let at = offset_of!(BatchHeader, crc);
    batch[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Stamps the server-assigned fields into the header of `batch`. They lie outside the CRC.
///
/// # Panics
/// If `batch` is shorter than the header.
pub fn stamp_server_fields(
    batch: &mut [u8],
    base_offset: u64,
    commit_timestamp: i64,
    leader_epoch: u32,
) {
    let at = offset_of!(BatchHeader, base_offset);
    batch[at..at + 8].copy_from_slice(&base_offset.to_le_bytes());
    let at = offset_of!(BatchHeader, commit_timestamp);
    batch[at..at + 8].copy_from_slice(&commit_timestamp.to_le_bytes());
    let at = offset_of!(BatchHeader, leader_epoch);
    batch[at..at + 4].copy_from_slice(&leader_epoch.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        for compression in [Compression::None, Compression::Lz4Frame, Compression::Zstd] {
            for change_types in [false, true] {
                let attributes = Attributes::new(compression, change_types);
                assert!(attributes.is_valid());
                assert_eq!(attributes.compression(), Some(compression));
                assert_eq!(attributes.has_change_types(), change_types);
                assert!(!attributes.is_projected());
                assert!(attributes.with_projected().is_projected());
            }
        }
        assert!(!Attributes(0b11).is_valid());
        assert!(!Attributes(0b1_0000).is_valid());
    }

    #[test]
    fn message_offset_is_aligned_and_after_the_prefix() {
        assert_eq!(message_offset(0, 0), 64);
        assert_eq!(message_offset(8, 0), 64);
        assert_eq!(message_offset(8, 1), 128);
        assert_eq!(message_offset(100, 1000) % BATCH_ALIGNMENT_BYTES, 0);
    }
}
