//! [`KvTablet`]: the latest value per key of a primary-key table's bucket, kept as an LSM
//! (memtable, frozen memtables, tiered levels of sorted files) in one directory.
//!
//! The KV has no write-ahead log of its own: its log is the table's changelog, owned by
//! the caller. [`KvTablet::apply`] puts mutations into the memtable and records the
//! changelog offset they reach; [`KvTablet::flush`] writes every frozen memtable to one
//! sorted file, makes it durable and only then replaces the manifest, whose
//! `snapshot_log_offset` tells the caller where to replay its changelog from after a crash.
//! [`KvTablet::open`] restores exactly the last manifest's state and deletes sorted files
//! it does not name (leftovers of a crash mid-flush or mid-compaction).
//!
//! Invariants: memtables (active, then frozen newest first) are newer than level 0, and
//! level `i` newer than level `i + 1` (see `compaction`); state changes that touch files
//! happen only after the manifest describing them is durable, under `manifest_lock`;
//! flushes are serialized by `flush_lock`, compactions by `compacting`; a file leaves the
//! directory only when no view holds it; after a failed fsync every call fails with
//! [`KvError::Poisoned`].

use std::cell::{Cell, RefCell};
use std::ops::Bound;
use std::rc::Rc;

use futures_util::future::join_all;
use glommio::sync::Semaphore;
use ufer_io::DataDir;

use crate::kv::cache::BlockCache;
use crate::kv::compaction::{level_to_compact, output_level};
use crate::kv::config::{
    KvConfig, KV_FROZEN_MEMTABLE_COUNT_MAX, KV_KEY_SIZE_MAX_BYTES, KV_LEVEL_COUNT_MAX,
    KV_VALUE_SIZE_MAX_BYTES,
};
use crate::kv::error::KvError;
use crate::kv::manifest::{Manifest, ManifestFile, MANIFEST_FILE_NAME};
use crate::kv::memtable::Memtable;
use crate::kv::merge::MergeCursor;
use crate::kv::sst::{parse_sst_file_name, sst_file_name, SstFile, SstWriter};
use crate::kv::view::{KvEntries, KvView, Sources};

/// Counters for write and space amplification, and the tablet's shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStats {
    /// Key and value bytes passed to `apply`.
    pub user_bytes_applied: u64,
    /// Bytes of sorted files written by flushes.
    pub flush_bytes_written: u64,
    /// Bytes of sorted files written by compactions.
    pub compaction_bytes_written: u64,
    /// Bytes of sorted files merged by compactions.
    pub compaction_bytes_read: u64,
    /// Flushes that wrote a file.
    pub flush_count: u64,
    /// Compactions done.
    pub compaction_count: u64,
    /// Live files per level (index = level).
    pub level_file_counts: Vec<usize>,
    /// Live file bytes per level.
    pub level_file_bytes: Vec<u64>,
    /// Entries in memtables and live files, counting shadowed versions and tombstones.
    pub live_entry_count_estimate: u64,
    /// Accounted bytes of the active and frozen memtables.
    pub memtable_bytes: usize,
    /// Frozen memtables not yet flushed.
    pub frozen_memtable_count: usize,
    /// Bytes held by the block cache (shared caches count every tablet's blocks).
    pub block_cache_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    active: Memtable,
    /// Oldest first; immutable, shared with views and the running flush.
    frozen: Vec<Rc<Memtable>>,
    /// Per level, newest first.
    levels: Vec<Vec<Rc<SstFile>>>,
    applied_log_offset: u64,
    snapshot_log_offset: u64,
    next_file_id: u64,
    /// Compacted-away files, deleted once no view holds them.
    obsolete: Vec<Rc<SstFile>>,
    stats: KvStats,
}

impl State {
    fn freeze_active(&mut self) {
        if !self.active.is_empty() {
            self.active.debug_assert_accounted();
            self.frozen.push(Rc::new(std::mem::take(&mut self.active)));
        }
    }

    /// Frozen memtables and files (not the active memtable), newest first.
    fn sources(&self) -> Sources {
        Sources {
            memtables: self.frozen.iter().rev().cloned().collect(),
            files: self.levels.iter().flatten().cloned().collect(),
        }
    }

    fn memtable_bytes(&self) -> usize {
        self.active.size_bytes() + self.frozen.iter().map(|table| table.size_bytes()).sum::<usize>()
    }
}

/// Clears the compaction flag however the compaction ends.
struct CompactingGuard<'a>(&'a Cell<bool>);

