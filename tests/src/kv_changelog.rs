//! The deterministic changelog of the KV crash test: the mutation at every offset is a
//! function of the offset, so the child replays it after a restart and the test rebuilds the
//! expected state of any prefix without either side storing a log.

use std::collections::BTreeMap;

use ufer_shard::KvConfig;

use crate::rng::Rng;

/// Distinct keys the changelog touches, so keys are overwritten and deleted often.
pub const KV_CRASH_KEY_COUNT: u64 = 400;

/// The KV configuration of the crash test (child and checker): tiny, so kills land in
/// flushes, compactions and manifest replacements.
pub fn kv_crash_config() -> KvConfig {
    KvConfig { memtable_size_max_bytes: 4096, ..KvConfig::test_min() }
}

/// The mutation at changelog offset `offset` (offsets start at 1): a put, or every seventh
/// a delete.
pub fn kv_mutation(offset: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut rng = Rng::new(offset);
    let key = format!("key-{:04}", rng.in_range(0..KV_CRASH_KEY_COUNT)).into_bytes();
    if rng.in_range(0..7) == 0 {
        return (key, None);
    }
    let filler = rng.in_range(0..40) as usize;
    (key, Some(format!("value-{offset}-{}", "x".repeat(filler)).into_bytes()))
}

/// The state after applying offsets `1..=offset`.
pub fn kv_state_at(offset: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut state = BTreeMap::new();
    for offset in 1..=offset {
        match kv_mutation(offset) {
            (key, Some(value)) => state.insert(key, value),
            (key, None) => state.remove(&key),
        };
    }
    state
}
