//! `produce`: writers append as fast as the node acknowledges, closed loop. Each writer is an
//! idempotent `AppendWriter` sending every append as one batch to the next bucket in turn;
//! it keeps up to [`IN_FLIGHT_PER_BUCKET`] appends per bucket waiting for their answer.
//! Throughput counts batches acknowledged inside the measurement window; latency is from
//! `append` to acknowledgement.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use hdrhistogram::Histogram;
use ufer_wire::client::{AppendOptions, AppendWriter, Connection};
use ufer_wire::protocol::messages::{Acks, TablePath};
use ufer_wire::{BatchOptions, BatchSchema, Compression, LogBatchBuilder, WriterStamp};

use crate::error::BenchError;
use crate::raw_quic::merge;
use crate::report::{latency_histogram, record, Throughput, Window};
use crate::rows;

/// Appends a writer keeps waiting for, per bucket of the table.
pub const IN_FLIGHT_PER_BUCKET: usize = 2;

/// Different batches a writer cycles through (so no two neighbours are the same bytes).
const DISTINCT_BATCH_COUNT: usize = 4;

/// A produce run.
#[derive(Clone, Debug)]
pub struct ProduceParams {
    /// Concurrent writers.
    pub writers: usize,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Rows per `append` call (at most `batch_rows`): smaller appends are batched by the
    /// writer up to `batch_rows` rows or `linger`.
    pub append_rows: usize,
    /// How long a writer waits for more rows before sending a batch that is not full.
    pub linger: Duration,
    /// Bytes of Arrow data per row.
    pub row_size_bytes: usize,
    /// When the node answers.
    pub acks: Acks,
    /// Column compression.
    pub compression: Compression,
    /// Left out of the figures.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
}

/// Bytes of one encoded batch of `rows` rows (what travels and is stored), without
/// compression.
pub fn encoded_batch_size(
    schema: &arrow_schema::SchemaRef,
    rows: usize,
) -> Result<usize, BenchError> {
    encoded_batch_size_of(schema, rows, rows::ROW_SIZE_BYTES)
}

/// Like [`encoded_batch_size`], for rows of `row_size_bytes`.
pub fn encoded_batch_size_of(
    schema: &arrow_schema::SchemaRef,
    rows: usize,
    row_size_bytes: usize,
) -> Result<usize, BenchError> {
    let schema = BatchSchema::new(1, schema.clone())
        .map_err(|error| BenchError::Other(error.to_string()))?;
    let mut builder = LogBatchBuilder::new(schema, BatchOptions::default())
        .map_err(|error| BenchError::Other(error.to_string()))?;
    let batch = rows::batch_of_size(builder.schema().arrow(), 0, rows, 0, row_size_bytes)?;
    Ok(builder
        .build(&batch, None, WriterStamp::NONE)
        .map_err(|error| BenchError::Other(error.to_string()))?
        .len())
}

/// Runs `params` against the tables at `paths` (writer `i` writes table `i % paths.len()`;
/// its bucket count sets the in-flight depth); the bytes counted per full batch are
/// `batch_size_bytes`. The warm-up starts once every writer is ready.
pub async fn run(
    connection: &Connection,
    paths: &[TablePath],
    params: &ProduceParams,
    batch_size_bytes: usize,
) -> Result<(Throughput, Histogram<u64>), BenchError> {
    let writers = prepare(connection, paths, params, batch_size_bytes).await?;
    let window = Window::after(params.warmup, params.duration);
    writers.run(window).await
}

/// Writers set up (their writer ids taken, their batches built), not yet writing.
#[derive(Debug)]
pub struct Writers {
    writers: Vec<Writer>,
}

#[derive(Debug)]
struct Writer {
    appender: AppendWriter,
    batches: Arc<Vec<RecordBatch>>,
    in_flight_max: usize,
    rows_per_append: u64,
    bytes_per_append: u64,
}

