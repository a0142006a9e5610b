//! The manifest: which sorted files are live, at which level, in which order, and the
//! changelog offset the snapshot they make up covers (`docs/format.md`, "KV files").
//!
//! Replaced crash-safely as a whole (`DataDir::replace_file`) after every flush and
//! compaction, and only once every file it names is durable, so after a crash the tablet is
//! exactly the last manifest's snapshot. Files are listed in read order: newest first,
//! levels non-decreasing.

use crate::kv::codec::{check_trailing_crc, push_crc, ByteReader};
use crate::kv::config::KV_LEVEL_COUNT_MAX;

/// The manifest's file name in the tablet's directory.
pub(crate) const MANIFEST_FILE_NAME: &str = "MANIFEST";
/// "UFKM" read as a little-endian u32.
pub(crate) const MANIFEST_MAGIC: u32 = u32::from_le_bytes(*b"UFKM");
pub(crate) const MANIFEST_FORMAT_VERSION: u32 = 1;
/// magic, version, snapshot_log_offset, next_file_id, file_count.
pub(crate) const MANIFEST_HEADER_SIZE_BYTES: usize = 4 + 4 + 8 + 8 + 4;
/// level u32, file_id u64, file_size u64.
pub(crate) const MANIFEST_FILE_ENTRY_SIZE_BYTES: usize = 4 + 8 + 8;
/// Files one manifest may list; far above what fanout × levels allows.
pub(crate) const MANIFEST_FILE_COUNT_MAX: usize = 100_000;

/// One live file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ManifestFile {
    pub(crate) level: u32,
    pub(crate) id: u64,
    pub(crate) size: u64,
}

/// The durable snapshot of a tablet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) snapshot_log_offset: u64,
    pub(crate) next_file_id: u64,
    pub(crate) files: Vec<ManifestFile>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.assert_valid();
        let mut bytes = Vec::with_capacity(
            MANIFEST_HEADER_SIZE_BYTES + self.files.len() * MANIFEST_FILE_ENTRY_SIZE_BYTES + 4,
        );
        bytes.extend_from_slice(&MANIFEST_MAGIC.to_le_bytes());
        bytes.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.snapshot_log_offset.to_le_bytes());
        bytes.extend_from_slice(&self.next_file_id.to_le_bytes());
        bytes.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for file in &self.files {
            bytes.extend_from_slice(&file.level.to_le_bytes());
            bytes.extend_from_slice(&file.id.to_le_bytes());
            bytes.extend_from_slice(&file.size.to_le_bytes());
        }
        push_crc(&mut bytes);
        bytes
    }

    /// The pair of `decode`'s checks: a manifest we write is one we can read back. At most
    /// `MANIFEST_FILE_COUNT_MAX` files, each below `next_file_id`, at a level below
    /// `KV_LEVEL_COUNT_MAX`, levels non-decreasing in read order, no id listed twice.
    fn assert_valid(&self) {
        let files = &self.files;
        assert!(files.len() <= MANIFEST_FILE_COUNT_MAX, "{} files in a manifest", files.len());
        for file in files {
            assert!((file.level as usize) < KV_LEVEL_COUNT_MAX, "file level {}", file.level);
            assert!(file.id < self.next_file_id, "file {} not below next_file_id", file.id);
        }
        for pair in files.windows(2) {
            assert!(pair[0].level <= pair[1].level, "levels are non-decreasing in read order");
        }
        let ids: std::collections::HashSet<u64> = files.iter().map(|file| file.id).collect();
        assert_eq!(ids.len(), files.len(), "no file is listed twice");
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let body = check_trailing_crc(bytes)?;
        let mut reader = ByteReader::new(body);
        let magic = reader.u32()?;
        if magic != MANIFEST_MAGIC {
            return Err(format!("bad magic {magic:#010x}"));
        }
        let version = reader.u32()?;
        if version != MANIFEST_FORMAT_VERSION {
            return Err(format!("unknown format version {version}"));
        }
        let snapshot_log_offset = reader.u64()?;
        let next_file_id = reader.u64()?;
        let count = reader.u32()? as usize;
        if count > MANIFEST_FILE_COUNT_MAX
            || reader.remaining() != count * MANIFEST_FILE_ENTRY_SIZE_BYTES
        {
            return Err(format!("{count} files do not match {} bytes", reader.remaining()));
        }
        let mut files: Vec<ManifestFile> = Vec::with_capacity(count);
        for _ in 0..count {
            let file =
                ManifestFile { level: reader.u32()?, id: reader.u64()?, size: reader.u64()? };
            if file.level as usize >= KV_LEVEL_COUNT_MAX || file.id >= next_file_id {
                return Err(format!("bad file entry {file:?}"));
            }
            if files.last().is_some_and(|last| last.level > file.level) {
                return Err("levels out of order".into());
            }
            if files.iter().any(|other| other.id == file.id) {
                return Err(format!("file {} listed twice", file.id));
            }
            files.push(file);
        }
        Ok(Self { snapshot_log_offset, next_file_id, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            snapshot_log_offset: 42,
            next_file_id: 9,
            files: vec![
                ManifestFile { level: 0, id: 8, size: 100 },
                ManifestFile { level: 1, id: 3, size: 5000 },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = sample().encode();
        assert_eq!(
            bytes.len(),
            MANIFEST_HEADER_SIZE_BYTES + 2 * MANIFEST_FILE_ENTRY_SIZE_BYTES + 4
        );
        assert_eq!(&bytes[..8], b"UFKM\x01\0\0\0");
        assert_eq!(bytes[8..16], 42u64.to_le_bytes());
        assert_eq!(bytes[24..28], 2u32.to_le_bytes());
        assert_eq!(bytes[28..32], 0u32.to_le_bytes()); // level of the newest file
        assert_eq!(bytes[32..40], 8u64.to_le_bytes()); // its id
        assert_eq!(Manifest::decode(&bytes), Ok(sample()));
    }

    #[test]
    fn damage_is_an_error() {
        let bytes = sample().encode();
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            assert!(Manifest::decode(&damaged).is_err());
        }
        for len in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..len]).is_err());
        }
    }
}
