//! The wide table every benchmark uses: 20 columns of int64, float64 and string in turn,
//! with batches sized to a byte target.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ufer_wire::{BatchOptions, BatchSchema, BuildError, Compression, LogBatchBuilder, WriterStamp};

/// Columns of the wide table.
pub const WIDE_COLUMN_COUNT: usize = 20;

/// Schema id of the wide table.
pub const WIDE_SCHEMA_ID: u16 = 1;

/// Rows of the trial batch that estimates bytes per row.
const TRIAL_ROW_COUNT: usize = 1_000;

/// Rounds of correction when sizing a batch to a byte target; each one is exact to a few
/// rows, so two or three suffice.
const SIZING_ROUND_COUNT_MAX: usize = 8;

/// The 20-column table: `c0 BIGINT, c1 DOUBLE, c2 STRING, c3 BIGINT, ...`, all nullable.
#[derive(Clone, Debug)]
pub struct WideTable {
    schema: BatchSchema,
}

impl WideTable {
    /// The table's schema, known by [`WIDE_SCHEMA_ID`].
    pub fn new() -> Result<Self, BuildError> {
        let fields: Vec<Field> = (0..WIDE_COLUMN_COUNT)
            .map(|index| Field::new(format!("c{index}"), column_type(index), true))
            .collect();
        let schema = BatchSchema::new(WIDE_SCHEMA_ID, Arc::new(Schema::new(fields)))?;
        Ok(Self { schema })
    }

    /// The schema batches are built, checked and decoded with.
    pub fn schema(&self) -> &BatchSchema {
        &self.schema
    }

    /// `rows` rows whose values depend on `seed`: ascending integers and floats, and
    /// 8-character strings (about 12 bytes per cell with offsets).
    pub fn record_batch(&self, rows: usize, seed: i64) -> Result<RecordBatch, BuildError> {
        let columns: Vec<ArrayRef> = (0..WIDE_COLUMN_COUNT)
            .map(|index| -> ArrayRef {
                let base = seed.wrapping_mul(1_000_003).wrapping_add(index as i64);
                match column_type(index) {
                    DataType::Int64 => Arc::new(Int64Array::from_iter_values(
                        (0..rows as i64).map(|row| base.wrapping_add(row)),
                    )),
                    DataType::Float64 => Arc::new(Float64Array::from_iter_values(
                        (0..rows).map(|row| base as f64 * 0.5 + row as f64),
                    )),
                    _ => Arc::new(StringArray::from_iter_values((0..rows).map(|row| {
                        format!("v{:07}", (base.unsigned_abs() as usize + row) % 10_000_000)
                    }))),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema.arrow().clone(), columns)?)
    }

    /// The batch bytes of `rows` rows, as a client would send them.
    pub fn log_batch(
        &self,
        rows: usize,
        seed: i64,
        compression: Compression,
    ) -> Result<Vec<u8>, BuildError> {
        let options = BatchOptions { compression, statistics_columns: vec![] };
        LogBatchBuilder::new(self.schema.clone(), options)?.build(
            &self.record_batch(rows, seed)?,
            None,
            WriterStamp::NONE,
        )
    }

    /// The most rows whose uncompressed batch is at most `size_max_bytes` (at least one
    /// row). Measured by building batches, since headers and metadata add a fixed part.
    pub fn rows_for_size(&self, size_max_bytes: usize) -> Result<usize, BuildError> {
        let trial = self.log_batch(TRIAL_ROW_COUNT, 0, Compression::None)?.len();
        let row_size = trial as f64 / TRIAL_ROW_COUNT as f64;
        let mut rows = ((size_max_bytes as f64 / row_size) as usize).max(1);
        for _ in 0..SIZING_ROUND_COUNT_MAX {
            let size = self.log_batch(rows, 0, Compression::None)?.len();
            if size <= size_max_bytes {
                return Ok(rows);
            }
            let over_rows = ((size - size_max_bytes) as f64 / row_size).ceil() as usize;
            if rows == 1 {
                return Ok(1);
            }
            rows = rows.saturating_sub(over_rows.max(1)).max(1);
        }
        Ok(rows)
    }
}

fn column_type(index: usize) -> DataType {
    match index % 3 {
        0 => DataType::Int64,
        1 => DataType::Float64,
        _ => DataType::Utf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_their_size_target() {
        let table = WideTable::new().unwrap();
        for target in [16 * 1024, 1024 * 1024] {
            let rows = table.rows_for_size(target).unwrap();
            let size = table.log_batch(rows, 0, Compression::None).unwrap().len();
            assert!(size <= target, "{size} > {target}");
            assert!(size as f64 > target as f64 * 0.95, "{size} is far below {target}");
        }
    }

    #[test]
    fn batches_pass_the_append_checks() {
        let table = WideTable::new().unwrap();
        for compression in [Compression::None, Compression::Lz4Frame] {
            let bytes = table.log_batch(100, 3, compression).unwrap();
            let batch = ufer_wire::LogBatch::parse(&bytes).unwrap();
            batch.check_schema(table.schema()).unwrap();
            assert_eq!(batch.record_count(), 100);
        }
    }
}
