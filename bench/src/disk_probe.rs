//! The disk's own limit beside the figures: durable writes (O_DIRECT write and fdatasync)
//! one at a time, on the file system that holds the node's data.

use std::path::PathBuf;
use std::time::Duration;

use ufer_node::disk_check::{self, DurableWrites};

use crate::error::BenchError;
use crate::options::GlobalOptions;
use crate::target::Target;

/// Where the disk's own limit is measured: beside the node's data directory (same file
/// system) when it is on this machine, otherwise under `--dir` or the temporary directory.
#[derive(Debug)]
pub struct DiskProbe {
    dir: PathBuf,
}

impl DiskProbe {
    /// The probe for a run against `target`.
    pub fn new(target: &Target, options: &GlobalOptions) -> Self {
        let parent = target
            .data_dir()
            .and_then(|dir| dir.parent().map(PathBuf::from))
            .or_else(|| options.dir.clone())
            .unwrap_or_else(std::env::temp_dir);
        Self { dir: parent.join(format!("ufer-bench-disk-probe-{}", std::process::id())) }
    }

    /// Durable writes of `write_bytes`, one at a time, for `duration`.
    pub async fn measure(
        &self,
        write_bytes: usize,
        duration: Duration,
    ) -> Result<DurableWrites, BenchError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            disk_check::durable_write_limit(&dir, write_bytes, duration)
        })
        .await
        .map_err(|error| BenchError::Other(format!("the disk probe failed: {error}")))?
        .map_err(|error| BenchError::Other(error.to_string()))
    }
}
