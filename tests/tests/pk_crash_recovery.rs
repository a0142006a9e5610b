//! Crash test of a primary-key bucket: a child process upserts and deletes with `acks=all`
//! from several tasks, writes to the same keys in flight together, and reports each write
//! before sending it and once it is acknowledged; it is killed with SIGKILL at random
//! moments (in flushes, compactions and recovery too), again and again on the same bucket.
//! After every kill the bucket reopens and:
//! - every key holds the value of a write no acknowledged write is known to follow: a write
//!   sent after another was acknowledged comes after it, so once that later write is
//!   acknowledged the earlier one can no longer be the key's value (an acknowledged delete
//!   that changed nothing because of a delete not yet durable must not see the key back),
//! - every acknowledged upsert is in the changelog exactly once, and no write appears twice,
//! - the KV equals the changelog replayed from the beginning.
//!
//! Every third kill lands the moment the child reports a write acknowledged that changed
//! nothing (a delete of a key another write just deleted): its answer must wait for that
//! other write's fdatasync, so the kill finds it durable.
//!
//! 20 kills by default; `UFER_TEST_MULTIPLIER=N` runs N times as many.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use ufer_shard::pk_bucket::{LookupBy, PkBucket};
use ufer_shard::{Clock, LogTablet, ReadRequest, SystemClock};
use ufer_tests::pk;
use ufer_tests::rng::Rng;
use ufer_wire::{BatchOptions, ChangeType, LogBatch, LogBatchBuilder, WriterStamp};

/// One write as the child reported it, in the order of its output lines (across runs).
#[derive(Clone, Copy, Debug)]
struct Write {
    /// The value (negative: a delete).
    value: i64,
    /// When it was sent.
    sent: u64,
    /// When it was acknowledged; `None` if it never was.
    acked: Option<u64>,
    /// The latest it can have been appended: its acknowledgement, else the end of its run.
    done: u64,
}

/// The writes of one key, in the order they were sent.
#[derive(Clone, Debug, Default)]
struct KeyState {
    writes: Vec<Write>,
}

impl KeyState {
    /// Whether the key may hold `stored` (`None`: no row): the value of a write (or the
    /// empty start) that no acknowledged write is known to follow. A write sent after
    /// another was done (acknowledged, or its run killed) comes after it in the changelog.
    fn allows(&self, stored: Option<i64>) -> bool {
        let followed =
            |done: u64| self.writes.iter().any(|later| later.acked.is_some() && later.sent > done);
        let start = stored.is_none() && !followed(0);
        start
            || self.writes.iter().any(|write| {
                let matches =
                    if write.value < 0 { stored.is_none() } else { stored == Some(write.value) };
                matches && !followed(write.done)
            })
    }
}

