//! [`FileContents`]: one file's bytes in two layers — what reads see now (*live*) and what
//! survives a power cut (*durable*) — and how a sync, a failed sync and a power cut move
//! bytes between them.
//!
//! Invariants (checked by [`FileContents::assert_consistent`] in the tests): a live byte
//! differs from the durable byte at the same position only inside a *dirty* block (written
//! since the last sync), a *lost* block (written, then given up by a failed sync), past the
//! smallest size the file was cut to since the last sync, or past the durable size; live
//! bytes past both the durable size and that cut that lie in no dirty or lost block are the
//! zeros of an extension (`set_len`, `fallocate`, a write past the end). Dirty and lost
//! blocks never overlap.

use std::collections::BTreeSet;

use crate::rng::Rng;

/// The block size of the model: what a torn write keeps or drops as a whole, and the unit
/// of dirty and lost tracking (the page size, and the block size of ext4 and of O_DIRECT).
pub const BLOCK_SIZE_BYTES: u64 = 4096;

/// What a power cut keeps of the bytes a file had not made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Nothing: every file is exactly as it was at its last successful sync.
    Clean,
    /// For each file, a random prefix of the bytes appended past its durable size, ending
    /// at a block boundary or at the end of what was written (a torn append). Bytes before
    /// the durable size keep their durable values.
    TornPrefix {
        /// Seeds the choice of each file's prefix.
        seed: u64,
    },
    /// For each file, each block written since its last sync kept or dropped at random,
    /// independently (a device that wrote some of a flush's blocks, in any order). A
    /// dropped block past the durable size that lies before a kept one reads as zeros (an
    /// allocated block never written).
    TornBlocks {
        /// Seeds the choice of each block.
        seed: u64,
    },
}

/// One regular file's bytes.
#[derive(Clone, Debug, Default)]
pub struct FileContents {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Blocks written since the last successful sync.
    dirty: BTreeSet<u64>,
    /// The smallest size the file was cut to since the last successful sync.
    shrunk_to: Option<u64>,
    /// Blocks a failed sync gave up on: Linux marks such pages clean, so a later sync
    /// succeeds without writing them. They become dirty again when written again.
    lost: BTreeSet<u64>,
}

impl FileContents {
    /// What reads see.
    pub fn live(&self) -> &[u8] {
        &self.live
    }

    /// What a clean power cut would leave.
    pub fn durable(&self) -> &[u8] {
        &self.durable
    }

    /// Bytes held in memory for this file (both layers).
    pub fn stored_size(&self) -> u64 {
        (self.live.len() + self.durable.len()) as u64
    }

    /// Up to `size` live bytes at `offset` (fewer at the end of the file).
    pub fn read(&self, offset: u64, size: usize) -> &[u8] {
        let start = (offset as usize).min(self.live.len());
        let end = start.saturating_add(size).min(self.live.len());
        &self.live[start..end]
    }

