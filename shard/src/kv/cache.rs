//! [`BlockCache`]: verified, decoded data blocks kept in memory (there is no page cache
//! under direct I/O), least recently used evicted first, bounded in bytes.
//!
//! One cache may be shared (`Rc`) by every KV tablet of a shard: each opened file takes a
//! cache-wide unique key ([`BlockCache::file_key`]), so tablets never see each other's
//! blocks, and a deleted file's blocks are simply never hit again and age out.
//! Invariant: `size_bytes <= capacity_bytes`, and `size_bytes` is the sum of the accounted
//! sizes of the cached blocks.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::kv::block::Block;

/// Accounted bookkeeping per cached block beyond its own bytes.
pub const BLOCK_CACHE_ENTRY_OVERHEAD_BYTES: usize = 96;

type BlockKey = (u64, u64);

#[derive(Debug, Default)]
struct CacheState {
    blocks: HashMap<BlockKey, (Rc<Block>, u64)>,
    /// Last use → key; the first entry is the least recently used.
    by_use: BTreeMap<u64, BlockKey>,
    size_bytes: usize,
    use_counter: u64,
    hit_count: u64,
    miss_count: u64,
}

impl CacheState {
    /// Takes a removed block's accounted bytes off `size_bytes`.
    fn release(&mut self, size: usize) {
        assert!(size <= self.size_bytes, "a cached block's bytes were counted when inserted");
        self.size_bytes -= size;
    }

    /// The sum the invariant says `size_bytes` equals, recounted.
    fn accounted_size_bytes(&self) -> usize {
        let sizes = self.blocks.values().map(|(block, _)| block.size_bytes());
        sizes.map(|size| size + BLOCK_CACHE_ENTRY_OVERHEAD_BYTES).sum()
    }
}

/// An LRU cache of decoded blocks, keyed by (file key, block offset).
#[derive(Debug)]
pub struct BlockCache {
    capacity_bytes: usize,
    state: RefCell<CacheState>,
    next_file_key: Cell<u64>,
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of blocks (0: caches nothing).
    pub fn new(capacity_bytes: usize) -> Self {
        Self { capacity_bytes, state: RefCell::default(), next_file_key: Cell::new(0) }
    }

    /// Bytes held now.
    pub fn size_bytes(&self) -> usize {
        let size = self.state.borrow().size_bytes;
        assert!(size <= self.capacity_bytes, "the cache holds {size} bytes, over its budget");
        size
    }

    /// The bound on [`BlockCache::size_bytes`].
    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Lookups that found / did not find their block.
    pub fn hit_and_miss_counts(&self) -> (u64, u64) {
        let state = self.state.borrow();
        (state.hit_count, state.miss_count)
    }

    /// A key no other file of this cache uses.
    pub(crate) fn file_key(&self) -> u64 {
        let key = self.next_file_key.get();
        self.next_file_key.set(key + 1);
        key
    }

    pub(crate) fn get(&self, file_key: u64, offset: u64) -> Option<Rc<Block>> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        state.use_counter += 1;
        let now = state.use_counter;
        let Some((block, last_use)) = state.blocks.get_mut(&(file_key, offset)) else {
            state.miss_count += 1;
            return None;
        };
        state.hit_count += 1;
        let used = state.by_use.remove(last_use);
        assert_eq!(used, Some((file_key, offset)), "the use order lists every cached block");
        *last_use = now;
        state.by_use.insert(now, (file_key, offset));
        Some(block.clone())
    }

    pub(crate) fn insert(&self, file_key: u64, offset: u64, block: Rc<Block>) {
        let size = block.size_bytes() + BLOCK_CACHE_ENTRY_OVERHEAD_BYTES;
        if size > self.capacity_bytes {
            return;
        }
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        state.use_counter += 1;
        let now = state.use_counter;
        if let Some((old, last_use)) = state.blocks.insert((file_key, offset), (block, now)) {
            let used = state.by_use.remove(&last_use);
            assert_eq!(used, Some((file_key, offset)), "the use order lists every cached block");
            state.release(old.size_bytes() + BLOCK_CACHE_ENTRY_OVERHEAD_BYTES);
        }
        state.by_use.insert(now, (file_key, offset));
        state.size_bytes += size;
        while state.size_bytes > self.capacity_bytes {
            let Some((_, key)) = state.by_use.pop_first() else { break };
            let evicted = state.blocks.remove(&key);
            assert!(evicted.is_some(), "every block in the use order is cached");
            if let Some((evicted, _)) = evicted {
                state.release(evicted.size_bytes() + BLOCK_CACHE_ENTRY_OVERHEAD_BYTES);
            }
        }
        assert!(state.size_bytes <= self.capacity_bytes, "size_bytes <= capacity_bytes");
        assert_eq!(state.blocks.len(), state.by_use.len(), "one use entry per cached block");
        debug_assert_eq!(
            state.size_bytes,
            state.accounted_size_bytes(),
            "size_bytes is the sum of the cached blocks' accounted sizes"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::block::BlockBuilder;

    fn block(value_size: usize) -> Rc<Block> {
        let mut builder = BlockBuilder::new();
        builder.add(b"k", Some(&vec![7; value_size]));
        Rc::new(Block::decode(&builder.finish().0).unwrap())
    }

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let one = block(100).size_bytes() + BLOCK_CACHE_ENTRY_OVERHEAD_BYTES;
        let cache = BlockCache::new(3 * one);
        let file = cache.file_key();
        assert_ne!(file, cache.file_key());
        for offset in 0..3 {
            cache.insert(file, offset, block(100));
        }
        assert_eq!(cache.size_bytes(), 3 * one);
        assert!(cache.get(file, 0).is_some()); // now 1 is the least recently used
        cache.insert(file, 3, block(100));
        assert!(cache.get(file, 1).is_none());
        assert!(cache.get(file, 0).is_some());
        assert!(cache.get(file, 2).is_some());
        assert!(cache.get(file, 3).is_some());
        assert_eq!(cache.size_bytes(), 3 * one);
        // A block larger than the whole cache is not cached and evicts nothing.
        cache.insert(file, 9, block(10 * one));
        assert!(cache.get(file, 9).is_none());
        assert_eq!(cache.size_bytes(), 3 * one);
        // One big block evicts as many small ones as needed.
        cache.insert(file, 10, block(one + 100));
        assert!(cache.size_bytes() <= 3 * one);
        assert!(cache.get(file, 10).is_some());
        assert_eq!(cache.hit_and_miss_counts().1, 2);
    }
}
