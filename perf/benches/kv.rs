//! Storage reads and the KV's hot paths: reading a log segment (1 MiB batches with direct
//! I/O, whole and projected to 2 of 20 columns); applying 1 000 mutations to the KV's
//! memtable, point reads from the memtable and from sorted files (through the block cache),
//! a 100-row upsert turned into changelog and mutations by the merge engine, and encoding keys
//! and rows.
//!
//! Each timed run makes its own glommio executor (the KV's I/O needs one) on this thread's
//! behalf and times only the loop inside it. Throughput is in operations (keys or rows).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ufer_io::DataDir;
use ufer_perf::ExecutorOptions;
use ufer_shard::{
    BlockCache, ChangelogGenerator, KvConfig, KvTablet, PkTableOptions, RowOp, WriteRequest,
};
use ufer_wire::schema_text::parse_schema;

/// Keys in the tablet read from.
const KEY_COUNT: u64 = 100_000;

/// Mutations applied per timed batch.
const APPLY_BATCH: usize = 1_000;

fn key(id: u64) -> Vec<u8> {
    (id ^ (1 << 63)).to_be_bytes().to_vec()
}

fn value(id: u64) -> Vec<u8> {
    let mut value = vec![0u8; 100];
    value[..8].copy_from_slice(&id.to_le_bytes());
    value
}

/// Runs `body(iterations)` on a fresh executor with a tablet of `KEY_COUNT` keys (flushed to
/// files when `flushed`) and returns the time it measured.
fn with_tablet<F, Fut>(flushed: bool, iterations: u64, body: F) -> Duration
where
    F: FnOnce(Rc<KvTablet>, u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Duration> + 'static,
{
    ufer_perf::run_on_new_thread(ExecutorOptions::default(), move || async move {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).await.unwrap();
        let config = KvConfig::production();
        let cache = Rc::new(BlockCache::new(config.block_cache_size_max_bytes));
        let tablet = Rc::new(KvTablet::open_with_cache(&data, config, cache).await.unwrap());
        tablet.apply(1, (0..KEY_COUNT).map(|id| (key(id), Some(value(id)))));
        if flushed {
            tablet.flush().await.unwrap();
        }
        let measured = body(tablet.clone(), iterations).await;
        drop(dir);
        measured
    })
    .unwrap()
}

fn kv(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    tablet_benches(&mut group);
    merge_engine_benches(&mut group);
    group.finish();
}

/// The tablet's: applying mutations to the memtable, point reads from the memtable and from
/// sorted files.
fn tablet_benches(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.throughput(Throughput::Elements(APPLY_BATCH as u64));
    group.bench_function("apply_1000_to_memtable", |b| {
        b.iter_custom(|iterations| {
            with_tablet(false, iterations, |tablet, iterations| async move {
                let mut offset = 2;
                let started = Instant::now();
                for round in 0..iterations {
                    let first = round * APPLY_BATCH as u64 % KEY_COUNT;
                    offset += 1;
                    tablet.apply(
                        offset,
                        (first..first + APPLY_BATCH as u64).map(|id| (key(id), Some(value(id)))),
                    );
                }
                started.elapsed()
            })
        })
    });

    group.throughput(Throughput::Elements(1));
    for (name, flushed) in [("get_from_memtable", false), ("get_from_files_cached", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                with_tablet(flushed, iterations, |tablet, iterations| async move {
                    // Warm the block cache (a 4 KiB block holds ~30 of these entries, so
                    // every 8th key touches every block), then time the reads.
                    for id in (0..KEY_COUNT).step_by(8) {
                        tablet.get(&key(id)).await.unwrap();
                    }
                    let started = Instant::now();
                    for round in 0..iterations {
                        let id = round.wrapping_mul(0x9E37_79B9) % KEY_COUNT;
                        black_box(tablet.get(&key(id)).await.unwrap());
                    }
                    started.elapsed()
                })
            })
        });
    }
}