    /// Writes `data` at `offset`, extending the file with zeros first if it starts past
    /// the end.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let start = offset as usize;
        let end = start + data.len();
        if self.live.len() < end {
            self.live.resize(end, 0);
        }
        self.live[start..end].copy_from_slice(data);
        let first = offset / BLOCK_SIZE_BYTES;
        let last = (end as u64 - 1) / BLOCK_SIZE_BYTES;
        for block in first..=last {
            self.lost.remove(&block);
            self.dirty.insert(block);
        }
    }

    /// Cuts the file to `size` bytes or extends it with zeros.
    pub fn set_size(&mut self, size: u64) {
        let size_usize = size as usize;
        if size_usize < self.live.len() {
            self.live.truncate(size_usize);
            self.shrunk_to = Some(self.shrunk_to.map_or(size, |shrunk| shrunk.min(size)));
            // Pages wholly past the new end are gone, and with them any lost write-back.
            self.lost.retain(|block| block * BLOCK_SIZE_BYTES < size);
        } else {
            self.live.resize(size_usize, 0);
        }
    }

    /// A successful fsync or fdatasync: the live size and every dirty block become durable.
    /// Lost blocks stay as they were on the device.
    pub fn sync(&mut self) {
        if let Some(shrunk) = self.shrunk_to.take() {
            self.durable.truncate(shrunk as usize);
        }
        self.durable.resize(self.live.len(), 0);
        for block in std::mem::take(&mut self.dirty) {
            let (start, end) = self.block_range(block);
            if start < end {
                self.durable[start..end].copy_from_slice(&self.live[start..end]);
            }
        }
    }

    /// A failed fsync: nothing more becomes durable, and the blocks it was to write are
    /// given up (a later successful sync does not write them).
    pub fn fail_sync(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        self.lost.extend(dirty);
    }

    /// A power cut: the file becomes what `cut` keeps, in both layers.
    pub fn power_cut(&mut self, cut: Cut, rng: &mut Rng) {
        let kept = match cut {
            Cut::Clean => self.durable.clone(),
            Cut::TornPrefix { .. } => self.torn_prefix(rng),
            Cut::TornBlocks { .. } => self.torn_blocks(rng),
        };
        self.live = kept.clone();
        self.durable = kept;
        self.dirty.clear();
        self.lost.clear();
        self.shrunk_to = None;
    }

    /// The durable bytes followed by a random prefix of the live bytes past them, ending at
    /// a block boundary or where the written bytes (up to the first lost block) end.
    fn torn_prefix(&self, rng: &mut Rng) -> Vec<u8> {
        let durable_size = self.durable.len() as u64;
        let first_lost = self
            .lost
            .iter()
            .map(|block| block * BLOCK_SIZE_BYTES)
            .find(|start| start + BLOCK_SIZE_BYTES > durable_size);
        let limit = first_lost.map_or(self.live.len() as u64, |start| start.max(durable_size));
        let limit = limit.min(self.live.len() as u64);
        if limit <= durable_size {
            return self.durable.clone();
        }
        // Candidates: the durable size, every block boundary strictly between it and the
        // limit, and the limit.
        let first_boundary = (durable_size / BLOCK_SIZE_BYTES + 1) * BLOCK_SIZE_BYTES;
        let boundaries = if first_boundary < limit {
            (limit - first_boundary - 1) / BLOCK_SIZE_BYTES + 1
        } else {
            0
        };
        let pick = rng.in_range(0..boundaries + 2);
        let end = match pick {
            0 => durable_size,
            pick if pick <= boundaries => first_boundary + (pick - 1) * BLOCK_SIZE_BYTES,
            _ => limit,
        };
        let mut kept = self.durable.clone();
        kept.extend_from_slice(&self.live[durable_size as usize..end as usize]);
        kept
    }

    /// The durable bytes with each dirty block's live bytes laid over them or not, at
    /// random.
    fn torn_blocks(&self, rng: &mut Rng) -> Vec<u8> {
        let mut kept = self.durable.clone();
        for &block in &self.dirty {
            let (start, end) = self.block_range(block);
            if start >= end || rng.in_range(0..2) == 0 {
                continue;
            }
            if kept.len() < end {
                kept.resize(end, 0);
            }
            kept[start..end].copy_from_slice(&self.live[start..end]);
        }
        kept
    }

    /// The live byte range of `block` (empty if it lies past the end).
    fn block_range(&self, block: u64) -> (usize, usize) {
        let start = (block * BLOCK_SIZE_BYTES) as usize;
        let end = start + BLOCK_SIZE_BYTES as usize;
        (start.min(self.live.len()), end.min(self.live.len()))
    }

    /// Asserts the invariants in the module docs.
    #[cfg(test)]
    pub fn assert_consistent(&self) {
        assert!(self.dirty.is_disjoint(&self.lost), "dirty and lost blocks never overlap");
        let cut = self.shrunk_to.unwrap_or(u64::MAX) as usize;
        for (position, &byte) in self.live.iter().enumerate() {
            let block = position as u64 / BLOCK_SIZE_BYTES;
            if self.dirty.contains(&block) || self.lost.contains(&block) {
                continue;
            }
            let expected = if position < cut { self.durable.get(position).copied() } else { None };
            assert_eq!(
                byte,
                expected.unwrap_or(0),
                "live byte {position} is neither durable nor written since the last sync"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = BLOCK_SIZE_BYTES as usize;

    fn filled(size: usize, byte: u8) -> Vec<u8> {
        vec![byte; size]
    }

    #[test]
    fn a_sync_makes_the_live_bytes_durable_and_a_clean_cut_keeps_only_those() {
        let mut file = FileContents::default();
        file.write(0, &filled(5000, 1));
        file.sync();
        file.write(5000, &filled(3000, 2));
        file.assert_consistent();
        assert_eq!(file.durable(), &filled(5000, 1)[..]);
        file.power_cut(Cut::Clean, &mut Rng::new(1));
        assert_eq!(file.live(), &filled(5000, 1)[..]);
        file.assert_consistent();
    }

    #[test]
    fn a_shrink_then_a_regrowth_syncs_to_zeros_not_to_the_old_bytes() {
        let mut file = FileContents::default();
        file.write(0, &filled(2 * BLOCK, 7));
        file.sync();
        file.set_size(10);
        file.set_size(2 * BLOCK as u64);
        file.assert_consistent();
        file.sync();
        let mut expected = filled(10, 7);
        expected.resize(2 * BLOCK, 0);
        assert_eq!(file.durable(), &expected[..]);
    }

    #[test]
    fn a_torn_prefix_ends_on_a_block_boundary_or_at_the_end_of_what_was_written() {
        for seed in 0..200 {
            let mut file = FileContents::default();
            file.write(0, &filled(1000, 1));
            file.sync();
            file.write(1000, &filled(3 * BLOCK, 2));
            let live = file.live().to_vec();
            file.power_cut(Cut::TornPrefix { seed }, &mut Rng::new(seed));
            let kept = file.live();
            assert_eq!(&kept[..1000], &filled(1000, 1)[..], "the durable bytes stay");
            assert_eq!(kept, &live[..kept.len()], "a prefix of what was written");
            let size = kept.len() as u64;
            assert!(
                size == 1000 || size == live.len() as u64 || size.is_multiple_of(BLOCK_SIZE_BYTES),
                "cut at {size}"
            );
        }
    }

    #[test]
    fn torn_blocks_keep_some_written_blocks_and_zeros_elsewhere() {
        let mut seen_sizes = BTreeSet::new();
        for seed in 0..100 {
            let mut file = FileContents::default();
            file.write(0, &filled(4 * BLOCK, 3));
            file.power_cut(Cut::TornBlocks { seed }, &mut Rng::new(seed));
            for block in file.live().chunks(BLOCK) {
                assert!(block.iter().all(|&byte| byte == 3) || block.iter().all(|&byte| byte == 0));
            }
            seen_sizes.insert(file.live().len());
        }
        assert!(seen_sizes.len() > 2, "different blocks kept: {seen_sizes:?}");
    }

    #[test]
    fn after_a_failed_sync_a_later_sync_does_not_write_the_given_up_blocks() {
        let mut file = FileContents::default();
        file.write(0, &filled(BLOCK, 1));
        file.fail_sync();
        file.write(BLOCK as u64, &filled(BLOCK, 2));
        file.sync();
        file.assert_consistent();
        assert_eq!(file.live()[..BLOCK], filled(BLOCK, 1)[..], "reads still see the data");
        assert_eq!(file.durable()[..BLOCK], filled(BLOCK, 0)[..], "the device never got it");
        assert_eq!(file.durable()[BLOCK..], filled(BLOCK, 2)[..]);
        file.write(0, &filled(BLOCK, 4));
        file.sync();
        assert_eq!(file.durable()[..BLOCK], filled(BLOCK, 4)[..], "written again, then synced");
    }

    #[test]
    fn random_operations_keep_the_invariants() {
        for seed in 0..50 {
            let mut rng = Rng::new(seed);
            let mut file = FileContents::default();
            for _ in 0..60 {
                match rng.in_range(0..6) {
                    0 | 1 => {
                        let offset = rng.in_range(0..5 * BLOCK_SIZE_BYTES);
                        let size = rng.in_range(1..2 * BLOCK_SIZE_BYTES) as usize;
                        file.write(offset, &filled(size, rng.in_range(1..255) as u8));
                    }
                    2 => file.set_size(rng.in_range(0..6 * BLOCK_SIZE_BYTES)),
                    3 => file.sync(),
                    4 => file.fail_sync(),
                    _ => {
                        let cut = match rng.in_range(0..3) {
                            0 => Cut::Clean,
                            1 => Cut::TornPrefix { seed },
                            _ => Cut::TornBlocks { seed },
                        };
                        file.power_cut(cut, &mut rng);
                    }
                }
                file.assert_consistent();
            }
        }
    }
}
