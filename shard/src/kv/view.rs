//! [`KvView`]: a consistent, read-only state of a KV tablet — frozen memtables and the file
//! set at one applied log offset — unaffected by later applies, flushes and compactions.
//!
//! A view only holds `Rc`s to immutable memtables and open files; the tablet deletes a
//! compacted-away file only once no view holds it. Point reads and chunked scans of views
//! are also how the tablet itself reads.

use std::ops::Bound;
use std::rc::Rc;

use crate::kv::error::KvError;
use crate::kv::memtable::Memtable;
use crate::kv::merge::MergeCursor;
use crate::kv::sst::SstFile;

/// Live entries in key order.
pub type KvEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Immutable sources of one state: memtables then files, each newest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sources {
    pub(crate) memtables: Vec<Rc<Memtable>>,
    pub(crate) files: Vec<Rc<SstFile>>,
}

impl Sources {
    /// The newest version of `key`: `None` if no source has it, `Some(None)` if deleted.
    pub(crate) async fn get(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, KvError> {
        for table in &self.memtables {
            if let Some(value) = table.get(key) {
                return Ok(Some(value.map(<[u8]>::to_vec)));
            }
        }
        for file in &self.files {
            if let Some(value) = file.get(key).await? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// Live entries with `prefix`, after `start_after`, in key order, until their key and
    /// value bytes reach `byte_limit` (at least one entry when there is one) or there are
    /// `entry_count_max`. `more`: live entries remain after the last one returned.
    pub(crate) async fn scan(
        &self,
        start_after: Option<&[u8]>,
        prefix: &[u8],
        byte_limit: usize,
        entry_count_max: usize,
    ) -> Result<(KvEntries, bool), KvError> {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut cursor = MergeCursor::new(&self.memtables, &self.files, lower, true).await?;
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        while let Some((key, value)) = cursor.next().await? {
            if !key.starts_with(prefix) {
                break;
            }
            let Some(value) = value else { continue };
            if entries.len() >= entry_count_max || (!entries.is_empty() && bytes >= byte_limit) {
                return Ok((entries, true));
            }
            bytes += key.len() + value.len();
            entries.push((key, value));
        }
        Ok((entries, false))
    }
}

/// A consistent read-only state of a KV tablet. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KvView {
    sources: Rc<Sources>,
    log_offset: u64,
}

impl KvView {
    pub(crate) fn new(sources: Sources, log_offset: u64) -> Self {
        Self { sources: Rc::new(sources), log_offset }
    }

    /// The changelog offset the view's state reaches (everything applied before it).
    pub fn log_offset(&self) -> u64 {
        self.log_offset
    }

    /// The key's value in this state.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.sources.get(key).await?.flatten())
    }

    /// One chunk of a resumable scan of the live entries with `prefix`: those after
    /// `start_after` (pass the last key of the previous chunk), in key order, until their
    /// key and value bytes reach `byte_limit` (always at least one entry if any is left).
    /// `more` is true when entries remain.
    pub async fn scan(
        &self,
        start_after: Option<&[u8]>,
        prefix: &[u8],
        byte_limit: usize,
    ) -> Result<(KvEntries, bool), KvError> {
        self.sources.scan(start_after, prefix, byte_limit, usize::MAX).await
    }
}