/// The merge engine's: an upsert of 100 rows turned into changelog and mutations, and
/// encoding keys and decoding rows.
fn merge_engine_benches(group: &mut BenchmarkGroup<'_, WallTime>) {
    let arrow = Arc::new(parse_schema("id BIGINT NOT NULL, v BIGINT, pad STRING").unwrap());
    let options = PkTableOptions::from_definition(&arrow, &["id".into()], &[], &[]).unwrap();
    let generator = ChangelogGenerator::new(1, arrow.clone(), options).unwrap();
    let ids: Vec<i64> = (0..100).collect();
    let rows = RecordBatch::try_new(
        arrow,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Int64Array::from(vec![1i64; 100])),
            Arc::new(StringArray::from(vec!["p".repeat(80); 100])),
        ],
    )
    .unwrap();
    let request = WriteRequest { batch: &rows, ops: None::<&[RowOp]>, target_columns: None };
    let keys = generator.keys_to_read(&request).unwrap();
    // Every key exists with another value: 100 updates (-U and +U each).
    let older = RecordBatch::try_new(
        rows.schema(),
        vec![
            rows.column(0).clone(),
            Arc::new(Int64Array::from(vec![0i64; 100])),
            rows.column(2).clone(),
        ],
    )
    .unwrap();
    let current: Vec<Option<Vec<u8>>> = (0..100)
        .map(|row| {
            let mut encoded = Vec::new();
            generator.row_codec().encode(&older, row, &mut encoded).unwrap();
            Some(encoded)
        })
        .collect();
    group.throughput(Throughput::Elements(100));
    group.bench_function("changelog_of_100_updates", |b| {
        b.iter(|| black_box(generator.generate(&request, &current).unwrap()))
    });
    group.bench_function("encode_100_keys", |b| {
        b.iter(|| black_box(generator.keys_to_read(&request).unwrap()))
    });
    let stored: Vec<&[u8]> = current.iter().map(|value| value.as_deref().unwrap()).collect();
    group.bench_function("decode_100_rows", |b| {
        b.iter(|| black_box(generator.row_codec().decode_rows(&stored).unwrap()))
    });
    black_box(keys);
}

/// Batches in the log the read benchmark reads.
const LOG_BATCH_COUNT: u64 = 32;

fn log_read(c: &mut Criterion) {
    use ufer_perf::WideTable;
    use ufer_shard::{LogConfig, LogTablet, ReadRequest, SystemClock};
    use ufer_wire::{Compression, Projection};

    let table = WideTable::new().unwrap();
    let rows = table.rows_for_size(1024 * 1024).unwrap();
    let batch = table.log_batch(rows, 1, Compression::None).unwrap();
    let batch_bytes = batch.len();
    let mut group = c.benchmark_group("log_read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(batch_bytes as u64));
    for (name, projected) in [("1mib_batch_from_disk", false), ("1mib_batch_2_of_20_columns", true)]
    {
        let (batch, schema) = (batch.clone(), table.schema().clone());
        group.bench_function(name, move |b| {
            let (batch, schema) = (batch.clone(), schema.clone());
            b.iter_custom(move |iterations| {
                let (mut batch, schema) = (batch.clone(), schema.clone());
                ufer_perf::run_on_new_thread(ExecutorOptions::default(), move || async move {
                    let dir = tempfile::tempdir().unwrap();
                    let clock: Rc<dyn ufer_shard::Clock> = Rc::new(SystemClock);
                    let log =
                        LogTablet::open(dir.path(), LogConfig::production(), clock).await.unwrap();
                    for _ in 0..LOG_BATCH_COUNT {
                        log.append_durable(&mut batch, &schema).await.unwrap();
                    }
                    let projection = Projection::new(schema.clone(), &[0, 1]).unwrap();
                    let records_per_batch = log.high_watermark() / LOG_BATCH_COUNT;
                    let started = Instant::now();
                    for round in 0..iterations {
                        let offset = round % LOG_BATCH_COUNT * records_per_batch;
                        let read = log
                            .read(ReadRequest {
                                from_offset: offset,
                                max_bytes: batch_bytes,
                                projection: projected.then_some(&projection),
                            })
                            .await
                            .unwrap();
                        black_box(read);
                    }
                    let elapsed = started.elapsed();
                    log.close().await.unwrap();
                    elapsed
                })
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kv, log_read);
criterion_main!(benches);
