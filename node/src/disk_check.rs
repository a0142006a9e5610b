//! The data directory's disk as a shard sees it: [`durable_write_limit`] runs
//! `ufer_io::disk_probe` (sequential O_DIRECT writes, each followed by fdatasync) on a fresh
//! glommio executor, in a directory on the same file system. Load generators print it
//! beside what the node achieves.

use std::path::Path;
use std::time::Duration;

use ufer_io::DataDir;

pub use ufer_io::disk_probe::DurableWrites;

use crate::error::NodeError;

/// Writes of `write_bytes`, one at a time and each made durable, for `duration`, in a new
/// directory `dir` (removed afterwards, with everything in it).
pub fn durable_write_limit(
    dir: &Path,
    write_bytes: usize,
    duration: Duration,
) -> Result<DurableWrites, NodeError> {
    let path = std::path::absolute(dir)
        .map_err(|error| NodeError::Startup(format!("resolving {}: {error}", dir.display())))?;
    let probe_dir = path.clone();
    let measured = ufer_io::executor::run_on_new_thread(move || async move {
        let data_dir = DataDir::open(&probe_dir).await.map_err(|error| error.to_string())?;
        ufer_io::disk_probe::durable_writes(&data_dir, "probe.raw", write_bytes, duration, true)
            .await
            .map_err(|error| error.to_string())
    })
    .and_then(|result| result)
    .map_err(|error| NodeError::Startup(format!("disk probe in {}: {error}", path.display())));
    let _ = std::fs::remove_dir_all(&path);
    measured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_writes_durably_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        let measured = durable_write_limit(&probe, 64 * 1024, Duration::from_millis(100)).unwrap();
        assert!(measured.writes > 0);
        assert_eq!(measured.latencies.len() as u64, measured.writes);
        assert_eq!(measured.bytes, measured.writes * 64 * 1024);
        assert!(measured.elapsed >= Duration::from_millis(100));
        assert!(!probe.exists(), "the probe's directory is removed");
    }
}
