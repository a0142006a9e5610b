//! Crash test: a child process appends with group commit and reports every batch that
//! became durable; it is killed with SIGKILL at random moments (during start-up and
//! recovery too), again and again on the same log. After every kill the log reopens with
//! every reported batch present and byte-identical, offsets dense from the start, and
//! nothing after the last valid batch left in the active segment.
//!
//! 50 kills by default; `UFER_TEST_MULTIPLIER=N` runs N times as many.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ufer_shard::{Clock, LogConfig, LogTablet, ReadRequest, SystemClock};
use ufer_tests::rng::Rng;
use ufer_wire::LogBatch;

/// A batch the child reported durable: end offset, CRC-32C of its bytes, length.
type Durable = (u64, u32, usize);

fn crash_config() -> LogConfig {
    // Must match the child's `crash_config`.
    let mut config = LogConfig::test_min();
    config.segment_size_max_bytes = 48 * 1024;
    config.index_interval_bytes = 2048;
    config
}

#[test]
fn every_batch_reported_durable_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed =
        std::env::var("UFER_CRASH_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(0x5EED);
    let mut rng = Rng::new(seed);
    let mut durable: BTreeMap<u64, Durable> = BTreeMap::new();
    let kills = ufer_tests::iterations(50);
    for kill in 0..kills {
        let reported = run_and_kill(dir.path(), rng.next_u64(), &mut rng);
        for (base, entry) in reported {
            assert!(durable.insert(base, entry).is_none(), "offset {base} was given out twice");
        }
        let path = dir.path().to_path_buf();
        let expected = durable.clone();
        ufer_tests::run_on_executor(move || async move { check_log(&path, &expected).await })
            .unwrap_or_else(|problem| panic!("after kill {kill} (seed {seed:#x}): {problem}"));
    }
    assert!(
        durable.len() as u64 > kills,
        "the child made progress: {} durable batches",
        durable.len()
    );
}

/// Starts the child, kills it after a random time, and returns what it reported durable.
fn run_and_kill(dir: &std::path::Path, child_seed: u64, rng: &mut Rng) -> Vec<(u64, Durable)> {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_ufer_crash_appender"));
    let args = [dir.display().to_string(), child_seed.to_string()];
    let lines = ufer_tests::child::run_and_kill(program, &args, 60, rng);
    lines
        .iter()
        .filter_map(|line| {
            let mut fields = line.strip_prefix("D ")?.split(' ');
            let base = fields.next()?.parse().ok()?;
            let end = fields.next()?.parse().ok()?;
            let crc = u32::from_str_radix(fields.next()?, 16).ok()?;
            let len = fields.next()?.parse().ok()?;
            Some((base, (end, crc, len)))
        })
        .collect()
}

/// Opens the log and checks it against every batch reported durable so far.
async fn check_log(path: &std::path::Path, durable: &BTreeMap<u64, Durable>) -> Result<(), String> {
    let clock: std::rc::Rc<dyn Clock> = std::rc::Rc::new(SystemClock);
    let tablet =
        LogTablet::open(path, crash_config(), clock).await.map_err(|error| error.to_string())?;
    let mut found: BTreeMap<u64, Durable> = BTreeMap::new();
    let mut offset = tablet.log_start_offset();
    if offset != 0 {
        return Err(format!("log starts at {offset}, not 0"));
    }
    loop {
        let read = tablet
            .read(ReadRequest::new(offset, 1 << 20))
            .await
            .map_err(|error| error.to_string())?;
        if read.chunks.is_empty() {
            break;
        }
        for chunk in &read.chunks {
            let bytes = chunk.as_bytes();
            let batch = LogBatch::parse(bytes).map_err(|error| error.to_string())?;
            if batch.base_offset() != offset {
                return Err(format!(
                    "batch at {} where offset {offset} was expected",
                    batch.base_offset()
                ));
            }
            offset = batch.last_offset() + 1;
            found.insert(batch.base_offset(), (offset, crc32c::crc32c(bytes), bytes.len()));
        }
    }
    if offset != tablet.high_watermark() {
        return Err(format!(
            "read ended at {offset}, high watermark is {}",
            tablet.high_watermark()
        ));
    }
    for (base, expected) in durable {
        match found.get(base) {
            Some(actual) if actual == expected => {}
            Some(actual) => {
                return Err(format!("batch {base} differs: {actual:?}, reported {expected:?}"))
            }
            None => return Err(format!("batch {base} was reported durable and is gone")),
        }
    }
    // Nothing after the last valid batch remains in the active segment.
    let mut segments: Vec<_> = std::fs::read_dir(path)
        .map_err(|error| error.to_string())?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".log"))
        .collect();
    segments.sort();
    let active = path.join(segments.last().ok_or("no segment")?);
    let bytes = std::fs::read(&active).map_err(|error| error.to_string())?;
    let mut at = 0;
    while at < bytes.len() {
        match LogBatch::parse(&bytes[at..]) {
            Ok(batch) => at += batch.len(),
            Err(error) => {
                return Err(format!(
                    "{} bytes after the last valid batch ({error})",
                    bytes.len() - at
                ))
            }
        }
    }
    tablet.close().await.map_err(|error| error.to_string())
}
