//! Sorted files (`{file_id:020}.kv`): data blocks, a block index, a bloom filter and a
//! fixed-size footer (`docs/format.md`, "KV files").
//!
//! A file is written once, front to back, with direct I/O ([`SstWriter`]), sealed
//! (fdatasync'd at its exact size) and only then named in a manifest. [`SstFile`] opens it
//! by reading the footer and the index and bloom regions, checking every checksum and the
//! regions' bounds against each other and the file size; a data block is checked (CRC, its
//! last key against the index, its first key after the previous block's last) each time it
//! is read from disk, so the keys of every walk strictly increase. Any failed check is
//! [`KvError::Corrupt`], never a panic or a wrong answer. The writer asserts what the
//! reader checks: a file it writes is one the reader accepts.

use std::rc::Rc;

use ufer_io::{DataDir, IoError, SegmentFile, SegmentWriter};

use crate::kv::block::{encoded_entry_size_bytes, Block, BlockBuilder};
use crate::kv::bloom::{key_hash, BloomFilter};
use crate::kv::cache::BlockCache;
use crate::kv::codec::{check_trailing_crc, push_crc, ByteReader};
use crate::kv::config::KvConfig;
use crate::kv::error::KvError;

/// Extension of sorted files.
pub(crate) const SST_FILE_EXTENSION: &str = ".kv";
/// "UFKV" read as a little-endian u32.
pub(crate) const SST_MAGIC: u32 = u32::from_le_bytes(*b"UFKV");
pub(crate) const SST_FORMAT_VERSION: u32 = 1;
/// The footer: magic u32, version u32, entry_count u64, tombstone_count u64,
/// index_offset u64, index_size u32, bloom_size u32, bloom_offset u64, reserved u32,
/// crc32c u32.
pub(crate) const SST_FOOTER_SIZE_BYTES: usize = 4 + 4 + 8 + 8 + 8 + 4 + 4 + 8 + 4 + 4;
const _: () = assert!(SST_FOOTER_SIZE_BYTES == 56);
/// One read of consecutive blocks when a whole file is walked (flush, compaction).
pub(crate) const SST_READAHEAD_SIZE_BYTES: u64 = 256 * 1024;
/// Largest index or bloom region a reader loads (checked before allocating).
pub(crate) const SST_REGION_SIZE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The name of file `id`.
pub(crate) fn sst_file_name(id: u64) -> String {
    format!("{id:020}{SST_FILE_EXTENSION}")
}

/// The id of a sorted file's name.
pub(crate) fn parse_sst_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SST_FILE_EXTENSION)?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

/// The fixed-size end of a sorted file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) entry_count: u64,
    pub(crate) tombstone_count: u64,
    pub(crate) index_offset: u64,
    pub(crate) index_size: u32,
    pub(crate) bloom_size: u32,
    pub(crate) bloom_offset: u64,
}

impl Footer {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(SST_FOOTER_SIZE_BYTES);
        bytes.extend_from_slice(&SST_MAGIC.to_le_bytes());
        bytes.extend_from_slice(&SST_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.entry_count.to_le_bytes());
        bytes.extend_from_slice(&self.tombstone_count.to_le_bytes());
        bytes.extend_from_slice(&self.index_offset.to_le_bytes());
        bytes.extend_from_slice(&self.index_size.to_le_bytes());
        bytes.extend_from_slice(&self.bloom_size.to_le_bytes());
        bytes.extend_from_slice(&self.bloom_offset.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        push_crc(&mut bytes);
        assert_eq!(bytes.len(), SST_FOOTER_SIZE_BYTES);
        bytes
    }

