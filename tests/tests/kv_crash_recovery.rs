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

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Starts the child, kills it after a random time, and returns the newest snapshot offset
/// it reported durable (0 if none).
fn run_and_kill(dir: &std::path::Path, rng: &mut Rng) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ufer_kv_crash_writer"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let reported = Arc::new(Mutex::new(0u64));
    let ready = Arc::new(Mutex::new(None::<Instant>));
    let reader = {
        let stdout = child.stdout.take().unwrap();
        let (reported, ready) = (reported.clone(), ready.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("READY") {
                    *ready.lock().unwrap() = Some(Instant::now());
                } else if let Some(offset) = line.strip_prefix("S ") {
                    let offset: u64 = offset.parse().unwrap();
                    let mut reported = reported.lock().unwrap();
                    *reported = (*reported).max(offset);
                }
            }
        })
    };
    // Half the kills land at any time (start-up included), half while writing.
    let delay = Duration::from_millis(rng.in_range(1..80));
    let after_ready = rng.in_range(0..2) == 0;
    let started = Instant::now();
    loop {
        let since = if after_ready { *ready.lock().unwrap() } else { Some(started) };
        if since.is_some_and(|since| since.elapsed() >= delay)
            || started.elapsed() > Duration::from_secs(20)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    let reported = *reported.lock().unwrap();
    reported
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
