//! [`durable_writes`]: the disk's own limit for what a log does on every durable append — a
//! sequential O_DIRECT write at the end of a file, then fdatasync — with nothing of ufer's
//! in between. Benchmarks print their figures beside it.
//!
//! Writes are the given size padded with zeros to whole blocks, at the end of a new file
//! that is removed afterwards; each write's time includes its fdatasync when `sync_each`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::{DmaFile, OpenOptions};

use crate::block::align_up;
use crate::data_dir::DataDir;
use crate::error::IoError;

/// What [`durable_writes`] measured.
#[derive(Clone, Debug, Default)]
pub struct DurableWrites {
    /// Writes done.
    pub writes: u64,
    /// Bytes asked to be written (without the padding to blocks).
    pub bytes: u64,
    /// From the first write to the last one being durable.
    pub elapsed: Duration,
    /// Each write (and its fdatasync, with `sync_each`), in order.
    pub latencies: Vec<Duration>,
}

/// Writes `write_bytes` at a time to a new file `name` in `dir` for `duration`, with an
/// fdatasync after every write (`sync_each`) or once at the end; removes the file.
pub async fn durable_writes(
    dir: &DataDir,
    name: &str,
    write_bytes: usize,
    duration: Duration,
    sync_each: bool,
) -> Result<DurableWrites, IoError> {
    let path = dir.file_path(name);
    let glommio_error = |op, error| IoError::from_glommio(op, &path, error);
    let file: DmaFile = OpenOptions::new()
        .write(true)
        .create_new(true)
        .dma_open(&path)
        .await
        .map_err(|error| glommio_error("creating", error))?;
    let padded = align_up(write_bytes.max(1) as u64) as usize;
    let mut buffer = file.alloc_dma_buffer(padded);
    let bytes = buffer.as_bytes_mut();
    for (index, byte) in bytes[..write_bytes].iter_mut().enumerate() {
        *byte = (index % 251) as u8;
    }
    bytes[write_bytes..].fill(0);
    let buffer = Rc::new(buffer);
    let started = Instant::now();
    let deadline = started + duration;
    let mut measured = DurableWrites::default();
    let mut position = 0u64;
    let result = async {
        while Instant::now() < deadline {
            let write_started = Instant::now();
            let written = file
                .write_rc_at(buffer.clone(), position)
                .await
                .map_err(|error| glommio_error("writing", error))?;
            if written != padded {
                let error = std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("{written} of {padded} bytes written"),
                );
                return Err(IoError::from_io("writing", &path, error));
            }
            if sync_each {
                file.fdatasync().await.map_err(|error| glommio_error("syncing", error))?;
            }
            measured.latencies.push(write_started.elapsed());
            position += padded as u64;
            measured.writes += 1;
            measured.bytes += write_bytes as u64;
        }
        file.fdatasync().await.map_err(|error| glommio_error("syncing", error))?;
        Ok(())
    }
    .await;
    measured.elapsed = started.elapsed();
    let closed = file.close().await.map_err(|error| glommio_error("closing", error));
    let removed = dir.remove(name).await;
    result.and(closed).and(removed)?;
    Ok(measured)
}