    /// Decodes the footer of a file of `file_size` bytes and checks the regions it points
    /// at tile the file: data, index, bloom, footer.
    pub(crate) fn decode(bytes: &[u8], file_size: u64) -> Result<Self, String> {
        if bytes.len() != SST_FOOTER_SIZE_BYTES {
            return Err(format!("footer of {} bytes", bytes.len()));
        }
        let body = check_trailing_crc(bytes)?;
        let mut reader = ByteReader::new(body);
        let magic = reader.u32()?;
        if magic != SST_MAGIC {
            return Err(format!("bad magic {magic:#010x}"));
        }
        let version = reader.u32()?;
        if version != SST_FORMAT_VERSION {
            return Err(format!("unknown format version {version}"));
        }
        let footer = Self {
            entry_count: reader.u64()?,
            tombstone_count: reader.u64()?,
            index_offset: reader.u64()?,
            index_size: reader.u32()?,
            bloom_size: reader.u32()?,
            bloom_offset: reader.u64()?,
        };
        if reader.u32()? != 0 {
            return Err("reserved footer bytes are not zero".into());
        }
        let index_end = footer.index_offset.checked_add(u64::from(footer.index_size));
        let bloom_end = footer.bloom_offset.checked_add(u64::from(footer.bloom_size));
        if index_end != Some(footer.bloom_offset)
            || bloom_end != file_size.checked_sub(SST_FOOTER_SIZE_BYTES as u64)
            || footer.tombstone_count > footer.entry_count
            || footer.entry_count == 0
        {
            return Err(format!("footer does not describe a {file_size}-byte file: {footer:?}"));
        }
        Ok(footer)
    }
}

/// Where a data block lies and the last key in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) last_key: Vec<u8>,
    pub(crate) offset: u64,
    pub(crate) size: u32,
}

fn encode_index(min_key: &[u8], entries: &[IndexEntry]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(min_key.len() as u16).to_le_bytes());
    bytes.extend_from_slice(min_key);
    bytes.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for entry in entries {
        bytes.extend_from_slice(&(entry.last_key.len() as u16).to_le_bytes());
        bytes.extend_from_slice(&entry.last_key);
        bytes.extend_from_slice(&entry.offset.to_le_bytes());
        bytes.extend_from_slice(&entry.size.to_le_bytes());
    }
    push_crc(&mut bytes);
    bytes
}

/// Decodes the index region and checks the blocks tile `0..data_size` in key order.
fn decode_index(bytes: &[u8], data_size: u64) -> Result<(Vec<u8>, Vec<IndexEntry>), String> {
    let mut reader = ByteReader::new(check_trailing_crc(bytes)?);
    let min_len = reader.u16()?;
    let min_key = reader.bytes(usize::from(min_len))?.to_vec();
    let count = reader.u32()? as usize;
    // Every entry takes at least 14 bytes: bounds the allocation.
    if count == 0 || count > reader.remaining() / 14 {
        return Err(format!("{count} index entries in {} bytes", reader.remaining()));
    }
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(count);
    let mut end = 0u64;
    for _ in 0..count {
        let key_len = reader.u16()?;
        let last_key = reader.bytes(usize::from(key_len))?.to_vec();
        let entry = IndexEntry { last_key, offset: reader.u64()?, size: reader.u32()? };
        let previous_key = entries.last().map_or(&min_key, |previous| &previous.last_key);
        let ordered = if entries.is_empty() {
            entry.last_key >= *previous_key
        } else {
            entry.last_key > *previous_key
        };
        if entry.offset != end || !ordered || entry.size == 0 {
            return Err(format!("index entry {} out of order", entries.len()));
        }
        end += u64::from(entry.size);
        entries.push(entry);
    }
    if end != data_size || reader.remaining() != 0 {
        return Err(format!("blocks end at {end}, data ends at {data_size}"));
    }
    Ok((min_key, entries))
}

/// Writes one sorted file from entries given in strictly increasing key order.
pub(crate) struct SstWriter {
    writer: SegmentWriter,
    name: String,
    block: BlockBuilder,
    block_size_bytes: usize,
    bloom_bits_per_key: u32,
    index: Vec<IndexEntry>,
    hashes: Vec<u64>,
    min_key: Option<Vec<u8>>,
    position: u64,
    tombstone_count: u64,
}

impl std::fmt::Debug for SstWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstWriter").field("name", &self.name).finish_non_exhaustive()
    }
}

