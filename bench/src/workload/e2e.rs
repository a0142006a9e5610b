//! `e2e`: produce-to-consume latency at a fixed rate, open loop. A writer sends a batch of
//! `batch_rows` rows every `batch_rows / rate` on a fixed schedule, stamping each row with
//! the time it was *meant* to be sent; a scanner subscribed from the latest offset reads
//! `id` and `sent_us` (projected on the node) and records `now - sent_us` per row. A writer
//! that falls behind its schedule still stamps the scheduled time, so stalls show up in the
//! figures instead of thinning the samples out (no coordinated omission).
//!
//! Both ends run in this process against the same clock. With acks=all a row becomes
//! readable once it is durable, so the latency includes the node's fdatasync.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array};
use hdrhistogram::Histogram;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use ufer_wire::client::{
    AppendHandle, AppendOptions, AppendWriter, Connection, LogScanner, ScanOptions, StartFrom,
};
use ufer_wire::protocol::messages::{Acks, TablePath};

use crate::error::BenchError;
use crate::report::{latency_histogram, record, Throughput, Window};
use crate::rows::{self, ROW_SIZE_BYTES};
use crate::schedule::Schedule;

/// How long the reader waits for stragglers after the writer's last batch.
const DRAIN_WAIT: Duration = Duration::from_secs(5);

/// An e2e run.
#[derive(Clone, Debug)]
pub struct E2eParams {
    /// Rows per second.
    pub rate_rows_per_s: u64,
    /// Rows per batch.
    pub batch_rows: usize,
    /// When the node answers the writer.
    pub acks: Acks,
    /// Left out of the figures.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
}

/// Runs `params` against the (empty or not) table at `path`.
pub async fn run(
    connection: &Connection,
    path: &TablePath,
    params: &E2eParams,
) -> Result<E2eResult, BenchError> {
    if params.rate_rows_per_s == 0 || params.batch_rows == 0 {
        return Err(BenchError::Other("e2e needs a rate and rows per batch above 0".into()));
    }
    let mut scanner = subscribe_latest(connection, path).await?;
    let writer_options = AppendOptions {
        batch_size_bytes: 1,
        linger: Duration::from_millis(1),
        acks: params.acks,
        ..AppendOptions::default()
    };
    let appender = AppendWriter::new(connection.clone(), path, writer_options).await?;

    // The clocks: scheduled instants map to epoch microseconds through one fixed pair.
    let (epoch_start_us, instant_start) = (rows::now_us(), Instant::now());
    let window = Window::after(params.warmup, params.duration);
    let measured_from_us = epoch_start_us + params.warmup.as_micros() as i64;
    let measured_until_us = measured_from_us + params.duration.as_micros() as i64;
    let measured_us = measured_from_us..measured_until_us;
    let schedule = Schedule::new(instant_start, params.rate_rows_per_s, params.batch_rows as u64)
        .ok_or_else(|| {
        BenchError::Other("e2e needs a rate and rows per batch above 0".into())
    })?;
    let total_batches = schedule.sends_within(params.warmup + params.duration);
    let writer_done = Arc::new(Notify::new());

    let (acks_to, acks_from) = tokio::sync::mpsc::unbounded_channel();
    let acker = tokio::spawn(record_acks(acks_from, measured_us.clone()));
    let plan = WriterPlan {
        appender,
        schedule,
        total_batches,
        batch_rows: params.batch_rows,
        epoch_start_us,
        acks_to,
        done: writer_done.clone(),
    };
    let writer = spawn_writer(plan)?;

    let expected_rows = total_batches * params.batch_rows as u64;
    let read = read_rows(&mut scanner, expected_rows, &measured_us, &window, &writer_done).await?;
    writer.join().map_err(|_| BenchError::Other("the writer thread panicked".into()))??;
    let acked = acker.await.map_err(|error| {
        BenchError::Other(format!("the acknowledgement task failed: {error}"))
    })??;
    if read.seen < expected_rows {
        return Err(BenchError::Other(format!(
            "the reader saw {} of {expected_rows} rows within {} s of the last write",
            read.seen,
            DRAIN_WAIT.as_secs()
        )));
    }
    Ok(E2eResult { delivered: read.delivered, latency: read.latency, acked })
}

/// A scanner of `path` from its latest offset, reading `id` and `sent_us` only (projected on
/// the node).
async fn subscribe_latest(
    connection: &Connection,
    path: &TablePath,
) -> Result<LogScanner, BenchError> {
    let options = ScanOptions {
        columns: Some(rows::projected_columns()),
        max_wait: Duration::from_millis(500),
        ..ScanOptions::default()
    };
    let mut scanner = LogScanner::new(connection.clone(), path, options).await?;
    scanner.subscribe_all(StartFrom::Latest).await?;
    Ok(scanner)
}

/// A batch handed to the AppendWriter: when it was due, the `sent_us` its rows carry, and the
/// handle that completes on its acknowledgement.
type SentBatch = (Instant, i64, AppendHandle);