impl Drop for CompactingGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// The KV state of one bucket of a primary-key table. Single-threaded; methods take `&self`
/// so reads, applies, a flush and a compaction can interleave on one executor.
pub struct KvTablet {
    dir: DataDir,
    config: KvConfig,
    cache: Rc<BlockCache>,
    state: RefCell<State>,
    flush_lock: Semaphore,
    manifest_lock: Semaphore,
    compacting: Cell<bool>,
    poisoned: RefCell<Option<String>>,
}

impl std::fmt::Debug for KvTablet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvTablet")
            .field("dir", &self.dir.path())
            .field("applied_log_offset", &self.applied_log_offset())
            .field("snapshot_log_offset", &self.snapshot_log_offset())
            .finish_non_exhaustive()
    }
}

impl KvTablet {
    /// Opens (or creates) the tablet owning `dir`, with a block cache of its own.
    pub async fn open(dir: &DataDir, config: KvConfig) -> Result<KvTablet, KvError> {
        let cache = Rc::new(BlockCache::new(config.block_cache_size_max_bytes));
        Self::open_with_cache(dir, config, cache).await
    }

    /// Opens (or creates) the tablet owning `dir`, caching blocks in `cache` (which other
    /// tablets of the shard may share).
    pub async fn open_with_cache(
        dir: &DataDir,
        config: KvConfig,
        cache: Rc<BlockCache>,
    ) -> Result<KvTablet, KvError> {
        config.validate().map_err(KvError::Config)?;
        let manifest = match dir.read_file(MANIFEST_FILE_NAME).await? {
            Some(bytes) => Manifest::decode(&bytes)
                .map_err(|reason| KvError::corrupt(MANIFEST_FILE_NAME, reason))?,
            None => Manifest::default(),
        };
        let mut levels: Vec<Vec<Rc<SstFile>>> = Vec::new();
        for entry in &manifest.files {
            let file = SstFile::open(dir, entry.id, entry.size, cache.clone()).await?;
            let level = entry.level as usize;
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            levels[level].push(Rc::new(file));
        }
        for name in dir.list()? {
            let id = parse_sst_file_name(&name);
            if id.is_some_and(|id| !manifest.files.iter().any(|file| file.id == id)) {
                dir.remove(&name).await?;
            }
        }
        dir.sync().await?;
        let state = State {
            levels,
            applied_log_offset: manifest.snapshot_log_offset,
            snapshot_log_offset: manifest.snapshot_log_offset,
            next_file_id: manifest.next_file_id,
            ..State::default()
        };
        Ok(KvTablet {
            dir: dir.clone(),
            config,
            cache,
            state: RefCell::new(state),
            flush_lock: Semaphore::new(1),
            manifest_lock: Semaphore::new(1),
            compacting: Cell::new(false),
            poisoned: RefCell::new(None),
        })
    }

    /// The changelog offset the last durable snapshot covers (0 when new): after a reopen
    /// the caller replays its changelog from here.
    pub fn snapshot_log_offset(&self) -> u64 {
        self.state.borrow().snapshot_log_offset
    }

    /// The changelog offset everything applied so far reaches.
    pub fn applied_log_offset(&self) -> u64 {
        self.state.borrow().applied_log_offset
    }

    /// Applies mutations (`None` deletes) that the changelog holds up to `log_offset_end`.
    /// Offsets never go backwards; keys and values within the `KV_*_SIZE_MAX_BYTES` limits
    /// (callers validate first: violations are bugs and panic).
    pub fn apply(
        &self,
        log_offset_end: u64,
        mutations: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) {
        let mut state = self.state.borrow_mut();
        assert!(
            log_offset_end >= state.applied_log_offset,
            "log offset went back from {} to {log_offset_end}",
            state.applied_log_offset
        );
        for (key, value) in mutations {
            assert!(key.len() <= KV_KEY_SIZE_MAX_BYTES, "key of {} bytes", key.len());
            let value_size = value.as_ref().map_or(0, Vec::len);
            assert!(value_size <= KV_VALUE_SIZE_MAX_BYTES, "value of {value_size} bytes");
            state.stats.user_bytes_applied += (key.len() + value_size) as u64;
            state.active.put(key, value);
        }
        state.applied_log_offset = log_offset_end;
    }

