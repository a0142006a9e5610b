//! The table the whole-system tests use, and its batches.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use ufer_wire::{BatchOptions, BatchSchema, ChangeType, Compression, LogBatchBuilder, WriterStamp};

/// The table's schema as the catalog takes it.
pub const SCHEMA_TEXT: &str = "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)";

/// `id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)`, schema id 1.
pub fn schema() -> BatchSchema {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]);
    match BatchSchema::new(1, Arc::new(schema)) {
        Ok(schema) => schema,
        Err(error) => panic!("the test schema is supported: {error}"),
    }
}

/// Rows `first_id..first_id + rows`: name `row-{id}` (null every seventh), ts `id * 1000`.
pub fn record_batch(first_id: i64, rows: usize) -> RecordBatch {
    let ids: Vec<i64> = (first_id..first_id + rows as i64).collect();
    let names: Vec<Option<String>> =
        ids.iter().map(|id| (id % 7 != 0).then(|| format!("row-{id}"))).collect();
    let timestamps: Vec<i64> = ids.iter().map(|id| id * 1000).collect();
    let columns: Vec<arrow_array::ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(StringArray::from(names)),
        Arc::new(TimestampMillisecondArray::from(timestamps)),
    ];
    match RecordBatch::try_new(schema().arrow().clone(), columns) {
        Ok(batch) => batch,
        Err(error) => panic!("rows match the schema: {error}"),
    }
}

/// A batch of 1 to 199 rows from a random id, with a random compression and, half the time,
/// change types: what the crash and power-loss tests append.
pub fn random_batch(rng: &mut crate::rng::Rng) -> Vec<u8> {
    let rows = rng.in_range(1..200) as usize;
    let compression = match rng.in_range(0..3) {
        0 => Compression::None,
        1 => Compression::Lz4Frame,
        _ => Compression::Zstd,
    };
    let change_types = vec![ChangeType::Insert; rows];
    let with_change_types = rng.in_range(0..2) == 0;
    batch(
        rng.in_range(0..1 << 40) as i64,
        rows,
        compression,
        with_change_types.then_some(&change_types[..]),
    )
}

/// A batch of `rows` rows from `first_id`, with the given compression and change types.
pub fn batch(
    first_id: i64,
    rows: usize,
    compression: Compression,
    change_types: Option<&[ChangeType]>,
) -> Vec<u8> {
    let options = BatchOptions { compression, statistics_columns: vec![0, 2] };
    let built = LogBatchBuilder::new(schema(), options).and_then(|mut builder| {
        builder.build(&record_batch(first_id, rows), change_types, WriterStamp::NONE)
    });
    match built {
        Ok(bytes) => bytes,
        Err(error) => panic!("test batches build: {error}"),
    }
}
