//! `upsert` and `lookup`: the workloads of primary-key tables.
//!
//! The table has 100-byte rows (`id BIGINT NOT NULL, v BIGINT, pad STRING` with an 80-byte
//! pad: 8 + 8 + 80 + 4 offset bytes = 100 bytes of Arrow data) keyed by `id`, in a key space
//! of `key_count` keys drawn uniformly or zipfian. `upsert`: writers send requests of
//! `batch_rows` rows as fast as they are answered (closed loop, `acks=all`), each an
//! `UpsertWriter::upsert` that reads the stored rows, merges and appends the changelog.
//! `lookup`: the table is first loaded with every key, then readers look up `batch_keys`
//! keys per request, closed loop. Latency is per request; throughput counts rows (upserted
//! or looked up) answered inside the measurement window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use hdrhistogram::Histogram;
use ufer_wire::client::{Connection, Lookuper, UpsertOptions, UpsertWriter};
use ufer_wire::protocol::messages::{TableDefinition, TablePath};

use crate::error::BenchError;
use crate::keys::{Distribution, KeyGenerator};
use crate::raw_quic::merge;
use crate::report::{latency_histogram, record, Throughput, Window};

/// Bytes of Arrow data per row.
pub const KV_ROW_SIZE_BYTES: usize = 100;

/// Characters of the pad column.
const PAD_SIZE_BYTES: usize = 80;

/// Rows per request while loading the table for `lookup`.
const LOAD_BATCH_ROWS: u64 = 10_000;

/// The table's schema text.
pub const SCHEMA_TEXT: &str = "id BIGINT NOT NULL, v BIGINT, pad STRING";

/// A primary-key workload run.
#[derive(Clone, Debug)]
pub struct KvParams {
    /// Concurrent writers (upsert) or readers (lookup).
    pub actors: usize,
    /// Keys in the key space.
    pub key_count: u64,
    /// How keys are drawn.
    pub distribution: Distribution,
    /// Rows (upsert) or keys (lookup) per request.
    pub batch_rows: usize,
    /// Left out of the figures.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
}

/// Creates the primary-key table `name` with `buckets` buckets, replacing an old one.
pub async fn create_table(
    connection: &Connection,
    name: &str,
    buckets: u32,
) -> Result<TablePath, BenchError> {
    let definition = TableDefinition {
        schema: SCHEMA_TEXT.into(),
        bucket_count: buckets,
        primary_key: vec!["id".into()],
        ..TableDefinition::default()
    };
    crate::workload::create_table_as(connection, name, definition).await
}

/// Rows with the ids `ids` and value `value`.
pub fn rows(schema: &SchemaRef, ids: &[i64], value: i64) -> Result<RecordBatch, BenchError> {
    let pad = "p".repeat(PAD_SIZE_BYTES);
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(Int64Array::from(vec![value; ids.len()])),
            Arc::new(StringArray::from(vec![pad.as_str(); ids.len()])),
        ],
    )
    .map_err(|error| BenchError::Other(error.to_string()))
}

/// Upserts every key once, in key order (the state `lookup` reads).
pub async fn load(
    connection: &Connection,
    path: &TablePath,
    key_count: u64,
) -> Result<(), BenchError> {
    let writer = UpsertWriter::new(connection, path, UpsertOptions::default()).await?;
    let schema = writer.table().schema.arrow().clone();
    let mut first = 0;
    while first < key_count {
        let end = (first + LOAD_BATCH_ROWS).min(key_count);
        let ids: Vec<i64> = (first as i64..end as i64).collect();
        writer.upsert(&rows(&schema, &ids, 0)?).await?;
        first = end;
    }
    Ok(())
}

/// Runs upserts per `params` against the primary-key table at `path`.
pub async fn run_upsert(
    connection: &Connection,
    path: &TablePath,
    params: &KvParams,
) -> Result<(Throughput, Histogram<u64>), BenchError> {
    let window = Window::after(params.warmup, params.duration);
    let mut tasks = Vec::with_capacity(params.actors);
    for actor in 0..params.actors {
        let writer = UpsertWriter::new(connection, path, UpsertOptions::default()).await?;
        let schema = writer.table().schema.arrow().clone();
        let params = params.clone();
        tasks.push(tokio::spawn(async move {
            let mut keys =
                KeyGenerator::new(params.key_count, params.distribution, actor as u64 + 1);
            let mut done =
                Throughput { seconds: window.duration().as_secs_f64(), ..Throughput::default() };
            let mut latency = latency_histogram();
            let mut value = 0i64;
            while Instant::now() < window.end {
                value += 1;
                let ids: Vec<i64> =
                    (0..params.batch_rows).map(|_| keys.next_key() as i64).collect();
                let batch = rows(&schema, &ids, value)?;
                let started = Instant::now();
                writer.upsert(&batch).await?;
                let finished = Instant::now();
                if window.contains(finished) {
                    done.add((ids.len() * KV_ROW_SIZE_BYTES) as u64, ids.len() as u64);
                    record(&mut latency, (finished - started).as_micros() as u64);
                }
            }
            Ok::<_, BenchError>((done, latency))
        }));
    }
    merge(tasks, window).await
}

/// Runs lookups per `params` against the loaded primary-key table at `path`.
pub async fn run_lookup(
    connection: &Connection,
    path: &TablePath,
    params: &KvParams,
) -> Result<(Throughput, Histogram<u64>), BenchError> {
    let window = Window::after(params.warmup, params.duration);
    let mut tasks = Vec::with_capacity(params.actors);
    for actor in 0..params.actors {
        let lookuper = Lookuper::new(connection, path, None).await?;
        let schema = lookuper.key_schema().clone();
        let params = params.clone();
        tasks.push(tokio::spawn(async move {
            let mut keys =
                KeyGenerator::new(params.key_count, params.distribution, actor as u64 + 99);
            let mut done =
                Throughput { seconds: window.duration().as_secs_f64(), ..Throughput::default() };
            let mut latency = latency_histogram();
            while Instant::now() < window.end {
                let ids: Vec<i64> =
                    (0..params.batch_rows).map(|_| keys.next_key() as i64).collect();
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(Int64Array::from_iter_values(ids.iter().copied()))],
                )
                .map_err(|error| BenchError::Other(error.to_string()))?;
                let started = Instant::now();
                let found = lookuper.lookup(&batch).await?;
                let finished = Instant::now();
                // Every key was loaded: one row per distinct key.
                if found.rows.num_rows() != ids.len() {
                    let distinct = ids.iter().collect::<std::collections::BTreeSet<_>>().len();
                    if found.rows.num_rows() != distinct {
                        return Err(BenchError::Other(format!(
                            "lookup found {} of {distinct} loaded keys",
                            found.rows.num_rows()
                        )));
                    }
                }
                if window.contains(finished) {
                    let rows = found.rows.num_rows();
                    done.add((rows * KV_ROW_SIZE_BYTES) as u64, rows as u64);
                    record(&mut latency, (finished - started).as_micros() as u64);
                }
            }
            Ok::<_, BenchError>((done, latency))
        }));
    }
    merge(tasks, window).await
}
