//! Round trips one at a time, the floor under every latency the other workloads measure:
//! the node's own (a Metadata request), a bare produce request, and an append through an
//! [`AppendWriter`]. Each takes a tenth more samples first, untimed, to warm up.

use std::ops::Range;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ufer_wire::client::{AppendOptions, AppendWriter, Connection};
use ufer_wire::protocol::messages::{Acks, MetadataRequest, ProduceRequest};
use ufer_wire::{BatchOptions, BatchSchema, LogBatchBuilder, WriterStamp};

use crate::error::BenchError;
use crate::report::{latency_histogram, record};
use crate::rows;
use crate::workload;

/// The latencies of `samples` round trips after a tenth as many untimed ones.
struct Sampler {
    samples: usize,
    latency: Histogram<u64>,
}

impl Sampler {
    fn new(samples: usize) -> Self {
        Self { samples, latency: latency_histogram() }
    }

    /// Every round trip's index, the warm-up's first.
    fn indices(&self) -> Range<usize> {
        0..self.samples + self.samples / 10
    }

    /// Records round trip `index`, `started` then, unless it warms up.
    fn record(&mut self, index: usize, started: Instant) {
        if index >= self.samples / 10 {
            record(&mut self.latency, started.elapsed().as_micros() as u64);
        }
    }
}

/// `samples` Metadata requests to the bootstrap shard, one at a time.
pub async fn metadata(
    connection: &Connection,
    samples: usize,
) -> Result<Histogram<u64>, BenchError> {
    let address = connection.config().bootstrap;
    let request = MetadataRequest { tables: Vec::new() };
    let mut sampler = Sampler::new(samples);
    for index in sampler.indices() {
        let started = Instant::now();
        connection.call(address, &request, &[], Duration::ZERO).await?;
        sampler.record(index, started);
    }
    Ok(sampler.latency)
}

/// `samples` produce requests of one `rows_per_batch`-row batch to bucket 0's shard, one at
/// a time, straight through `Connection::call` (no AppendWriter): the node's produce round
/// trip.
pub async fn produce(
    connection: &Connection,
    rows_per_batch: usize,
    acks: Acks,
    samples: usize,
) -> Result<Histogram<u64>, BenchError> {
    let path = workload::create_table(connection, "bench_round_trip", 1).await?;
    let table = connection.table_metadata(&path).await?;
    let location = &table.buckets[0];
    let address = connection.shard_address(location.node_id, location.shard).await?;
    let schema = rows::arrow_schema()?;
    let schema = BatchSchema::new(table.info.schema_id, schema)
        .map_err(|error| BenchError::Other(error.to_string()))?;
    let rows = rows::batch(schema.arrow(), 0, rows_per_batch, 0)?;
    let batch = LogBatchBuilder::new(schema, BatchOptions::default())
        .and_then(|mut builder| builder.build(&rows, None, WriterStamp::NONE))
        .map_err(|error| BenchError::Other(error.to_string()))?;
    let request =
        ProduceRequest { table_id: table.info.table_id, bucket: 0, acks, timeout_ms: 30_000 };
    let mut sampler = Sampler::new(samples);
    for index in sampler.indices() {
        let started = Instant::now();
        connection.call(address, &request, &batch, Duration::ZERO).await?;
        sampler.record(index, started);
    }
    workload::drop_table(connection, &path).await?;
    Ok(sampler.latency)
}

/// `samples` appends of one `rows_per_batch`-row batch through an [`AppendWriter`] (sent at
/// once: a batch size of one byte), each awaited before the next: the SDK's own cost on top
/// of the produce round trip measured by [`produce`].
pub async fn append(
    connection: &Connection,
    rows_per_batch: usize,
    acks: Acks,
    samples: usize,
) -> Result<Histogram<u64>, BenchError> {
    let path = workload::create_table(connection, "bench_round_trip", 1).await?;
    let options = AppendOptions {
        batch_size_bytes: 1,
        linger: Duration::from_millis(1),
        acks,
        ..AppendOptions::default()
    };
    let writer = AppendWriter::new(connection.clone(), &path, options).await?;
    let schema = writer.table().schema.arrow().clone();
    let mut sampler = Sampler::new(samples);
    for index in sampler.indices() {
        let rows = rows::batch(&schema, (index * rows_per_batch) as i64, rows_per_batch, 0)?;
        let started = Instant::now();
        writer.append(rows).await?.wait().await?;
        sampler.record(index, started);
    }
    writer.close().await?;
    workload::drop_table(connection, &path).await?;
    Ok(sampler.latency)
}