impl SstWriter {
    /// Creates file `id` (which must not exist).
    pub(crate) async fn create(dir: &DataDir, id: u64, config: &KvConfig) -> Result<Self, KvError> {
        let name = sst_file_name(id);
        let writer = dir.create_writer(&name, config.writer).await?;
        Ok(Self {
            writer,
            name,
            block: BlockBuilder::new(),
            block_size_bytes: config.block_size_bytes,
            bloom_bits_per_key: config.bloom_bits_per_key,
            index: Vec::new(),
            hashes: Vec::new(),
            min_key: None,
            position: 0,
            tombstone_count: 0,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) async fn add(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), KvError> {
        let entry_size = encoded_entry_size_bytes(key, value);
        if !self.block.is_empty() && self.block.size_bytes() + entry_size > self.block_size_bytes {
            self.finish_block().await?;
        }
        // `BlockBuilder` checks the order within a block; across blocks it is checked here,
        // so keys in a written file strictly increase (flush and compaction output alike).
        if self.block.is_empty() {
            let previous = self.index.last().map(|entry| entry.last_key.as_slice());
            assert!(previous.is_none_or(|previous| key > previous), "keys of a file increase");
        }
        if self.min_key.is_none() {
            self.min_key = Some(key.to_vec());
        }
        self.block.add(key, value);
        self.hashes.push(key_hash(key));
        self.tombstone_count += u64::from(value.is_none());
        Ok(())
    }

    async fn finish_block(&mut self) -> Result<(), KvError> {
        let (bytes, last_key) = self.block.finish();
        let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        assert_eq!(size as usize, bytes.len(), "a block's size fits the index's u32");
        self.writer.append(&bytes).await?;
        self.index.push(IndexEntry { last_key, offset: self.position, size });
        self.position += u64::from(size);
        assert_eq!(self.writer.appended_size(), self.position, "the index tiles the file");
        Ok(())
    }

    /// The pair of `decode_index`'s checks: the index written is one the reader accepts
    /// (keys within the format's 16-bit lengths were asserted by `BlockBuilder`).
    fn assert_index(&self, min_key: &[u8]) {
        let entries = &self.index;
        assert!(!entries.is_empty(), "a sorted file has at least one block");
        assert!(u32::try_from(entries.len()).is_ok(), "{} blocks in one file", entries.len());
        assert!(entries[0].last_key.as_slice() >= min_key, "the first block ends at or after it");
        for pair in entries.windows(2) {
            assert!(pair[0].last_key < pair[1].last_key, "index keys strictly increase");
            assert_eq!(pair[0].offset + u64::from(pair[0].size), pair[1].offset, "blocks tile");
        }
    }

    /// Writes the index, bloom and footer, makes the file durable at its exact size and
    /// closes it. Returns the file size. At least one entry must have been added.
    pub(crate) async fn finish(mut self) -> Result<u64, KvError> {
        assert!(!self.hashes.is_empty(), "a sorted file holds at least one entry");
        if !self.block.is_empty() {
            self.finish_block().await?;
        }
        let min_key = self.min_key.take().unwrap_or_default();
        self.assert_index(&min_key);
        let index = encode_index(&min_key, &self.index);
        let mut bloom = Vec::new();
        BloomFilter::build(&self.hashes, self.bloom_bits_per_key).encode(&mut bloom);
        push_crc(&mut bloom);
        let index_size = u32::try_from(index.len()).unwrap_or(u32::MAX);
        let bloom_size = u32::try_from(bloom.len()).unwrap_or(u32::MAX);
        assert_eq!(index_size as usize, index.len(), "the index size fits the footer's u32");
        assert_eq!(bloom_size as usize, bloom.len(), "the bloom size fits the footer's u32");
        let footer = Footer {
            entry_count: self.hashes.len() as u64,
            tombstone_count: self.tombstone_count,
            index_offset: self.position,
            index_size,
            bloom_size,
            bloom_offset: self.position + index.len() as u64,
        };
        let footer_bytes = footer.encode();
        let file_size = footer.bloom_offset + bloom.len() as u64 + SST_FOOTER_SIZE_BYTES as u64;
        // The pair of the reader's footer check: the footer describes the file written.
        assert_eq!(
            Footer::decode(&footer_bytes, file_size),
            Ok(footer),
            "the footer tiles the file: data, index, bloom, footer"
        );
        self.writer.append(&index).await?;
        self.writer.append(&bloom).await?;
        self.writer.append(&footer_bytes).await?;
        let size = self.writer.seal().await?;
        assert_eq!(size, file_size, "the sealed file is exactly the regions written");
        self.writer.close().await?;
        Ok(size)
    }
}

/// An open, checked sorted file. Shared (`Rc`) by the tablet and the views that read it;
/// deleted only once no one holds it.
pub(crate) struct SstFile {
    id: u64,
    name: String,
    file: SegmentFile,
    size: u64,
    footer: Footer,
    min_key: Vec<u8>,
    index: Vec<IndexEntry>,
    bloom: BloomFilter,
    cache: Rc<BlockCache>,
    cache_key: u64,
}

impl std::fmt::Debug for SstFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SstFile").field("name", &self.name).field("size", &self.size).finish()
    }
}

