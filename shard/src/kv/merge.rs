//! [`MergeCursor`]: walks several sorted sources (memtables and sorted files, newest
//! first) as one, in key order, yielding for each key only its newest version (a value or
//! a tombstone). Flushes, compactions and scans all read through it.

use std::collections::VecDeque;
use std::ops::Bound;
use std::rc::Rc;

use crate::kv::block::Block;
use crate::kv::error::KvError;
use crate::kv::memtable::Memtable;
use crate::kv::sst::SstFile;

/// An entry: key and value, `None` for a tombstone.
pub(crate) type Entry = (Vec<u8>, Option<Vec<u8>>);

/// A position in a sorted file. Invariant: when `block` is set, `entry < block.len()`.
struct SstCursor {
    file: Rc<SstFile>,
    block_index: usize,
    block: Option<Rc<Block>>,
    entry: usize,
    use_cache: bool,
    /// Blocks read ahead (when not using the cache), starting at `block_index + 1`.
    ahead: VecDeque<Rc<Block>>,
}

impl SstCursor {
    async fn seek(
        file: Rc<SstFile>,
        lower: Bound<&[u8]>,
        use_cache: bool,
    ) -> Result<Self, KvError> {
        let block_index = match lower {
            Bound::Included(key) => file.seek_block(key, false),
            Bound::Excluded(key) => file.seek_block(key, true),
            Bound::Unbounded => 0,
        };
        let ahead = VecDeque::new();
        let mut cursor = Self { file, block_index, block: None, entry: 0, use_cache, ahead };
        cursor.load().await?;
        if let Some(block) = &cursor.block {
            cursor.entry = match lower {
                Bound::Included(key) => block.search(key).unwrap_or_else(|i| i),
                Bound::Excluded(key) => block.search(key).map_or_else(|i| i, |i| i + 1),
                Bound::Unbounded => 0,
            };
            // The index promised a key past `lower` in this block.
            if cursor.entry >= block.len() {
                let reason = "block index points at a block without the sought key";
                return Err(KvError::corrupt(&format!("file {}", cursor.file.id()), reason));
            }
        }
        Ok(cursor)
    }

    async fn load(&mut self) -> Result<(), KvError> {
        self.entry = 0;
        self.block = if self.block_index >= self.file.block_count() {
            None
        } else if self.use_cache {
            Some(self.file.read_block(self.block_index, true).await?)
        } else {
            if self.ahead.is_empty() {
                self.ahead.extend(self.file.read_blocks_ahead(self.block_index).await?);
            }
            self.ahead.pop_front()
        };
        Ok(())
    }

    fn peek(&self) -> Option<(&[u8], Option<&[u8]>)> {
        self.block.as_ref().map(|block| (block.key(self.entry), block.value(self.entry)))
    }

    async fn advance(&mut self) -> Result<(), KvError> {
        let Some(block) = &self.block else { return Ok(()) };
        self.entry += 1;
        if self.entry == block.len() {
            self.block_index += 1;
            self.load().await?;
        }
        debug_assert!(
            self.block.as_ref().is_none_or(|block| self.entry < block.len()),
            "a cursor on a block points at one of its entries"
        );
        Ok(())
    }
}

enum Source {
    Memtable { table: Rc<Memtable>, head: Option<Entry> },
    Sst(SstCursor),
}

impl Source {
    fn peek(&self) -> Option<(&[u8], Option<&[u8]>)> {
        match self {
            Source::Memtable { head, .. } => {
                head.as_ref().map(|(key, value)| (key.as_slice(), value.as_deref()))
            }
            Source::Sst(cursor) => cursor.peek(),
        }
    }

    async fn advance(&mut self) -> Result<(), KvError> {
        match self {
            Source::Memtable { table, head } => {
                if let Some((key, _)) = head.take() {
                    *head = table
                        .seek(Bound::Excluded(&key))
                        .map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec)));
                }
                Ok(())
            }
            Source::Sst(cursor) => cursor.advance().await,
        }
    }
}

/// The merged, newest-wins walk over sources from a lower bound on.
pub(crate) struct MergeCursor {
    /// Newest first: on equal keys the earliest source wins.
    sources: Vec<Source>,
    /// The last key returned, kept in debug builds only: merged keys strictly increase.
    last_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for MergeCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeCursor").field("source_count", &self.sources.len()).finish()
    }
}

impl MergeCursor {
    /// Positions on the first key within `lower`. `memtables` are newer than `files`; each
    /// list is newest first. `use_cache`: read blocks through the block cache (scans and
    /// reads) or around it (flush and compaction, which would only evict hot blocks).
    pub(crate) async fn new(
        memtables: &[Rc<Memtable>],
        files: &[Rc<SstFile>],
        lower: Bound<&[u8]>,
        use_cache: bool,
    ) -> Result<Self, KvError> {
        let mut sources = Vec::with_capacity(memtables.len() + files.len());
        for table in memtables {
            let head =
                table.seek(lower).map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec)));
            sources.push(Source::Memtable { table: table.clone(), head });
        }
        for file in files {
            sources.push(Source::Sst(SstCursor::seek(file.clone(), lower, use_cache).await?));
        }
        Ok(Self { sources, last_key: None })
    }

    /// The next key's newest version, or `None` at the end.
    pub(crate) async fn next(&mut self) -> Result<Option<Entry>, KvError> {
        let mut newest: Option<(usize, &[u8])> = None;
        for (index, source) in self.sources.iter().enumerate() {
            if let Some((key, _)) = source.peek() {
                if newest.is_none_or(|(_, best)| key < best) {
                    newest = Some((index, key));
                }
            }
        }
        let Some((index, _)) = newest else { return Ok(None) };
        let entry = match self.sources[index].peek() {
            Some((key, value)) => (key.to_vec(), value.map(<[u8]>::to_vec)),
            None => return Ok(None),
        };
        for source in &mut self.sources {
            if source.peek().is_some_and(|(key, _)| key == entry.0.as_slice()) {
                source.advance().await?;
            }
        }
        // Each source's keys strictly increase (memtables are ordered maps, sorted files are
        // checked block by block when read), so the smallest head of all of them does too.
        if cfg!(debug_assertions) {
            let last_key = self.last_key.replace(entry.0.clone());
            debug_assert!(
                last_key.is_none_or(|last_key| last_key < entry.0),
                "merged keys strictly increase"
            );
        }
        Ok(Some(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_wins_and_keys_come_in_order() {
        let mut old = Memtable::default();
        old.put(b"a".to_vec(), Some(b"old".to_vec()));
        old.put(b"c".to_vec(), Some(b"old".to_vec()));
        let mut new = Memtable::default();
        new.put(b"a".to_vec(), None);
        new.put(b"b".to_vec(), Some(b"new".to_vec()));
        let tables = [Rc::new(new), Rc::new(old)];
        let entries = futures_lite_block_on(async {
            let mut cursor = MergeCursor::new(&tables, &[], Bound::Unbounded, true).await?;
            let mut entries = Vec::new();
            while let Some(entry) = cursor.next().await? {
                entries.push(entry);
            }
            Ok::<_, KvError>(entries)
        })
        .unwrap();
        assert_eq!(
            entries,
            vec![
                (b"a".to_vec(), None),
                (b"b".to_vec(), Some(b"new".to_vec())),
                (b"c".to_vec(), Some(b"old".to_vec())),
            ]
        );
    }

    /// Memtable-only cursors never wait, so one poll finishes them.
    fn futures_lite_block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        let mut future = std::pin::pin!(future);
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("memtable merge waited"),
        }
    }
}
