//! Crash test of a primary-key bucket: a child process upserts and deletes with `acks=all`
//! and reports each write before sending it and once it is durable; it is killed with
//! SIGKILL at random moments (in flushes, compactions and recovery too), again and again on
//! the same bucket. After every kill the bucket reopens and:
//! - every acknowledged write is visible to lookups (or the key's next write, in flight at
//!   the kill, replaced it),
//! - every acknowledged write is in the changelog exactly once, and no write appears twice,
//! - the KV equals the changelog replayed from the beginning.
//!
//! 20 kills by default; `UFER_TEST_MULTIPLIER=N` runs N times as many.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use ufer_shard::pk_bucket::LookupBy;
use ufer_shard::{Clock, ReadRequest, SystemClock};
use ufer_tests::pk;
use ufer_tests::rng::Rng;
use ufer_wire::{BatchOptions, ChangeType, LogBatch, LogBatchBuilder, WriterStamp};

/// What the test knows of one key: the last acknowledged value (-1 deleted, `None` never
/// acknowledged) and the values sent after it, any of which a kill may have made durable.
#[derive(Clone, Debug, Default)]
struct KeyState {
    acked: Option<i64>,
    in_flight: Vec<i64>,
}

#[test]
fn every_acknowledged_upsert_survives_sigkill_once() {
    let dir = tempfile::tempdir().unwrap();
    let seed =
        std::env::var("UFER_CRASH_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(0x9E7);
    let mut rng = Rng::new(seed);
    let mut keys: BTreeMap<i64, KeyState> = BTreeMap::new();
    let mut acked_values: BTreeSet<(i64, i64)> = BTreeSet::new();
    let kills = ufer_tests::iterations(20);
    for kill in 0..kills {
        let lines = run_and_kill(dir.path(), (seed << 8) | kill, &mut rng);
        for line in lines {
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
                "S" => state.in_flight.push(value),
                "A" => {
                    state.acked = Some(value);
                    state.in_flight.retain(|sent| *sent != value);
                    // Writes sent before this one were acknowledged before it was sent.
                    state.in_flight.clear();
                    acked_values.insert((key, value));
                }
                _ => {}
            }
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

/// Runs the upserter, kills it, and returns its output lines.
fn run_and_kill(dir: &std::path::Path, child_seed: u64, rng: &mut Rng) -> Vec<String> {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_ufer_crash_upserter"));
    let args = [dir.display().to_string(), child_seed.to_string()];
    ufer_tests::child::run_and_kill(program, &args, 400, rng)
}

async fn check(
    dir: &std::path::Path,
    keys: &BTreeMap<i64, KeyState>,
    acked: &BTreeSet<(i64, i64)>,
) -> Result<(), String> {
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let bucket = pk::open_bucket(dir, clock).await.map_err(|error| format!("open: {error}"))?;
    let log = bucket.log().clone();
    // The changelog from the beginning, replayed; every value at most once.
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
    for (key, value) in acked.iter().filter(|(_, value)| *value >= 0) {
        if !seen.contains(&(*key, *value)) {
            return Err(format!("acknowledged write {key}={value} is not in the changelog"));
        }
    }
    // Lookups: every key at its acknowledged value or a later one in flight at the kill.
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
    if stored != replayed {
        return Err(format!(
            "the KV differs from the changelog replayed: {} vs {} keys",
            stored.len(),
            replayed.len()
        ));
    }
    for (key, state) in keys {
        let now = stored.get(key).copied().unwrap_or(-1);
        // Never acknowledged: it may never have been stored (-1).
        let acked = state.acked.unwrap_or(-1);
        let allowed: Vec<i64> =
            std::iter::once(acked).chain(state.in_flight.iter().copied()).collect();
        if !allowed.contains(&now) {
            return Err(format!("key {key} is {now}; acknowledged or in flight: {allowed:?}"));
        }
    }
    bucket.close().await.map_err(|error| format!("close: {error}"))?;
    Ok(())
}

fn column(batch: &RecordBatch, index: usize) -> &Int64Array {
    batch.column(index).as_any().downcast_ref::<Int64Array>().unwrap()
}