impl SstFile {
    /// Opens file `id`, which must be `expected_size` bytes, and checks its footer, index
    /// and bloom filter.
    pub(crate) async fn open(
        dir: &DataDir,
        id: u64,
        expected_size: u64,
        cache: Rc<BlockCache>,
    ) -> Result<Self, KvError> {
        let name = sst_file_name(id);
        let file = match dir.open_reader(&name).await {
            Ok(file) => file,
            Err(IoError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(KvError::corrupt(&name, "the manifest names it but it is missing"));
            }
            Err(error) => return Err(error.into()),
        };
        match Self::check(&name, &file, expected_size).await {
            Ok((footer, min_key, index, bloom)) => {
                let cache_key = cache.file_key();
                let size = expected_size;
                Ok(Self { id, name, file, size, footer, min_key, index, bloom, cache, cache_key })
            }
            Err(error) => {
                let _ = file.close().await;
                Err(error)
            }
        }
    }

    async fn check(
        name: &str,
        file: &SegmentFile,
        expected_size: u64,
    ) -> Result<(Footer, Vec<u8>, Vec<IndexEntry>, BloomFilter), KvError> {
        let corrupt = |reason: String| KvError::corrupt(name, reason);
        let size = file.size().await?;
        if size != expected_size {
            return Err(corrupt(format!("{size} bytes, the manifest says {expected_size}")));
        }
        if size < SST_FOOTER_SIZE_BYTES as u64 {
            return Err(corrupt(format!("{size} bytes: shorter than a footer")));
        }
        let footer_bytes =
            file.read_exact_at(size - SST_FOOTER_SIZE_BYTES as u64, SST_FOOTER_SIZE_BYTES).await?;
        let footer =
            Footer::decode(&footer_bytes, size).map_err(|e| corrupt(format!("footer: {e}")))?;
        let regions_size = u64::from(footer.index_size) + u64::from(footer.bloom_size);
        if regions_size > SST_REGION_SIZE_MAX_BYTES {
            return Err(corrupt(format!("index and bloom of {regions_size} bytes")));
        }
        let regions = file.read_exact_at(footer.index_offset, regions_size as usize).await?;
        let (index_bytes, bloom_bytes) = regions.split_at(footer.index_size as usize);
        let (min_key, index) = decode_index(index_bytes, footer.index_offset)
            .map_err(|e| corrupt(format!("index: {e}")))?;
        let bloom = check_trailing_crc(bloom_bytes)
            .and_then(BloomFilter::decode)
            .map_err(|e| corrupt(format!("bloom filter: {e}")))?;
        Ok((footer, min_key, index, bloom))
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.footer.entry_count
    }

    pub(crate) fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Closes the file if this is its last handle.
    pub(crate) async fn close(self) -> Result<(), KvError> {
        Ok(self.file.close().await?)
    }

    /// The first block that may hold keys `>= key` (or `> key` if `exclusive`).
    pub(crate) fn seek_block(&self, key: &[u8], exclusive: bool) -> usize {
        self.index.partition_point(|entry| {
            if exclusive {
                entry.last_key.as_slice() <= key
            } else {
                entry.last_key.as_slice() < key
            }
        })
    }