/// Sets up the writers of `params` (see [`run`]), so that a measurement window can start
/// after the work of connecting.
pub async fn prepare(
    connection: &Connection,
    paths: &[TablePath],
    params: &ProduceParams,
    batch_size_bytes: usize,
) -> Result<Writers, BenchError> {
    let append_rows = params.append_rows.clamp(1, params.batch_rows);
    let appends_per_batch = params.batch_rows.div_ceil(append_rows);
    let mut writers = Vec::with_capacity(params.writers);
    for writer in 0..params.writers {
        let path = &paths[writer % paths.len()];
        let appender = AppendWriter::new(connection.clone(), path, options(params)).await?;
        let schema = appender.table().schema.arrow().clone();
        let in_flight_max =
            appender.table().bucket_count() as usize * IN_FLIGHT_PER_BUCKET * appends_per_batch;
        let batches: Vec<RecordBatch> = (0..DISTINCT_BATCH_COUNT)
            .map(|index| {
                rows::batch_of_size(
                    &schema,
                    (index * append_rows) as i64,
                    append_rows,
                    rows::now_us(),
                    params.row_size_bytes,
                )
            })
            .collect::<Result<_, _>>()?;
        writers.push(Writer {
            appender,
            batches: Arc::new(batches),
            in_flight_max,
            rows_per_append: append_rows as u64,
            bytes_per_append: (batch_size_bytes * append_rows / params.batch_rows) as u64,
        });
    }
    Ok(Writers { writers })
}

/// How a writer of `params` batches and sends.
fn options(params: &ProduceParams) -> AppendOptions {
    let append_rows = params.append_rows.clamp(1, params.batch_rows);
    let batch_size_bytes = if append_rows == params.batch_rows {
        // Every append is sent as its own batch at once, never merged with others: the
        // batches are the size the run says, like the raw requests beside them.
        1
    } else {
        // Smaller appends: the writer batches them up to the batch size or the linger.
        params.batch_rows * params.row_size_bytes
    };
    AppendOptions {
        batch_size_bytes,
        merged_batch_size_max_bytes: 0,
        linger: params.linger,
        compression: params.compression,
        acks: params.acks,
        idempotent: true,
        ..AppendOptions::default()
    }
}

impl Writers {
    /// Writes until `window` ends; counts what is acknowledged inside it.
    pub async fn run(self, window: Window) -> Result<(Throughput, Histogram<u64>), BenchError> {
        let tasks =
            self.writers.into_iter().map(|writer| tokio::spawn(writer.run(window))).collect();
        merge(tasks, window).await
    }
}

impl Writer {
    async fn run(self, window: Window) -> Result<(Throughput, Histogram<u64>), BenchError> {
        let mut done =
            Throughput { seconds: window.duration().as_secs_f64(), ..Throughput::default() };
        let mut latency = latency_histogram();
        let mut waiting = VecDeque::with_capacity(self.in_flight_max);
        let mut next = 0usize;
        loop {
            let now = Instant::now();
            if now >= window.end && waiting.is_empty() {
                break;
            }
            if now < window.end && waiting.len() < self.in_flight_max {
                let batch = self.batches[next % self.batches.len()].clone();
                let handle = self.appender.append(batch).await?;
                next += 1;
                waiting.push_back((Instant::now(), handle));
                continue;
            }
            if let Some((started, handle)) = waiting.pop_front() {
                handle.wait().await?;
                let finished = Instant::now();
                if window.contains(finished) {
                    done.add(self.bytes_per_append, self.rows_per_append);
                    record(&mut latency, (finished - started).as_micros() as u64);
                }
            }
        }
        self.appender.close().await?;
        Ok((done, latency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_rows_encode_to_about_a_mebibyte() {
        let schema = Arc::new(ufer_wire::schema_text::parse_schema(&rows::schema_text()).unwrap());
        let size = encoded_batch_size(&schema, 1024).unwrap();
        assert!((1024 * 1024..1024 * 1024 + 16 * 1024).contains(&size), "{size}");
    }
}
