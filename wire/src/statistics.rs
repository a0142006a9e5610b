//! Per-column statistics of a batch (null count, min, max), stored after the header so the
//! server can skip batches for a filter without touching their Arrow data.
//!
//! Layout (little-endian): `u16 column_count`, `u16 reserved = 0`, then per column:
//! `u16 column_index`, `u8 flags` (bit 0: bounds present), `u8 reserved = 0`,
//! `u32 null_count`, and if bounds are present `u16 min_size`, min bytes, `u16 max_size`,
//! max bytes. Column indexes strictly increase. Values are the Arrow native little-endian
//! bytes for fixed-width types (one byte 0/1 for booleans) and the raw bytes for strings and
//! binaries. Bounds longer than [`STATISTICS_VALUE_SIZE_MAX_BYTES`] are left out rather than
//! truncated, so a present bound is always exact. Bounds are absent when every value is null.

use arrow_array::cast::AsArray;
use arrow_array::{downcast_primitive_array, Array, RecordBatch};
use arrow_buffer::ToByteSlice;
use arrow_schema::DataType;

use crate::error::{BatchError, BuildError};
use crate::limits::{STATISTICS_SIZE_MAX_BYTES, STATISTICS_VALUE_SIZE_MAX_BYTES};

const FLAG_BOUNDS: u8 = 0b0000_0001;
const BLOCK_HEADER_SIZE_BYTES: usize = 4;
const ENTRY_HEADER_SIZE_BYTES: usize = 8;

/// Statistics of one column of one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnStatistics {
    /// Top-level column index in the batch's schema.
    pub column: u16,
    /// Null values in the column.
    pub null_count: u32,
    /// Exact minimum and maximum (encoded as described in the module docs), when known.
    pub bounds: Option<(Vec<u8>, Vec<u8>)>,
}

/// Statistics of one column, borrowed from the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnStatisticsRef<'a> {
    /// Top-level column index in the batch's schema.
    pub column: u16,
    /// Null values in the column.
    pub null_count: u32,
    /// Exact minimum and maximum, when known.
    pub bounds: Option<(&'a [u8], &'a [u8])>,
}

/// Computes statistics of the given top-level `columns` (ascending) of `batch`.
pub fn compute(
    batch: &RecordBatch,
    columns: &[usize],
) -> Result<Vec<ColumnStatistics>, BuildError> {
    let mut statistics = Vec::with_capacity(columns.len());
    for (position, &column) in columns.iter().enumerate() {
        let error = |reason: String| BuildError::Statistics { column, reason };
        if position > 0 && columns[position - 1] >= column {
            return Err(error("is not in strictly ascending order".into()));
        }
        if column >= batch.num_columns() {
            return Err(error(format!("is past the last of {} columns", batch.num_columns())));
        }
        let index = u16::try_from(column).map_err(|_| error("is past index 65535".into()))?;
        let array = batch.column(column);
        let bounds = bounds(array.as_ref()).map_err(error)?;
        let bounds = bounds.filter(|(min, max)| {
            min.len() <= STATISTICS_VALUE_SIZE_MAX_BYTES
                && max.len() <= STATISTICS_VALUE_SIZE_MAX_BYTES
        });
        statistics.push(ColumnStatistics {
            column: index,
            null_count: array.null_count() as u32,
            bounds,
        });
    }
    Ok(statistics)
}

/// True if statistics can be computed for a column of this type.
pub fn is_supported(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary
    ) || (data_type.is_primitive() && !matches!(data_type, DataType::Float16))
}

/// Exact min and max of a column, when known.
type Bounds = Option<(Vec<u8>, Vec<u8>)>;