    /// Reads, checks and decodes block `index`, through the cache if `use_cache`.
    pub(crate) async fn read_block(
        &self,
        index: usize,
        use_cache: bool,
    ) -> Result<Rc<Block>, KvError> {
        let entry = &self.index[index];
        if use_cache {
            if let Some(block) = self.cache.get(self.cache_key, entry.offset) {
                return Ok(block);
            }
        }
        let bytes = self.file.read_exact_at(entry.offset, entry.size as usize).await?;
        let block = Rc::new(self.decode_block(index, &bytes)?);
        if use_cache {
            self.cache.insert(self.cache_key, entry.offset, block.clone());
        }
        Ok(block)
    }

    /// Reads blocks `first..` in one I/O of at most [`SST_READAHEAD_SIZE_BYTES`] (at least
    /// one block), around the cache: how flushes and compactions walk whole files.
    pub(crate) async fn read_blocks_ahead(&self, first: usize) -> Result<Vec<Rc<Block>>, KvError> {
        let start = self.index[first].offset;
        let mut size = u64::from(self.index[first].size);
        let mut end = first + 1;
        while let Some(next) = self.index.get(end) {
            if size + u64::from(next.size) > SST_READAHEAD_SIZE_BYTES {
                break;
            }
            size += u64::from(next.size);
            end += 1;
        }
        let bytes = self.file.read_exact_at(start, size as usize).await?;
        let mut blocks = Vec::with_capacity(end - first);
        for index in first..end {
            let entry = &self.index[index];
            let relative = (entry.offset - start) as usize;
            let block_bytes = &bytes[relative..relative + entry.size as usize];
            blocks.push(Rc::new(self.decode_block(index, block_bytes)?));
        }
        Ok(blocks)
    }

    /// Decodes block `index` and checks it against the index: it ends with its index key
    /// and starts after the previous block's (the first block at the file's smallest key),
    /// so every walk of the file sees keys strictly increase.
    fn decode_block(&self, index: usize, bytes: &[u8]) -> Result<Block, KvError> {
        let entry = &self.index[index];
        let block = Block::decode(bytes)
            .map_err(|e| KvError::corrupt(&self.name, format!("block at {}: {e}", entry.offset)))?;
        if block.last_key() != entry.last_key.as_slice() {
            let reason = format!("block at {} does not end with its index key", entry.offset);
            return Err(KvError::corrupt(&self.name, reason));
        }
        let starts_in_order = match index.checked_sub(1) {
            None => block.key(0) == self.min_key.as_slice(),
            Some(previous) => block.key(0) > self.index[previous].last_key.as_slice(),
        };
        if !starts_in_order {
            let reason = format!("block at {} starts before the previous block ends", entry.offset);
            return Err(KvError::corrupt(&self.name, reason));
        }
        Ok(block)
    }

