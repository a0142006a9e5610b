//! A data block of a sorted file: sorted entries followed by their CRC32C
//! (`docs/format.md`, "KV files").
//!
//! Layout: `entry_count u32`, then per entry `kind u8` (0 put, 1 delete), `key_len u16`,
//! `value_len u32` (0 for a delete), key, value; then `crc32c u32` of everything before.
//! Invariants of a decoded [`Block`]: the checksum matched, it holds at least one entry,
//! every entry lies inside it, keys strictly increase.

use crate::kv::codec::{check_trailing_crc, push_crc, ByteReader};

/// `entry_count` at the start of a block.
pub(crate) const BLOCK_HEADER_SIZE_BYTES: usize = 4;
/// `kind`, `key_len`, `value_len` before each entry's bytes.
pub(crate) const ENTRY_HEADER_SIZE_BYTES: usize = 7;
/// The CRC32C at the end of a block.
pub(crate) const BLOCK_CRC_SIZE_BYTES: usize = 4;

const KIND_PUT: u8 = 0;
const KIND_DELETE: u8 = 1;

/// Encoded size of one entry.
pub(crate) fn encoded_entry_size_bytes(key: &[u8], value: Option<&[u8]>) -> usize {
    ENTRY_HEADER_SIZE_BYTES + key.len() + value.map_or(0, <[u8]>::len)
}

/// Builds one block from entries added in strictly increasing key order.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    bytes: Vec<u8>,
    entry_count: u32,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    pub(crate) fn new() -> Self {
        Self { bytes: vec![0; BLOCK_HEADER_SIZE_BYTES], entry_count: 0, last_key: Vec::new() }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// The size of the block if it were finished now.
    pub(crate) fn size_bytes(&self) -> usize {
        self.bytes.len() + BLOCK_CRC_SIZE_BYTES
    }

    pub(crate) fn add(&mut self, key: &[u8], value: Option<&[u8]>) {
        assert!(self.is_empty() || key > self.last_key.as_slice(), "keys must increase");
        let key_len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        assert_eq!(usize::from(key_len), key.len(), "key over the format's limit");
        let (kind, value) = match value {
            Some(value) => (KIND_PUT, value),
            None => (KIND_DELETE, &[][..]),
        };
        let value_len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        assert_eq!(value_len as usize, value.len(), "value over the format's limit");
        self.bytes.push(kind);
        self.bytes.extend_from_slice(&key_len.to_le_bytes());
        self.bytes.extend_from_slice(&value_len.to_le_bytes());
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
        self.entry_count += 1;
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
    }

    /// Finishes the block: returns its bytes and its last key, and starts a new one.
    pub(crate) fn finish(&mut self) -> (Vec<u8>, Vec<u8>) {
        assert!(!self.is_empty(), "a block holds at least one entry");
        let size = self.size_bytes();
        let mut bytes = std::mem::replace(&mut self.bytes, vec![0; BLOCK_HEADER_SIZE_BYTES]);
        bytes[..BLOCK_HEADER_SIZE_BYTES].copy_from_slice(&self.entry_count.to_le_bytes());
        push_crc(&mut bytes);
        // Writers cut blocks by `size_bytes`: it must be the size they get.
        assert_eq!(bytes.len(), size, "a finished block is as large as size_bytes said");
        // The pair of `Block::decode`'s checks: what we write, the reader accepts.
        debug_assert!(
            Block::decode(&bytes).is_ok_and(|block| block.last_key() == self.last_key),
            "a written block decodes and ends with its last key"
        );
        self.entry_count = 0;
        (bytes, std::mem::take(&mut self.last_key))
    }
}

/// A verified, decoded block: entries are read in place from its bytes.
#[derive(Debug)]
pub(crate) struct Block {
    bytes: Vec<u8>,
    /// Per entry: start of the key, key length, value length, tombstone.
    entries: Vec<(u32, u16, u32, bool)>,
}