fn bounds(array: &dyn Array) -> Result<Bounds, String> {
    use arrow_arith::aggregate as agg;
    fn pair<T: AsRef<[u8]> + ?Sized>(min: Option<&T>, max: Option<&T>) -> Bounds {
        Some((min?.as_ref().to_vec(), max?.as_ref().to_vec()))
    }
    let data_type = array.data_type();
    if !is_supported(data_type) {
        return Err(format!("has type {data_type}, which has no statistics"));
    }
    Ok(match data_type {
        DataType::Boolean => {
            let array = array.as_boolean();
            let min = agg::min_boolean(array).map(|value| [u8::from(value)]);
            let max = agg::max_boolean(array).map(|value| [u8::from(value)]);
            pair(min.as_ref(), max.as_ref())
        }
        DataType::Utf8 => {
            let array = array.as_string::<i32>();
            pair(agg::min_string(array), agg::max_string(array))
        }
        DataType::LargeUtf8 => {
            let array = array.as_string::<i64>();
            pair(agg::min_string(array), agg::max_string(array))
        }
        DataType::Binary => {
            let array = array.as_binary::<i32>();
            pair(agg::min_binary(array), agg::max_binary(array))
        }
        DataType::LargeBinary => {
            let array = array.as_binary::<i64>();
            pair(agg::min_binary(array), agg::max_binary(array))
        }
        _ => downcast_primitive_array!(
            array => {
                let min = agg::min(array);
                let max = agg::max(array);
                pair(
                    min.as_ref().map(|value| core::slice::from_ref(value).to_byte_slice()),
                    max.as_ref().map(|value| core::slice::from_ref(value).to_byte_slice()),
                )
            }
            other => return Err(format!("has type {other}, which has no statistics")),
        ),
    })
}

/// Size in bytes of the encoded block for `statistics` (0 for none: no block at all).
pub fn encoded_size(statistics: &[ColumnStatistics]) -> usize {
    if statistics.is_empty() {
        return 0;
    }
    let entries: usize = statistics
        .iter()
        .map(|entry| {
            let bounds = entry.bounds.as_ref().map_or(0, |(min, max)| 4 + min.len() + max.len());
            ENTRY_HEADER_SIZE_BYTES + bounds
        })
        .sum();
    BLOCK_HEADER_SIZE_BYTES + entries
}

