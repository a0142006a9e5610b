//! `consume`: one scanner reads a table from its start to the high watermark it had when the
//! run began, with every column or a projection; rows are handed over as Arrow record
//! batches (zero-copy) and counted. Throughput is rows read over the wall time of the scan;
//! bytes are counted twice: as table data (rows × row size) and as received on the wire.

use std::time::{Duration, Instant};

use serde::Serialize;
use ufer_wire::client::{Admin, Connection, LogScanner, ScanOptions, StartFrom};
use ufer_wire::protocol::messages::TablePath;

use crate::error::BenchError;
use crate::report::Throughput;
use crate::rows::ROW_SIZE_BYTES;

/// Most bytes one fetch brings back.
const FETCH_SIZE_MAX_BYTES: u32 = 32 * 1024 * 1024;

/// Most bytes one bucket contributes to a fetch.
const FETCH_BUCKET_SIZE_MAX_BYTES: u32 = 8 * 1024 * 1024;

/// What a scan read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ScanResult {
    /// Rows and table bytes (rows × row size) over the scan's wall time.
    pub table: Throughput,
    /// Bytes received (after projection on the node).
    pub wire_bytes: u64,
}

/// Reads the table at `path` from the start, with `columns` (all if `None`).
pub async fn run(
    connection: &Connection,
    path: &TablePath,
    columns: Option<Vec<String>>,
) -> Result<ScanResult, BenchError> {
    let description = Admin::new(connection.clone()).describe_table(path).await?;
    let target: u64 = description
        .buckets
        .iter()
        .map(|bucket| bucket.high_watermark - bucket.log_start_offset)
        .sum();
    let options = ScanOptions {
        max_bytes: FETCH_SIZE_MAX_BYTES,
        bucket_max_bytes: FETCH_BUCKET_SIZE_MAX_BYTES,
        max_wait: Duration::from_millis(100),
        columns,
    };
    let mut scanner = LogScanner::new(connection.clone(), path, options).await?;
    scanner.subscribe_all(StartFrom::Earliest).await?;
    let started = Instant::now();
    let mut rows = 0u64;
    let mut requests = 0u64;
    while rows < target {
        let polled = scanner.poll().await?;
        requests += 1;
        rows += polled.iter().map(|scanned| scanned.rows.num_rows() as u64).sum::<u64>();
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ScanResult {
        table: Throughput { bytes: rows * ROW_SIZE_BYTES as u64, rows, requests, seconds },
        wire_bytes: scanner.fetched_bytes(),
    })
}