impl Block {
    /// Checks and decodes a block.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let body = check_trailing_crc(bytes)?;
        let mut reader = ByteReader::new(body);
        let count = reader.u32()?;
        if count == 0 {
            return Err("empty block".into());
        }
        // Every entry takes at least its header: bounds the allocation below.
        if count as usize > reader.remaining() / ENTRY_HEADER_SIZE_BYTES {
            return Err(format!("{count} entries cannot fit in {} bytes", body.len()));
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut previous: Option<&[u8]> = None;
        for _ in 0..count {
            let kind = reader.u8()?;
            let key_len = reader.u16()?;
            let value_len = reader.u32()?;
            let start = reader.position();
            let key = reader.bytes(usize::from(key_len))?;
            reader.bytes(value_len as usize)?;
            let tombstone = match kind {
                KIND_PUT => false,
                KIND_DELETE if value_len == 0 => true,
                _ => return Err(format!("bad entry kind {kind} (value length {value_len})")),
            };
            if previous.is_some_and(|previous| previous >= key) {
                return Err("keys out of order".into());
            }
            previous = Some(key);
            let start = u32::try_from(start).map_err(|_| "block too large".to_string())?;
            entries.push((start, key_len, value_len, tombstone));
        }
        if reader.remaining() != 0 {
            return Err(format!("{} stray bytes after the entries", reader.remaining()));
        }
        Ok(Self { bytes: body.to_vec(), entries })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Accounted size in a cache.
    pub(crate) fn size_bytes(&self) -> usize {
        self.bytes.len() + self.entries.len() * std::mem::size_of::<(u32, u16, u32, bool)>()
    }

    pub(crate) fn key(&self, index: usize) -> &[u8] {
        let (start, key_len, _, _) = self.entries[index];
        &self.bytes[start as usize..start as usize + usize::from(key_len)]
    }

    /// The entry's value, `None` for a tombstone.
    pub(crate) fn value(&self, index: usize) -> Option<&[u8]> {
        let (start, key_len, value_len, tombstone) = self.entries[index];
        if tombstone {
            return None;
        }
        let start = start as usize + usize::from(key_len);
        Some(&self.bytes[start..start + value_len as usize])
    }

    /// Binary search by key.
    pub(crate) fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let mut low = 0;
        let mut high = self.len();
        while low < high {
            let middle = low + (high - low) / 2;
            match self.key(middle).cmp(key) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Ok(middle),
            }
        }
        Err(low)
    }

    pub(crate) fn last_key(&self) -> &[u8] {
        self.key(self.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<u8>) {
        let mut builder = BlockBuilder::new();
        builder.add(b"apple", Some(b"red"));
        builder.add(b"banana", None);
        builder.add(b"cherry", Some(b""));
        let size = builder.size_bytes();
        let (bytes, last) = builder.finish();
        assert_eq!(bytes.len(), size);
        assert!(builder.is_empty());
        (bytes, last)
    }

    #[test]
    fn round_trip() {
        let (bytes, last) = sample();
        assert_eq!(last, b"cherry");
        let block = Block::decode(&bytes).unwrap();
        assert_eq!(block.len(), 3);
        assert_eq!(block.key(0), b"apple");
        assert_eq!(block.value(0), Some(&b"red"[..]));
        assert_eq!(block.value(1), None);
        assert_eq!(block.value(2), Some(&b""[..]));
        assert_eq!(block.search(b"banana"), Ok(1));
        assert_eq!(block.search(b"b"), Err(1));
        assert_eq!(block.search(b"z"), Err(3));
        assert_eq!(block.last_key(), b"cherry");
    }

    #[test]
    fn bytes_are_pinned() {
        let mut builder = BlockBuilder::new();
        builder.add(b"a", Some(b"b"));
        builder.add(b"c", None);
        let (bytes, _) = builder.finish();
        let body: &[u8] = &[
            2, 0, 0, 0, // entry_count
            0, 1, 0, 1, 0, 0, 0, b'a', b'b', // put "a" = "b"
            1, 1, 0, 0, 0, 0, 0, b'c', // delete "c"
        ];
        assert_eq!(&bytes[..body.len()], body);
        assert_eq!(bytes[body.len()..], crc32c::crc32c(body).to_le_bytes());
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_an_error() {
        let (bytes, _) = sample();
        for position in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[position] ^= 1 << bit;
                assert!(Block::decode(&damaged).is_err(), "flip at {position}.{bit}");
            }
        }
        for len in 0..bytes.len() {
            assert!(Block::decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn structural_checks_behind_a_valid_checksum() {
        let mut bytes = 1000u32.to_le_bytes().to_vec();
        push_crc(&mut bytes);
        assert!(Block::decode(&bytes).is_err());
        let mut bytes = 0u32.to_le_bytes().to_vec();
        push_crc(&mut bytes);
        assert!(Block::decode(&bytes).is_err());
    }
}