    /// The key's current value.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.check_poisoned()?;
        let sources = {
            let state = self.state.borrow();
            if let Some(value) = state.active.get(key) {
                return Ok(value.map(<[u8]>::to_vec));
            }
            state.sources()
        };
        Ok(sources.get(key).await?.flatten())
    }

    /// The current values of `keys`, reading the blocks they need concurrently.
    pub async fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        self.check_poisoned()?;
        let mut values = vec![None; keys.len()];
        let mut pending = Vec::new();
        let sources = {
            let state = self.state.borrow();
            for (index, key) in keys.iter().enumerate() {
                match state.active.get(key) {
                    Some(value) => values[index] = value.map(<[u8]>::to_vec),
                    None => pending.push(index),
                }
            }
            state.sources()
        };
        let found = join_all(pending.iter().map(|index| sources.get(&keys[*index]))).await;
        for (index, value) in pending.into_iter().zip(found) {
            values[index] = value?.flatten();
        }
        Ok(values)
    }

    /// Up to `entry_count_max` live entries whose key starts with `prefix`, in key order.
    pub async fn scan_prefix(
        &self,
        prefix: &[u8],
        entry_count_max: usize,
    ) -> Result<KvEntries, KvError> {
        self.check_poisoned()?;
        let sources = {
            let mut state = self.state.borrow_mut();
            state.freeze_active();
            state.sources()
        };
        Ok(sources.scan(None, prefix, usize::MAX, entry_count_max).await?.0)
    }

    /// A consistent view of the current state (freezes the active memtable if it holds
    /// anything, so later applies go to a new one).
    pub fn read_view(&self) -> KvView {
        let mut state = self.state.borrow_mut();
        state.freeze_active();
        KvView::new(state.sources(), state.applied_log_offset)
    }

    /// True when memtables hold enough to flush (by bytes or by frozen memtable count).
    pub fn needs_flush(&self) -> bool {
        let state = self.state.borrow();
        state.memtable_bytes() >= self.config.memtable_size_max_bytes
            || state.frozen.len() >= KV_FROZEN_MEMTABLE_COUNT_MAX
    }

    /// Makes everything applied so far durable: writes the memtables to a sorted file,
    /// syncs it, then the manifest. Returns the new `snapshot_log_offset`. Applies and reads
    /// may continue meanwhile; flushes run one at a time. On failure the previous snapshot
    /// stays intact.
    pub async fn flush(&self) -> Result<u64, KvError> {
        self.check_poisoned()?;
        let result = self.flush_inner().await;
        self.poison_if_fatal(result)
    }

    async fn flush_inner(&self) -> Result<u64, KvError> {
        let _permit = self.flush_lock.acquire_permit(1).await.map_err(Self::lock_error)?;
        self.check_poisoned()?;
        // Views that held compacted-away files may be gone by now.
        self.remove_obsolete().await?;
        let (memtables, target) = {
            let mut state = self.state.borrow_mut();
            state.freeze_active();
            (state.frozen.clone(), state.applied_log_offset)
        };
        if memtables.is_empty() && target == self.snapshot_log_offset() {
            return Ok(target);
        }
        let newest_first: Vec<Rc<Memtable>> = memtables.iter().rev().cloned().collect();
        let output = if newest_first.is_empty() {
            None
        } else {
            let id = self.allocate_file_id();
            let mut cursor = MergeCursor::new(&newest_first, &[], Bound::Unbounded, false).await?;
            self.write_file(id, &mut cursor, false).await?
        };
        let installed = self
            .install(Some(target), |levels| {
                if let Some(file) = &output {
                    level_mut(levels, 0).insert(0, file.clone());
                }
            })
            .await;
        if let Err(error) = installed {
            self.discard(output).await;
            return Err(error);
        }
        let mut state = self.state.borrow_mut();
        let frozen_count = state.frozen.len();
        state.frozen.retain(|table| !memtables.iter().any(|flushed| Rc::ptr_eq(flushed, table)));
        // Only a flush removes frozen memtables, and flushes are serialized.
        assert_eq!(frozen_count - state.frozen.len(), memtables.len(), "flushed memtables leave");
        if let Some(file) = &output {
            state.stats.flush_count += 1;
            state.stats.flush_bytes_written += file.size();
        }
        Ok(target)
    }

    /// True when a level is full and no compaction is running.
    pub fn needs_compaction(&self) -> bool {
        !self.compacting.get() && self.level_to_compact().is_some()
    }

    /// Does one compaction if one is due. This and `flush` also delete compacted-away files
    /// that no view holds any more.
    /// Returns whether it compacted.
    pub async fn compact_step(&self) -> Result<bool, KvError> {
        self.check_poisoned()?;
        let result = self.compact_inner().await;
        self.poison_if_fatal(result)
    }

    fn level_to_compact(&self) -> Option<usize> {
        let state = self.state.borrow();
        let counts: Vec<usize> = state.levels.iter().map(Vec::len).collect();
        level_to_compact(&counts, self.config.level_file_count_max)
    }

    async fn compact_inner(&self) -> Result<bool, KvError> {
        self.remove_obsolete().await?;
        if self.compacting.get() {
            return Ok(false);
        }
        let Some(level) = self.level_to_compact() else { return Ok(false) };
        self.compacting.set(true);
        let _guard = CompactingGuard(&self.compacting);
        let (inputs, holds_oldest) = {
            let state = self.state.borrow();
            let deeper = state.levels.get(level + 1..).unwrap_or(&[]);
            (state.levels[level].clone(), deeper.iter().all(Vec::is_empty))
        };
        assert!(inputs.len() >= self.config.level_file_count_max, "a full level is merged");
        let id = self.allocate_file_id();
        let mut cursor = MergeCursor::new(&[], &inputs, Bound::Unbounded, false).await?;
        // Tombstones shadow nothing once no older file exists.
        let output = self.write_file(id, &mut cursor, holds_oldest).await?;
        let target = output_level(level);
        let installed = self
            .install(None, |levels| {
                let before = levels[level].len();
                levels[level].retain(|file| !inputs.iter().any(|input| Rc::ptr_eq(input, file)));
                assert_eq!(before - levels[level].len(), inputs.len(), "inputs left their level");
                if let Some(file) = &output {
                    level_mut(levels, target).insert(0, file.clone());
                }
            })
            .await;
        if let Err(error) = installed {
            self.discard(output).await;
            return Err(error);
        }
        {
            let mut state = self.state.borrow_mut();
            state.stats.compaction_count += 1;
            state.stats.compaction_bytes_written += output.as_ref().map_or(0, |file| file.size());
            state.stats.compaction_bytes_read += inputs.iter().map(|file| file.size()).sum::<u64>();
            state.obsolete.extend(inputs);
        }
        self.remove_obsolete().await?;
        Ok(true)
    }

    /// Amplification counters and the tablet's shape.
    pub fn stats(&self) -> KvStats {
        let state = self.state.borrow();
        let mut stats = state.stats.clone();
        stats.level_file_counts = state.levels.iter().map(Vec::len).collect();
        stats.level_file_bytes =
            state.levels.iter().map(|files| files.iter().map(|file| file.size()).sum()).collect();
        let file_entries: u64 = state.levels.iter().flatten().map(|file| file.entry_count()).sum();
        let memtable_entries: usize =
            state.active.len() + state.frozen.iter().map(|table| table.len()).sum::<usize>();
        stats.live_entry_count_estimate = file_entries + memtable_entries as u64;
        stats.memtable_bytes = state.memtable_bytes();
        stats.frozen_memtable_count = state.frozen.len();
        stats.block_cache_bytes = self.cache.size_bytes();
        stats
    }

    /// Closes the files. Does not flush: what was applied after the last flush is lost
    /// (the caller replays it from its changelog).
    pub async fn close(self) -> Result<(), KvError> {
        if self.poisoned.borrow().is_none() {
            self.remove_obsolete().await?;
        }
        let state = self.state.into_inner();
        for file in state.levels.into_iter().flatten().chain(state.obsolete) {
            if let Ok(file) = Rc::try_unwrap(file) {
                file.close().await?;
            }
        }
        Ok(())
    }

    /// The id the next sorted file will get.
    #[cfg(test)]
    pub(crate) fn next_file_id(&self) -> u64 {
        self.state.borrow().next_file_id
    }

    fn allocate_file_id(&self) -> u64 {
        let mut state = self.state.borrow_mut();
        let id = state.next_file_id;
        state.next_file_id += 1;
        id
    }

    /// Writes the cursor's entries to sorted file `id`, durable, and opens it; `None` if
    /// there was nothing to write. On failure no part of the file is left behind.
    async fn write_file(
        &self,
        id: u64,
        cursor: &mut MergeCursor,
        drop_tombstones: bool,
    ) -> Result<Option<Rc<SstFile>>, KvError> {
        let mut writer = None;
        let filled = self.fill(&mut writer, id, cursor, drop_tombstones).await;
        let Some(writer) = writer else { return filled.map(|()| None) };
        let name = writer.name().to_string();
        let opened = match filled {
            Ok(()) => match writer.finish().await {
                Ok(size) => SstFile::open(&self.dir, id, size, self.cache.clone()).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        match opened {
            Ok(file) => Ok(Some(Rc::new(file))),
            Err(error) => {
                let _ = self.dir.remove(&name).await;
                Err(error)
            }
        }
    }

    async fn fill(
        &self,
        writer: &mut Option<SstWriter>,
        id: u64,
        cursor: &mut MergeCursor,
        drop_tombstones: bool,
    ) -> Result<(), KvError> {
        while let Some((key, value)) = cursor.next().await? {
            if value.is_none() && drop_tombstones {
                continue;
            }
            let file = match writer {
                Some(file) => file,
                None => writer.insert(SstWriter::create(&self.dir, id, &self.config).await?),
            };
            file.add(&key, value.as_deref()).await?;
        }
        Ok(())
    }

    /// Deletes a written file that did not make it into a manifest.
    async fn discard(&self, file: Option<Rc<SstFile>>) {
        if let Some(file) = file {
            let name = sst_file_name(file.id());
            if let Ok(file) = Rc::try_unwrap(file) {
                let _ = file.close().await;
            }
            let _ = self.dir.remove(&name).await;
        }
    }

    /// Applies `edit` to the level lists, writes the resulting manifest (with
    /// `snapshot_log_offset`, or the current one) and only then makes it the state.
    async fn install(
        &self,
        snapshot_log_offset: Option<u64>,
        edit: impl FnOnce(&mut Vec<Vec<Rc<SstFile>>>),
    ) -> Result<(), KvError> {
        let _permit = self.manifest_lock.acquire_permit(1).await.map_err(Self::lock_error)?;
        self.check_poisoned()?;
        let (mut levels, snapshot_log_offset, next_file_id) = {
            let state = self.state.borrow();
            let offset = snapshot_log_offset.unwrap_or(state.snapshot_log_offset);
            assert!(offset >= state.snapshot_log_offset, "snapshots never go back");
            assert!(offset <= state.applied_log_offset, "a snapshot covers only what was applied");
            (state.levels.clone(), offset, state.next_file_id)
        };
        edit(&mut levels);
        while levels.last().is_some_and(Vec::is_empty) {
            levels.pop();
        }
        assert!(levels.len() <= KV_LEVEL_COUNT_MAX, "{} levels", levels.len());
        let files = levels
            .iter()
            .enumerate()
            .flat_map(|(level, files)| {
                files.iter().map(move |file| ManifestFile {
                    level: level as u32,
                    id: file.id(),
                    size: file.size(),
                })
            })
            .collect();
        let manifest = Manifest { snapshot_log_offset, next_file_id, files };
        self.dir.replace_file(MANIFEST_FILE_NAME, &manifest.encode()).await?;
        let mut state = self.state.borrow_mut();
        state.levels = levels;
        state.snapshot_log_offset = snapshot_log_offset;
        Ok(())
    }

    /// Deletes compacted-away files that no view holds any more.
    async fn remove_obsolete(&self) -> Result<(), KvError> {
        let free: Vec<Rc<SstFile>> = {
            let mut state = self.state.borrow_mut();
            let (free, held) = std::mem::take(&mut state.obsolete)
                .into_iter()
                .partition(|file| Rc::strong_count(file) == 1);
            state.obsolete = held;
            free
        };
        for file in free {
            let name = sst_file_name(file.id());
            // Views take files only from the levels, so no one took a freed file since.
            let file = Rc::try_unwrap(file);
            assert!(file.is_ok(), "a file leaves the directory only when no view holds it");
            if let Ok(file) = file {
                file.close().await?;
            }
            self.dir.remove(&name).await?;
        }
        Ok(())
    }

    fn check_poisoned(&self) -> Result<(), KvError> {
        match self.poisoned.borrow().as_ref() {
            Some(reason) => Err(KvError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn poison_if_fatal<T>(&self, result: Result<T, KvError>) -> Result<T, KvError> {
        if let Err(KvError::Io(error)) = &result {
            if error.is_fatal() {
                self.poisoned.borrow_mut().get_or_insert_with(|| error.to_string());
            }
        }
        result
    }

    fn lock_error(error: glommio::GlommioError<()>) -> KvError {
        KvError::Poisoned(format!("lock closed: {error}"))
    }
}

fn level_mut(levels: &mut Vec<Vec<Rc<SstFile>>>, level: usize) -> &mut Vec<Rc<SstFile>> {
    if levels.len() <= level {
        levels.resize_with(level + 1, Vec::new);
    }
    &mut levels[level]
}