/// Awaits acknowledgements in order, recording how long each took from its scheduled send
/// for batches sent within `measured_us`: the produce half of the end-to-end latency.
async fn record_acks(
    mut acks_from: UnboundedReceiver<SentBatch>,
    measured_us: Range<i64>,
) -> Result<Histogram<u64>, BenchError> {
    let mut acked = latency_histogram();
    while let Some((scheduled, sent_us, handle)) = acks_from.recv().await {
        handle.wait().await?;
        if measured_us.contains(&sent_us) {
            record(
                &mut acked,
                Instant::now().saturating_duration_since(scheduled).as_micros() as u64,
            );
        }
    }
    Ok(acked)
}

/// What the writer thread sends, and where it reports.
struct WriterPlan {
    appender: AppendWriter,
    schedule: Schedule,
    total_batches: u64,
    batch_rows: usize,
    /// The epoch microseconds of the schedule's start.
    epoch_start_us: i64,
    acks_to: UnboundedSender<SentBatch>,
    /// Notified once the writer has sent everything, or failed.
    done: Arc<Notify>,
}

/// The writer is a thread of its own that sleeps to each scheduled instant (nanosleep: tens
/// of µs late at most) and hands the batch to the AppendWriter from there, like an
/// application thread would. Spinning on the runtime until the instant instead (tokio's
/// timer has millisecond ticks) took a core from the node on a small machine.
fn spawn_writer(
    plan: WriterPlan,
) -> Result<std::thread::JoinHandle<Result<(), BenchError>>, BenchError> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("e2e-writer".into())
        .spawn(move || {
            let done = plan.done.clone();
            let sent = send_on_schedule(&runtime, plan);
            done.notify_one();
            sent
        })
        .map_err(|error| BenchError::Other(format!("starting the writer thread: {error}")))
}

/// Sends every batch of `plan` at its scheduled instant, then closes the writer.
fn send_on_schedule(runtime: &tokio::runtime::Handle, plan: WriterPlan) -> Result<(), BenchError> {
    let WriterPlan {
        appender, schedule, total_batches, batch_rows, epoch_start_us, acks_to, ..
    } = plan;
    let schema = appender.table().schema.arrow().clone();
    for index in 0..total_batches {
        let scheduled = schedule.due(index);
        std::thread::sleep(scheduled.saturating_duration_since(Instant::now()));
        let sent_us = epoch_start_us + schedule.offset(index).as_micros() as i64;
        let batch =
            rows::batch(&schema, (index as usize * batch_rows) as i64, batch_rows, sent_us)?;
        let handle = runtime.block_on(appender.append(batch))?;
        if acks_to.send((scheduled, sent_us, handle)).is_err() {
            return Err(BenchError::Other("the acknowledgement task stopped".into()));
        }
    }
    drop(acks_to);
    runtime.block_on(appender.close())?;
    Ok(())
}

/// What the reader saw.
struct Read {
    /// Rows sent within the measured span.
    delivered: Throughput,
    /// Scheduled send to arrival, per row sent within the measured span (µs).
    latency: Histogram<u64>,
    /// Rows seen, measured or not.
    seen: u64,
}

/// Polls `scanner` until `expected_rows` rows have arrived, or until [`DRAIN_WAIT`] after
/// `writer_done` is notified, recording the latency of each row sent within `measured_us`.
async fn read_rows(
    scanner: &mut LogScanner,
    expected_rows: u64,
    measured_us: &Range<i64>,
    window: &Window,
    writer_done: &Notify,
) -> Result<Read, BenchError> {
    let mut delivered =
        Throughput { seconds: window.duration().as_secs_f64(), ..Throughput::default() };
    let mut latency = latency_histogram();
    let mut seen = 0u64;
    let mut drain_deadline: Option<Instant> = None;
    let finished = writer_done.notified();
    tokio::pin!(finished);
    while seen < expected_rows {
        if drain_deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            break;
        }
        let polled = tokio::select! {
            polled = scanner.poll() => polled?,
            () = &mut finished, if drain_deadline.is_none() => {
                drain_deadline = Some(Instant::now() + DRAIN_WAIT);
                continue;
            }
        };
        let arrived_us = rows::now_us();
        for scanned in polled {
            let Some(sent) = scanned.rows.column_by_name("sent_us") else { continue };
            let Some(sent) = sent.as_any().downcast_ref::<Int64Array>() else { continue };
            seen += sent.len() as u64;
            for row in 0..sent.len() {
                let sent_us = sent.value(row);
                if measured_us.contains(&sent_us) {
                    record(&mut latency, arrived_us.saturating_sub(sent_us).max(0) as u64);
                    delivered.bytes += ROW_SIZE_BYTES as u64;
                    delivered.rows += 1;
                }
            }
            delivered.requests += 1;
        }
    }
    Ok(Read { delivered, latency, seen })
}

/// What an e2e run measured.
#[derive(Debug)]
pub struct E2eResult {
    /// Rows delivered inside the window.
    pub delivered: Throughput,
    /// Scheduled send to arrival at the reader, per row (µs).
    pub latency: Histogram<u64>,
    /// Scheduled send to the writer's acknowledgement, per batch (µs).
    pub acked: Histogram<u64>,
}
