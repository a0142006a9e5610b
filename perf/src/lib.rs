//! `ufer-perf`: micro-benchmarks of the hot paths, and what they share.
//!
//! - `cargo bench -p ufer-perf --bench batch_codec`: building a batch, checking its CRC,
//!   projecting 2 of 20 columns, decoding (criterion; throughput in bytes/s).
//! - `cargo run -p ufer-perf --release --bin log_append -- --seconds 5`: durable appends to a
//!   log tablet with group commit, side by side with a plain O_DIRECT write + fdatasync of the
//!   same bytes on the same file system, interleaved and repeated; plus the latency of one
//!   durable append.
//!
//! Benchmarks only run when asked; nothing here is a timed assertion.

// Benchmark support: a panic is a failed benchmark with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ufer_wire::BatchSchema;

/// Columns of the wide benchmark table.
pub const WIDE_COLUMN_COUNT: usize = 20;

/// A 20-column schema: int64, float64 and string columns in turn, schema id 1.
pub fn wide_schema() -> BatchSchema {
    let fields: Vec<Field> = (0..WIDE_COLUMN_COUNT)
        .map(|index| {
            let data_type = match index % 3 {
                0 => DataType::Int64,
                1 => DataType::Float64,
                _ => DataType::Utf8,
            };
            Field::new(format!("c{index}"), data_type, true)
        })
        .collect();
    BatchSchema::new(1, Arc::new(Schema::new(fields))).expect("supported schema")
}

/// `rows` rows of the wide table (about 12 bytes per cell).
pub fn wide_batch(schema: &BatchSchema, rows: usize, seed: i64) -> RecordBatch {
    let columns: Vec<ArrayRef> = (0..WIDE_COLUMN_COUNT)
        .map(|index| -> ArrayRef {
            let base = seed.wrapping_mul(1_000_003) + index as i64;
            match index % 3 {
                0 => Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|row| base + row))),
                1 => Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|row| (base as f64) * 0.5 + row as f64),
                )),
                _ => Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|row| format!("v{:07}", (base as usize + row) % 10_000_000)),
                )),
            }
        })
        .collect();
    RecordBatch::try_new(schema.arrow().clone(), columns).expect("rows match the schema")
}

/// Rows of the wide table whose uncompressed batch is about `bytes` bytes (measured from a
/// trial batch, since per-row size includes fixed overheads).
pub fn wide_rows_for(bytes: usize) -> usize {
    let schema = wide_schema();
    let trial_rows = 1_000;
    let trial = ufer_wire::LogBatchBuilder::new(schema.clone(), ufer_wire::BatchOptions::default())
        .expect("builder")
        .build(&wide_batch(&schema, trial_rows, 0), None, ufer_wire::WriterStamp::NONE)
        .expect("trial batch");
    let per_row = trial.len() as f64 / trial_rows as f64;
    ((bytes as f64 / per_row) as usize).max(1)
}

/// Percentile summary of a latency histogram, in microseconds.
pub fn percentiles_us(histogram: &hdrhistogram::Histogram<u64>) -> String {
    format!(
        "p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs ({} samples)",
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.value_at_quantile(0.999) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
        histogram.len()
    )
}
