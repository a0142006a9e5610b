//! A panic in a shard stops the whole `ufer serve` process at once and says why, instead of
//! leaving a node that answers on some endpoints while one shard's buckets are gone (and
//! its peers wait on it for ever). `UFER_TEST_SHARD_PANIC=N` makes shard N panic once it
//! serves.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UFER: &str = env!("CARGO_BIN_EXE_ufer");

#[test]
fn a_shard_that_panics_stops_the_node_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(UFER)
        .args(["serve", "--port", "0", "--shards", "2", "--no-pin", "--metrics-listen", "off"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("UFER_TEST_SHARD_PANIC", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the node kept running with a dead shard");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}: {stderr}");
    assert!(stderr.contains("ufer-shard-1") && stderr.contains("the node stops"), "{stderr}");
}
