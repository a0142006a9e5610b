//! The table every workload writes: 20 columns, about 1 KiB per row, with the writer's
//! timestamp in each row so a reader can tell how long the row took to reach it.
//!
//! `id BIGINT NOT NULL, sent_us BIGINT NOT NULL` (microseconds since the Unix epoch when the
//! row was meant to be sent), then six each of `BIGINT`, `DOUBLE` and 148-byte `STRING`
//! columns: 2 × 8 + 6 × 8 + 6 × 8 + 6 × (148 + 4 offset bytes) = 1 024 bytes of Arrow data
//! per row. Projection "2 of 20" reads `id` and `sent_us`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;

/// Columns of the table.
pub const COLUMN_COUNT: usize = 20;

/// Bytes of Arrow data per row (values and offsets, no validity: nothing is null).
pub const ROW_SIZE_BYTES: usize = 1024;

/// Characters of each string cell in the default 1 KiB rows.
const STRING_SIZE_BYTES: usize = 148;

/// Bytes of Arrow data per row besides the string characters: 14 eight-byte columns and a
/// 4-byte offset per string cell.
const FIXED_ROW_SIZE_BYTES: usize = 14 * 8 + COLUMNS_PER_KIND * 4;

/// Smallest row `batch_of_size` makes (each string holds its 24-character id prefix).
pub const ROW_SIZE_MIN_BYTES: usize = FIXED_ROW_SIZE_BYTES + COLUMNS_PER_KIND * 24;

const _: () =
    assert!(FIXED_ROW_SIZE_BYTES + COLUMNS_PER_KIND * STRING_SIZE_BYTES == ROW_SIZE_BYTES);

/// Columns of each kind after `id` and `sent_us`.
const COLUMNS_PER_KIND: usize = 6;

/// The table's schema text, for `CreateTable`.
pub fn schema_text() -> String {
    let mut columns = vec!["id BIGINT NOT NULL".to_string(), "sent_us BIGINT NOT NULL".into()];
    for index in 0..COLUMNS_PER_KIND {
        columns.push(format!("i{index} BIGINT"));
    }
    for index in 0..COLUMNS_PER_KIND {
        columns.push(format!("f{index} DOUBLE"));
    }
    for index in 0..COLUMNS_PER_KIND {
        columns.push(format!("s{index} STRING"));
    }
    columns.join(", ")
}

/// The table's Arrow schema (what [`schema_text`] describes).
pub fn arrow_schema() -> Result<SchemaRef, crate::error::BenchError> {
    ufer_wire::schema_text::parse_schema(&schema_text())
        .map(Arc::new)
        .map_err(|error| crate::error::BenchError::Other(error.to_string()))
}

/// The two columns a projected read asks for.
pub fn projected_columns() -> Vec<String> {
    vec!["id".into(), "sent_us".into()]
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_micros() as i64)
}

/// `rows` rows with ids from `first_id`, all sent at `sent_us`, in `schema` (the table's).
pub fn batch(
    schema: &SchemaRef,
    first_id: i64,
    rows: usize,
    sent_us: i64,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    batch_of_size(schema, first_id, rows, sent_us, ROW_SIZE_BYTES)
}

/// Like [`batch`], with rows of about `row_size_bytes` of Arrow data (at least
/// [`ROW_SIZE_MIN_BYTES`]): the string cells grow or shrink.
pub fn batch_of_size(
    schema: &SchemaRef,
    first_id: i64,
    rows: usize,
    sent_us: i64,
    row_size_bytes: usize,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let string_size = row_size_bytes.max(ROW_SIZE_MIN_BYTES).saturating_sub(FIXED_ROW_SIZE_BYTES)
        / COLUMNS_PER_KIND;
    let ids = Int64Array::from_iter_values(first_id..first_id + rows as i64);
    let mut columns: Vec<ArrayRef> =
        vec![Arc::new(ids), Arc::new(Int64Array::from(vec![sent_us; rows]))];
    for kind in 0..COLUMNS_PER_KIND {
        let base = first_id.wrapping_mul(31).wrapping_add(kind as i64);
        columns.push(Arc::new(Int64Array::from_iter_values(
            (0..rows as i64).map(|row| base.wrapping_add(row)),
        )));
    }
    for kind in 0..COLUMNS_PER_KIND {
        columns.push(Arc::new(Float64Array::from_iter_values(
            (0..rows).map(|row| (first_id + row as i64) as f64 * 0.5 + kind as f64),
        )));
    }
    for kind in 0..COLUMNS_PER_KIND {
        columns.push(Arc::new(StringArray::from_iter_values((0..rows).map(|row| {
            let id = first_id + row as i64;
            let mut text = format!("{kind}:{id:020}:");
            while text.len() < string_size {
                text.push(char::from(b'a' + ((id as usize + text.len()) % 26) as u8));
            }
            text
        }))));
    }
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_one_kib_of_arrow_data_and_fit_the_schema_text() {
        let schema = ufer_wire::schema_text::parse_schema(&schema_text()).unwrap();
        let schema = Arc::new(schema);
        let rows = batch(&schema, 7, 100, 42).unwrap();
        assert_eq!(rows.num_columns(), COLUMN_COUNT);
        let data: usize = rows
            .columns()
            .iter()
            .map(|column| {
                column.to_data().buffers().iter().map(|buffer| buffer.len()).sum::<usize>()
            })
            .sum();
        // Offsets have one extra entry per string column.
        assert_eq!(data, 100 * ROW_SIZE_BYTES + COLUMNS_PER_KIND * 4);
        assert_eq!(projected_columns().len(), 2);
        for size in [ROW_SIZE_MIN_BYTES, 300, 4096] {
            let rows = batch_of_size(&schema, 7, 10, 42, size).unwrap();
            let strings: usize =
                (14..20).map(|column| rows.column(column).to_data().buffers()[1].len()).sum();
            let expected = FIXED_ROW_SIZE_BYTES + (size - FIXED_ROW_SIZE_BYTES) / 6 * 6;
            assert_eq!(strings / 10 + FIXED_ROW_SIZE_BYTES, expected, "rows of {size} bytes");
        }
    }
}