    /// `None`: the key is not in this file; `Some(None)`: deleted in this file.
    pub(crate) async fn get(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, KvError> {
        let max_key = self.index.last().map_or(&[][..], |entry| entry.last_key.as_slice());
        if key < self.min_key.as_slice() || key > max_key || !self.bloom.may_contain(key_hash(key))
        {
            return Ok(None);
        }
        let block_index = self.seek_block(key, false);
        if block_index == self.index.len() {
            return Ok(None);
        }
        let block = self.read_block(block_index, true).await?;
        Ok(block.search(key).ok().map(|i| block.value(i).map(<[u8]>::to_vec)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trip_and_checks() {
        let footer = Footer {
            entry_count: 10,
            tombstone_count: 2,
            index_offset: 1000,
            index_size: 100,
            bloom_size: 24,
            bloom_offset: 1100,
        };
        let file_size = 1124 + SST_FOOTER_SIZE_BYTES as u64;
        let bytes = footer.encode();
        assert_eq!(&bytes[..8], b"UFKV\x01\0\0\0");
        assert_eq!(bytes[8..16], 10u64.to_le_bytes());
        assert_eq!(bytes[24..32], 1000u64.to_le_bytes());
        assert_eq!(bytes[40..48], 1100u64.to_le_bytes());
        assert_eq!(bytes[52..], crc32c::crc32c(&bytes[..52]).to_le_bytes());
        assert_eq!(Footer::decode(&bytes, file_size), Ok(footer));
        assert!(Footer::decode(&bytes, file_size + 1).is_err());
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 4;
            assert!(Footer::decode(&damaged, file_size).is_err());
        }
    }

    #[test]
    fn index_round_trip_and_checks() {
        let entries = vec![
            IndexEntry { last_key: b"b".to_vec(), offset: 0, size: 10 },
            IndexEntry { last_key: b"d".to_vec(), offset: 10, size: 5 },
        ];
        let bytes = encode_index(b"a", &entries);
        assert_eq!(decode_index(&bytes, 15), Ok((b"a".to_vec(), entries.clone())));
        assert!(decode_index(&bytes, 16).is_err());
        let gap = vec![entries[0].clone(), IndexEntry { offset: 11, ..entries[1].clone() }];
        assert!(decode_index(&encode_index(b"a", &gap), 16).is_err());
        let unordered = vec![entries[1].clone(), entries[0].clone()];
        assert!(decode_index(&encode_index(b"a", &unordered), 15).is_err());
    }

    /// Two blocks whose index keys increase ("c", then "d") but whose keys overlap: the
    /// second starts at "b". Every checksum holds, so only the check of a block's first key
    /// against the previous block stops a walk from seeing keys go back (which the merge
    /// cursor asserts never happens).
    #[test]
    fn a_block_starting_before_the_previous_one_ends_is_corrupt() {
        let mut bytes = Vec::new();
        let mut index = Vec::new();
        for keys in [[&b"a"[..], b"c"], [b"b", b"d"]] {
            let mut builder = BlockBuilder::new();
            for key in keys {
                builder.add(key, Some(b"v"));
            }
            let (block, last_key) = builder.finish();
            let (offset, size) = (bytes.len() as u64, block.len() as u32);
            index.push(IndexEntry { last_key, offset, size });
            bytes.extend_from_slice(&block);
        }
        let index_offset = bytes.len() as u64;
        let index_bytes = encode_index(b"a", &index);
        let hashes: Vec<u64> = [b"a", b"b", b"c", b"d"].iter().map(|key| key_hash(*key)).collect();
        let mut bloom = Vec::new();
        BloomFilter::build(&hashes, 10).encode(&mut bloom);
        push_crc(&mut bloom);
        let footer = Footer {
            entry_count: 4,
            tombstone_count: 0,
            index_offset,
            index_size: index_bytes.len() as u32,
            bloom_size: bloom.len() as u32,
            bloom_offset: index_offset + index_bytes.len() as u64,
        };
        bytes.extend_from_slice(&index_bytes);
        bytes.extend_from_slice(&bloom);
        bytes.extend_from_slice(&footer.encode());
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join(sst_file_name(1)), &bytes).unwrap();
        let (path, size) = (temp.path().to_path_buf(), bytes.len() as u64);
        ufer_io::executor::run_on_new_thread(move || async move {
            let dir = DataDir::open(&path).await.unwrap();
            let cache = Rc::new(BlockCache::new(4096));
            let file = SstFile::open(&dir, 1, size, cache).await.unwrap();
            assert!(file.read_block(0, true).await.is_ok());
            assert!(matches!(file.read_block(1, true).await, Err(KvError::Corrupt { .. })));
            assert!(matches!(file.read_blocks_ahead(0).await, Err(KvError::Corrupt { .. })));
            file.close().await.unwrap();
        })
        .unwrap();
    }

    #[test]
    fn file_names() {
        assert_eq!(sst_file_name(7), "00000000000000000007.kv");
        assert_eq!(parse_sst_file_name(&sst_file_name(7)), Some(7));
        assert_eq!(parse_sst_file_name("7.kv"), None);
        assert_eq!(parse_sst_file_name("MANIFEST"), None);
    }
}
