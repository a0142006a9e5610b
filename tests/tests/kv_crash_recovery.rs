//! KV crash test: a child process applies a deterministic changelog to a KV tablet,
//! flushing and compacting all the time, and is killed with SIGKILL at random moments
//! (during start-up and replay too), again and again on the same directory. After every
//! kill the tablet reopens at a snapshot at least as new as the last one the child reported
//! durable, holding exactly the changelog's state at that offset, with no file the manifest
//! does not name.
//!
//! 30 kills by default; `UFER_TEST_MULTIPLIER=N` runs N times as many.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ufer_io::DataDir;
use ufer_shard::KvTablet;
use ufer_tests::kv_changelog::{kv_crash_config, kv_state_at};
use ufer_tests::rng::Rng;

#[test]
fn every_snapshot_reported_durable_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let seed =
        std::env::var("UFER_CRASH_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(0x5EED);
    let mut rng = Rng::new(seed);
    let mut durable = 0u64;
    for kill in 0..ufer_tests::iterations(30) {
        durable = durable.max(run_and_kill(dir.path(), &mut rng));
        let path = dir.path().to_path_buf();
        ufer_tests::run_on_executor(move || async move { check(&path, durable).await })
            .unwrap_or_else(|problem| panic!("after kill {kill} (seed {seed:#x}): {problem}"));
    }
    assert!(durable > 0, "the child made progress");
}

/// Runs the writer, kills it, and returns the highest snapshot offset it reported durable.
fn run_and_kill(dir: &std::path::Path, rng: &mut Rng) -> u64 {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_ufer_kv_crash_writer"));
    let lines = ufer_tests::child::run_and_kill(program, &[dir.display().to_string()], 80, rng);
    lines.iter().filter_map(|line| line.strip_prefix("S ")?.parse::<u64>().ok()).max().unwrap_or(0)
}

/// Opens the tablet and checks it against the changelog.
async fn check(path: &std::path::Path, durable: u64) -> Result<(), String> {
    let dir = DataDir::open(path).await.map_err(|error| error.to_string())?;
    let tablet =
        KvTablet::open(&dir, kv_crash_config()).await.map_err(|error| error.to_string())?;
    let snapshot = tablet.snapshot_log_offset();
    if snapshot < durable {
        return Err(format!("snapshot {snapshot} is older than the reported {durable}"));
    }
    let scanned = tablet.scan_prefix(b"", usize::MAX).await.map_err(|error| error.to_string())?;
    let expected: Vec<_> = kv_state_at(snapshot).into_iter().collect();
    if scanned != expected {
        return Err(format!(
            "state at snapshot {snapshot} differs: {} entries, expected {}",
            scanned.len(),
            expected.len()
        ));
    }
    let live: usize = tablet.stats().level_file_counts.iter().sum();
    let on_disk = std::fs::read_dir(path)
        .map_err(|error| error.to_string())?
        .filter(|entry| {
            entry.as_ref().is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with(".kv"))
        })
        .count();
    if on_disk != live {
        return Err(format!("{on_disk} sorted files on disk, {live} live"));
    }
    tablet.close().await.map_err(|error| error.to_string())
}
