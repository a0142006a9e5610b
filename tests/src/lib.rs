//! `ufer-tests`: whole-system, crash and fault tests across crates, and what they share.
//!
//! The library holds test support: running code on a glommio executor thread, a fixed
//! table and its batches, reading a table back over the SDK, loop-mounted file systems for
//! disk-full tests, a FUSE file system that loses what was not made durable (`lossy_fs`, for
//! power-loss and fsync-failure tests), and a deterministic random number generator. The tests are in `tests/tests/`; the child process the crash
//! test kills is `src/bin/ufer_crash_appender.rs`, and the KV crash test's is
//! `src/bin/ufer_kv_crash_writer.rs` (with its changelog in `kv_changelog`).

// A test-support crate: a panic here is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod child;
pub mod kv_changelog;
pub mod lake;
pub mod loop_mount;
pub mod lossy_fs;
pub mod pk;
pub mod rng;
pub mod scan;
pub mod table;

use std::future::Future;

/// Runs `body` on a fresh glommio executor thread; a panic there fails the test with its
/// message.
pub fn run_on_executor<T, F, Fut>(body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    ufer_io::executor::run_on_new_thread(body).unwrap_or_else(|error| panic!("{error}"))
}

/// The client side of a whole-system test: a tokio runtime with two workers.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Scales a default iteration count by `UFER_TEST_MULTIPLIER` (for long runs).
pub fn iterations(default: u64) -> u64 {
    let multiplier = std::env::var("UFER_TEST_MULTIPLIER")
        .ok()
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(1);
    default * multiplier.max(1)
}

/// A base port with `count` free consecutive UDP ports on 127.0.0.1 (checked by binding
/// them), for a node that must come back on the same ports after a restart.
pub fn free_ports(count: u16) -> u16 {
    for _ in 0..200 {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base.checked_add(count).is_none() {
            continue;
        }
        let held: Vec<_> = (0..count)
            .filter_map(|k| std::net::UdpSocket::bind(("127.0.0.1", base + k)).ok())
            .collect();
        if held.len() == count as usize {
            return base;
        }
    }
    panic!("no {count} consecutive free UDP ports");
}