/// Appends the encoded block to `out` (nothing for no statistics).
pub fn encode(statistics: &[ColumnStatistics], out: &mut Vec<u8>) {
    if statistics.is_empty() {
        return;
    }
    assert!(statistics.len() <= usize::from(u16::MAX));
    out.extend_from_slice(&(statistics.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    for entry in statistics {
        out.extend_from_slice(&entry.column.to_le_bytes());
        out.push(if entry.bounds.is_some() { FLAG_BOUNDS } else { 0 });
        out.push(0);
        out.extend_from_slice(&entry.null_count.to_le_bytes());
        if let Some((min, max)) = &entry.bounds {
            for value in [min, max] {
                assert!(value.len() <= STATISTICS_VALUE_SIZE_MAX_BYTES);
                out.extend_from_slice(&(value.len() as u16).to_le_bytes());
                out.extend_from_slice(value);
            }
        }
    }
}

/// Decodes a statistics block of a batch with `record_count` records.
pub fn decode(block: &[u8], record_count: u32) -> Result<Vec<ColumnStatistics>, BatchError> {
    let mut statistics = Vec::new();
    visit(block, record_count, |entry| {
        statistics.push(ColumnStatistics {
            column: entry.column,
            null_count: entry.null_count,
            bounds: entry.bounds.map(|(min, max)| (min.to_vec(), max.to_vec())),
        })
    })?;
    Ok(statistics)
}

/// Checks a statistics block without keeping what it holds.
pub fn validate(block: &[u8], record_count: u32) -> Result<(), BatchError> {
    visit(block, record_count, |_| ())
}

/// Walks a statistics block, checking it, and hands each entry to `each`. The bounds are
/// copied only when `each` keeps them.
pub(crate) fn visit(
    block: &[u8],
    record_count: u32,
    mut each: impl FnMut(ColumnStatisticsRef<'_>),
) -> Result<(), BatchError> {
    let bad = |reason: String| Err(BatchError::BadStatistics(reason));
    if block.is_empty() {
        return Ok(());
    }
    if block.len() > STATISTICS_SIZE_MAX_BYTES as usize {
        return bad(format!(
            "{} bytes, over the {STATISTICS_SIZE_MAX_BYTES}-byte limit",
            block.len()
        ));
    }
    let mut cursor = Cursor { bytes: block, at: 0 };
    let count = cursor.u16()?;
    if cursor.u16()? != 0 {
        return bad("reserved bytes are not zero".into());
    }
    let mut previous: Option<u16> = None;
    for _ in 0..count {
        let column = cursor.u16()?;
        let flags = cursor.u8()?;
        let reserved = cursor.u8()?;
        let null_count = cursor.u32()?;
        if previous.is_some_and(|previous| previous >= column) {
            return bad(format!("column {column} is out of order"));
        }
        if flags & !FLAG_BOUNDS != 0 || reserved != 0 {
            return bad(format!("column {column} has unknown flags {flags:#04x}"));
        }
        if null_count > record_count {
            return bad(format!(
                "column {column} has {null_count} nulls in {record_count} records"
            ));
        }
        let bounds =
            if flags & FLAG_BOUNDS != 0 { Some((cursor.value()?, cursor.value()?)) } else { None };
        previous = Some(column);
        each(ColumnStatisticsRef { column, null_count, bounds });
    }
    if cursor.at != block.len() {
        return bad(format!("{} bytes left after the last column", block.len() - cursor.at));
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, size: usize) -> Result<&'a [u8], BatchError> {
        let end = self.at.checked_add(size).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(BatchError::BadStatistics(format!(
                "ends at {} bytes, {size} more needed at {}",
                self.bytes.len(),
                self.at
            )));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, BatchError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, BatchError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, BatchError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn value(&mut self) -> Result<&'a [u8], BatchError> {
        let size = usize::from(self.u16()?);
        if size > STATISTICS_VALUE_SIZE_MAX_BYTES {
            return Err(BatchError::BadStatistics(format!("a bound of {size} bytes")));
        }
        self.take(size)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Float64Array, Int32Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn sample() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float64, true),
            Field::new("d", DataType::Boolean, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int32Array::from(vec![Some(5), None, Some(-3)])),
                Arc::new(StringArray::from(vec![Some("pear"), Some("apple"), None])),
                Arc::new(Float64Array::from(vec![None, None, None])),
                Arc::new(BooleanArray::from(vec![true, true, false])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn computed_statistics_round_trip_through_the_block() {
        let statistics = compute(&sample(), &[0, 1, 2, 3]).unwrap();
        assert_eq!(statistics[0].null_count, 1);
        assert_eq!(
            statistics[0].bounds,
            Some(((-3i32).to_le_bytes().to_vec(), 5i32.to_le_bytes().to_vec()))
        );
        assert_eq!(statistics[1].bounds, Some((b"apple".to_vec(), b"pear".to_vec())));
        assert_eq!(statistics[2].bounds, None, "all-null columns have no bounds");
        assert_eq!(statistics[3].bounds, Some((vec![0], vec![1])));
        let mut block = Vec::new();
        encode(&statistics, &mut block);
        assert_eq!(block.len(), encoded_size(&statistics));
        assert_eq!(decode(&block, 3).unwrap(), statistics);
    }

    #[test]
    fn malformed_blocks_are_typed_errors() {
        let statistics = compute(&sample(), &[0, 1]).unwrap();
        let mut block = Vec::new();
        encode(&statistics, &mut block);
        for cut in 1..block.len() {
            assert!(decode(&block[..cut], 3).is_err(), "truncated at {cut}");
        }
        assert!(decode(&block, 0).is_err(), "more nulls than records");
        let mut trailing = block.clone();
        trailing.push(0);
        assert!(decode(&trailing, 3).is_err());
    }

    #[test]
    fn unordered_or_unknown_columns_are_build_errors() {
        assert!(compute(&sample(), &[1, 0]).is_err());
        assert!(compute(&sample(), &[7]).is_err());
    }
}
