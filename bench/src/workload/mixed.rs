//! `mixed`: writers and tailing readers on one table at once — what a streaming deployment
//! does all day. The writers run the closed-loop `produce` workload; each reader subscribes
//! every bucket from the latest offset and reads everything written (a fan-out: every
//! reader sees every row), with all columns or a projection. Reported: produce throughput
//! and latency as in `produce`, and per reader the rows that arrived inside the measurement
//! window.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ufer_wire::client::{Connection, LogScanner, ScanOptions, StartFrom};
use ufer_wire::protocol::messages::TablePath;

use crate::error::BenchError;
use crate::report::{Throughput, Window};
use crate::rows::ROW_SIZE_BYTES;
use crate::workload::produce::{self, ProduceParams};

/// How long a reader waits on the node for new rows in one fetch.
const READER_WAIT: Duration = Duration::from_millis(100);

/// A mixed run.
#[derive(Clone, Debug)]
pub struct MixedParams {
    /// The writers' side (its warm-up and duration are the run's).
    pub produce: ProduceParams,
    /// Tailing readers.
    pub readers: usize,
    /// Columns the readers read (all if `None`).
    pub columns: Option<Vec<String>>,
}

/// What a mixed run measured.
#[derive(Debug)]
pub struct MixedResult {
    /// Appends acknowledged in the window.
    pub produced: Throughput,
    /// Append-to-acknowledgement latency (µs).
    pub produce_latency: Histogram<u64>,
    /// Rows that reached the readers in the window, all readers together.
    pub consumed: Throughput,
}

/// Runs `params` against the (fresh) table at `path`.
pub async fn run(
    connection: &Connection,
    path: &TablePath,
    params: &MixedParams,
    batch_size_bytes: usize,
) -> Result<MixedResult, BenchError> {
    let writers =
        produce::prepare(connection, std::slice::from_ref(path), &params.produce, batch_size_bytes)
            .await?;
    let mut scanners = Vec::with_capacity(params.readers);
    for _ in 0..params.readers {
        let options = ScanOptions {
            max_wait: READER_WAIT,
            columns: params.columns.clone(),
            ..ScanOptions::default()
        };
        let mut scanner = LogScanner::new(connection.clone(), path, options).await?;
        scanner.subscribe_all(StartFrom::Latest).await?;
        scanners.push(scanner);
    }
    // Writers and readers measure the same window, from when all of them are ready.
    let window = Window::after(params.produce.warmup, params.produce.duration);
    let readers: Vec<_> =
        scanners.into_iter().map(|scanner| tokio::spawn(read(scanner, window))).collect();
    let (produced, produce_latency) = writers.run(window).await?;
    let mut consumed =
        Throughput { seconds: window.duration().as_secs_f64(), ..Throughput::default() };
    for reader in readers {
        let read = reader
            .await
            .map_err(|error| BenchError::Other(format!("a reader failed: {error}")))??;
        consumed.merge(&read);
    }
    Ok(MixedResult { produced, produce_latency, consumed })
}

/// A tailing reader: every row that arrives inside `window`.
async fn read(mut scanner: LogScanner, window: Window) -> Result<Throughput, BenchError> {
    let mut consumed =
        Throughput { seconds: window.duration().as_secs_f64(), ..Throughput::default() };
    // Until the writers stop, and a little after for rows still in flight.
    while Instant::now() < window.end + READER_WAIT {
        let polled = scanner.poll().await?;
        if !window.contains(Instant::now()) {
            continue;
        }
        for scanned in polled {
            let rows = scanned.rows.num_rows() as u64;
            consumed.add(rows * ROW_SIZE_BYTES as u64, rows);
        }
    }
    Ok(consumed)
}
