//! The batch codec's hot paths on ~1 MiB batches of a 20-column table: build (plain, LZ4),
//! CRC check (`LogBatch::parse`), server projection of 2 of 20 columns (metadata only, and
//! with the projected bytes assembled), decode (all columns, and the projected batch).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ufer_perf::{wide_batch, wide_rows_for, wide_schema};
use ufer_wire::{
    aligned_copy, project, project_batch, BatchDecoder, BatchOptions, Compression, LogBatch,
    LogBatchBuilder, Projection, WriterStamp,
};

const BATCH_BYTES: usize = 1024 * 1024;

fn codec(c: &mut Criterion) {
    let schema = wide_schema();
    let rows = wide_batch(&schema, wide_rows_for(BATCH_BYTES), 1);
    let mut group = c.benchmark_group("batch");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    for (name, compression) in
        [("build_plain", Compression::None), ("build_lz4", Compression::Lz4Frame)]
    {
        let options = BatchOptions { compression, statistics_columns: vec![] };
        let mut builder = LogBatchBuilder::new(schema.clone(), options).unwrap();
        let mut out = Vec::with_capacity(2 * BATCH_BYTES);
        builder.build_into(&rows, None, WriterStamp::NONE, &mut out).unwrap();
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function(name, |bench| {
            bench.iter(|| {
                out.clear();
                builder.build_into(black_box(&rows), None, WriterStamp::NONE, &mut out).unwrap();
            })
        });
    }

    let bytes = LogBatchBuilder::new(schema.clone(), BatchOptions::default())
        .unwrap()
        .build(&rows, None, WriterStamp::NONE)
        .unwrap();
    let aligned = aligned_copy(&bytes);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("crc_verify", |bench| {
        bench.iter(|| LogBatch::parse(black_box(&bytes)).unwrap().len())
    });
    group.bench_function("validate_for_append", |bench| {
        bench.iter(|| LogBatch::parse(black_box(&bytes)).unwrap().check_schema(&schema).unwrap())
    });

    let projection = Projection::new(schema.clone(), &[0, 1]).unwrap();
    group.bench_function("project_2_of_20_metadata", |bench| {
        bench.iter(|| project(black_box(&bytes), &projection).unwrap().len())
    });
    group.bench_function("project_2_of_20_assembled", |bench| {
        bench.iter(|| project_batch(black_box(&bytes), &projection).unwrap().len())
    });

    let decoder = BatchDecoder::new(schema.clone());
    group.bench_function("decode_all_columns", |bench| {
        bench.iter(|| decoder.decode(black_box(&aligned)).unwrap().record_batch.num_rows())
    });
    let projected = aligned_copy(&project_batch(&bytes, &projection).unwrap());
    let projected_decoder = BatchDecoder::new(projection.projected_schema().clone());
    group.throughput(Throughput::Bytes(projected.len() as u64));
    group.bench_function("decode_projected", |bench| {
        bench.iter(|| {
            projected_decoder.decode(black_box(&projected)).unwrap().record_batch.num_rows()
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
