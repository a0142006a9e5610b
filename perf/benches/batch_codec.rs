//! The batch codec's hot paths on ~1 MiB batches of the 20-column wide table: build (plain,
//! LZ4), verify (CRC; CRC plus the structure checks an append makes), server projection of
//! 2 of 20 columns (metadata only; assembled with its new CRC), decode (all columns, LZ4,
//! the projected batch).
//!
//! Throughput is in bytes of the uncompressed batch for build, verify, project and full
//! decodes, so GiB/s figures compare across them; the projected decode counts the projected
//! batch's bytes. Sample counts are kept small so the suite runs in about a minute.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ufer_perf::WideTable;
use ufer_wire::{
    aligned_copy, project, BatchDecoder, BatchOptions, Compression, LogBatch, LogBatchBuilder,
    Projection, WriterStamp,
};

/// Uncompressed size of the benchmark batch (at most; within a few rows of it).
const BATCH_SIZE_BYTES: usize = 1024 * 1024;

/// The two columns projection keeps: an int64 and a float64 one.
const PROJECTED_COLUMNS: [usize; 2] = [0, 1];

/// Everything the benchmarks read, made once.
struct Fixture {
    table: WideTable,
    rows: arrow_array::RecordBatch,
    plain: Vec<u8>,
    lz4: Vec<u8>,
}

fn fixture() -> Fixture {
    let table = WideTable::new().expect("the wide table's schema is supported");
    let row_count = table.rows_for_size(BATCH_SIZE_BYTES).expect("sizing the batch");
    let rows = table.record_batch(row_count, 1).expect("rows of the wide table");
    let plain = table.log_batch(row_count, 1, Compression::None).expect("plain batch");
    let lz4 = table.log_batch(row_count, 1, Compression::Lz4Frame).expect("LZ4 batch");
    Fixture { table, rows, plain, lz4 }
}

fn configure<'a>(c: &'a mut Criterion, name: &str, bytes: usize) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(bytes as u64));
    group
}

fn build(c: &mut Criterion) {
    let fixture = fixture();
    let mut group = configure(c, "build", fixture.plain.len());
    for (name, compression) in [("plain", Compression::None), ("lz4", Compression::Lz4Frame)] {
        let options = BatchOptions { compression, statistics_columns: vec![] };
        let mut builder = LogBatchBuilder::new(fixture.table.schema().clone(), options).unwrap();
        group.bench_function(name, |bench| {
            bench.iter(|| builder.build(black_box(&fixture.rows), None, WriterStamp::NONE).unwrap())
        });
    }
    // The same build into a reused output buffer: the difference is the allocation (and
    // page faults) of a fresh 1 MiB vector.
    let mut builder =
        LogBatchBuilder::new(fixture.table.schema().clone(), BatchOptions::default()).unwrap();
    let mut out = Vec::with_capacity(2 * BATCH_SIZE_BYTES);
    group.bench_function("plain_reused_buffer", |bench| {
        bench.iter(|| {
            out.clear();
            builder.build_into(black_box(&fixture.rows), None, WriterStamp::NONE, &mut out).unwrap()
        })
    });
    group.finish();
}

fn verify(c: &mut Criterion) {
    let fixture = fixture();
    let (bytes, schema) = (&fixture.plain, fixture.table.schema());
    let mut group = configure(c, "verify", bytes.len());
    group.bench_function("crc", |bench| {
        bench.iter(|| LogBatch::parse(black_box(bytes)).unwrap().len())
    });
    group.bench_function("append_checks", |bench| {
        bench.iter(|| LogBatch::parse(black_box(bytes)).unwrap().check_schema(schema).unwrap())
    });
    group.finish();
}

fn projection(c: &mut Criterion) {
    let fixture = fixture();
    let bytes = &fixture.plain;
    let projection = Projection::new(fixture.table.schema().clone(), &PROJECTED_COLUMNS).unwrap();
    let mut group = configure(c, "project", bytes.len());
    group.bench_function("2_of_20_metadata", |bench| {
        bench.iter(|| project(black_box(bytes), &projection).unwrap())
    });
    group.bench_function("2_of_20_assembled", |bench| {
        bench.iter(|| project(black_box(bytes), &projection).unwrap().assemble(bytes))
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let fixture = fixture();
    let schema = fixture.table.schema();
    let decoder = BatchDecoder::new(schema.clone());
    let plain = aligned_copy(&fixture.plain);
    let lz4 = aligned_copy(&fixture.lz4);
    let mut group = configure(c, "decode", fixture.plain.len());
    group.bench_function("all_columns", |bench| {
        bench.iter(|| decoder.decode(black_box(&plain)).unwrap().record_batch.num_rows())
    });
    group.bench_function("all_columns_lz4", |bench| {
        bench.iter(|| decoder.decode(black_box(&lz4)).unwrap().record_batch.num_rows())
    });

    let projection = Projection::new(schema.clone(), &PROJECTED_COLUMNS).unwrap();
    let projected = project(&fixture.plain, &projection).unwrap().assemble(&fixture.plain);
    let projected_decoder = BatchDecoder::new(projection.projected_schema().clone());
    let projected = aligned_copy(&projected);
    group.throughput(Throughput::Bytes(projected.len() as u64));
    group.bench_function("projected_2_of_20", |bench| {
        bench.iter(|| projected_decoder.decode(black_box(&projected)).unwrap().record_batch)
    });
    group.finish();
}

criterion_group!(benches, build, verify, projection, decode);
criterion_main!(benches);