#[test]
fn every_acknowledged_upsert_survives_sigkill_once() {
    let dir = tempfile::tempdir().unwrap();
    let seed =
        std::env::var("UFER_CRASH_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(0x9E7);
    let mut rng = Rng::new(seed);
    let mut keys: BTreeMap<i64, KeyState> = BTreeMap::new();
    let mut acked_values: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut clock = 0u64;
    let kills = ufer_tests::iterations(20);
    for kill in 0..kills {
        let kill_on = (kill % 3 == 2).then_some(" unchanged");
        let lines = run_and_kill(dir.path(), (seed << 8) | kill, &mut rng, kill_on);
        for line in lines {
            clock += 1;
            let mut parts = line.split(' ');
            let (Some(kind), Some(key), Some(value)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(key), Ok(value)) = (key.parse::<i64>(), value.parse::<i64>()) else {
                continue;
            };
            let state = keys.entry(key).or_default();
            match kind {
                "S" => state.writes.push(Write { value, sent: clock, acked: None, done: u64::MAX }),
                "A" => {
                    let write = state.writes.iter_mut().find(|write| write.value == value);
                    let write = write.unwrap_or_else(|| panic!("{key}={value} acked, never sent"));
                    write.acked = Some(clock);
                    write.done = clock;
                    acked_values.insert((key, value));
                }
                _ => {}
            }
        }
        // What was in flight at this kill was appended before it, if at all.
        clock += 1;
        for write in keys.values_mut().flat_map(|state| state.writes.iter_mut()) {
            write.done = write.done.min(clock);
        }
        let path = dir.path().to_path_buf();
        let expected = keys.clone();
        let acked = acked_values.clone();
        ufer_tests::run_on_executor(move || async move { check(&path, &expected, &acked).await })
            .unwrap_or_else(|problem| panic!("after kill {kill} (seed {seed:#x}): {problem}"));
        // What was in flight at this kill is either stored or not; the next run starts
        // from whichever it is, so a later check accepts both.
    }
    assert!(acked_values.len() as u64 > kills, "the child made progress: {}", acked_values.len());
}

/// Runs the upserter, kills it (at once on a line containing `kill_on`, if given), and
/// returns its output lines.
fn run_and_kill(
    dir: &std::path::Path,
    child_seed: u64,
    rng: &mut Rng,
    kill_on: Option<&str>,
) -> Vec<String> {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_ufer_crash_upserter"));
    let args = [dir.display().to_string(), child_seed.to_string()];
    ufer_tests::child::run_and_kill_on(program, &args, 400, rng, kill_on)
}

async fn check(
    dir: &std::path::Path,
    keys: &BTreeMap<i64, KeyState>,
    acked: &BTreeSet<(i64, i64)>,
) -> Result<(), String> {
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let bucket = pk::open_bucket(dir, clock).await.map_err(|error| format!("open: {error}"))?;
    let Replayed { replayed, seen } = replay_changelog(bucket.log()).await?;
    for (key, value) in acked.iter().filter(|(_, value)| *value >= 0) {
        if !seen.contains(&(*key, *value)) {
            return Err(format!("acknowledged write {key}={value} is not in the changelog"));
        }
    }
    // Lookups: every key at its acknowledged value or a later one in flight at the kill.
    let stored = look_up(&bucket, keys).await?;
    if stored != replayed {
        return Err(format!(
            "the KV differs from the changelog replayed: {} vs {} keys",
            stored.len(),
            replayed.len()
        ));
    }
    for (key, state) in keys {
        let now = stored.get(key).copied();
        if !state.allows(now) {
            return Err(format!("key {key} is {now:?}; its writes: {:?}", state.writes));
        }
    }
    bucket.close().await.map_err(|error| format!("close: {error}"))?;
    Ok(())
}

/// The changelog replayed from the beginning.
struct Replayed {
    /// Each key's value.
    replayed: BTreeMap<i64, i64>,
    /// Every (key, value) written.
    seen: BTreeSet<(i64, i64)>,
}

/// Replays the changelog `log` from its beginning, which must still be there; every value at
/// most once.
async fn replay_changelog(log: &LogTablet) -> Result<Replayed, String> {
    let mut replayed: BTreeMap<i64, i64> = BTreeMap::new();
    let mut seen: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut offset = log.log_start_offset();
    if offset != 0 {
        return Err(format!("the changelog lost its start: {offset}"));
    }
    let decoder = ufer_wire::BatchDecoder::new(pk::schema());
    while offset < log.high_watermark() {
        let read =
            log.read(ReadRequest::new(offset, 1 << 20)).await.map_err(|error| error.to_string())?;
        for chunk in &read.chunks {
            let mut bytes = chunk.as_bytes();
            while !bytes.is_empty() {
                let length = LogBatch::parse(bytes).map_err(|error| error.to_string())?.len();
                let decoded = decoder
                    .decode(&ufer_wire::aligned_copy(&bytes[..length]))
                    .map_err(|error| error.to_string())?;
                let ids = column(&decoded.record_batch, 0);
                let values = column(&decoded.record_batch, 1);
                for row in 0..decoded.record_batch.num_rows() {
                    let key = ids.value(row);
                    match decoded.change_type(row) {
                        ChangeType::Insert | ChangeType::UpdateAfter => {
                            let value = values.value(row);
                            if !seen.insert((key, value)) {
                                return Err(format!(
                                    "key {key} value {value} is in the changelog twice"
                                ));
                            }
                            replayed.insert(key, value);
                        }
                        ChangeType::Delete => {
                            if replayed.remove(&key).is_none() {
                                return Err(format!("-D of missing key {key}"));
                            }
                        }
                        ChangeType::UpdateBefore => {}
                        ChangeType::AppendOnly => return Err("+A in a changelog".into()),
                    }
                }
                bytes = &bytes[length..];
            }
        }
        offset = read.next_offset;
    }
    Ok(Replayed { replayed, seen })
}

/// Each of `keys` the bucket has, with its value, looked up in one request.
async fn look_up(
    bucket: &Rc<PkBucket>,
    keys: &BTreeMap<i64, KeyState>,
) -> Result<BTreeMap<i64, i64>, String> {
    let key_schema = bucket.key_schema().clone();
    let ids: Vec<i64> = keys.keys().copied().collect();
    let key_batch = RecordBatch::try_new(
        key_schema.arrow().clone(),
        vec![Arc::new(Int64Array::from(ids.clone()))],
    )
    .unwrap();
    let bytes = LogBatchBuilder::new(key_schema, BatchOptions::default())
        .unwrap()
        .build(&key_batch, None, WriterStamp::NONE)
        .unwrap();
    let found =
        bucket.lookup(&bytes, LookupBy::Key, None).await.map_err(|error| error.to_string())?;
    let mut stored: BTreeMap<i64, i64> = BTreeMap::new();
    if let Some(rows) = &found.rows {
        let values = column(rows, 1);
        for (row, index) in found.key_index.iter().enumerate() {
            stored.insert(ids[*index as usize], values.value(row));
        }
    }
    Ok(stored)
}

fn column(batch: &RecordBatch, index: usize) -> &Int64Array {
    batch.column(index).as_any().downcast_ref::<Int64Array>().unwrap()
}
