//! Which bucket a row goes to: the hash of its bucket-key columns, or round-robin when a
//! table has no bucket key. Every client must agree, so the hash is fixed here: FNV-1a
//! (64-bit) over each key column's value in a canonical form — little-endian bytes for
//! integers, dates, times and timestamps, the UTF-8 bytes of strings, the raw bytes of
//! binaries, one byte for booleans; a null is the single byte `0xFF` — with a `0x00`
//! separator after each column; the hash is then mixed with MurmurHash3's 64-bit finaliser
//! (FNV's low bits depend only on the inputs' low bits, so without mixing keys that differ
//! in their high bits, such as multiples of 4, would all land in one of 4 buckets), and the
//! bucket is the mixed hash modulo the bucket count.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const NULL_MARKER: u8 = 0xFF;
const COLUMN_SEPARATOR: u8 = 0x00;

/// True if a column of this type can be part of a bucket key.
pub fn is_hashable(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Utf8
            | DataType::Binary
            | DataType::Timestamp(_, _)
    )
}

fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME))
}

/// The bucket of every row of `batch`, hashing the columns `key_columns` (indexes into the
/// batch). Fails if a key column has a type [`is_hashable`] refuses.
pub fn buckets_of_rows(
    batch: &RecordBatch,
    key_columns: &[usize],
    bucket_count: u32,
) -> Result<Vec<u32>, String> {
    assert!(bucket_count > 0);
    let mut hashes = vec![FNV_OFFSET_BASIS; batch.num_rows()];
    for &column in key_columns {
        let array = batch.column(column);
        for (row, hash) in hashes.iter_mut().enumerate() {
            *hash = if array.is_null(row) {
                fnv(*hash, &[NULL_MARKER])
            } else {
                hash_value(*hash, array.as_ref(), row)?
            };
            *hash = fnv(*hash, &[COLUMN_SEPARATOR]);
        }
    }
    Ok(hashes.into_iter().map(|hash| (mix(hash) % u64::from(bucket_count)) as u32).collect())
}

/// MurmurHash3's `fmix64`: every input bit affects every output bit.
fn mix(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

fn hash_value(hash: u64, array: &dyn Array, row: usize) -> Result<u64, String> {
    Ok(match array.data_type() {
        DataType::Boolean => fnv(hash, &[u8::from(array.as_boolean().value(row))]),
        DataType::Int8 => fnv(hash, &array.as_primitive::<Int8Type>().value(row).to_le_bytes()),
        DataType::Int16 => fnv(hash, &array.as_primitive::<Int16Type>().value(row).to_le_bytes()),
        DataType::Int32 => fnv(hash, &array.as_primitive::<Int32Type>().value(row).to_le_bytes()),
        DataType::Int64 => fnv(hash, &array.as_primitive::<Int64Type>().value(row).to_le_bytes()),
        DataType::Date32 => fnv(hash, &array.as_primitive::<Date32Type>().value(row).to_le_bytes()),
        DataType::Utf8 => fnv(hash, array.as_string::<i32>().value(row).as_bytes()),
        DataType::Binary => fnv(hash, array.as_binary::<i32>().value(row)),
        DataType::Timestamp(unit, _) => {
            let value = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            fnv(hash, &value.to_le_bytes())
        }
        other => return Err(format!("type {other} cannot be hashed to a bucket")),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn equal_keys_share_a_bucket_and_the_hash_is_pinned() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(1), None])),
                Arc::new(StringArray::from(vec!["a", "b", "a", "c"])),
            ],
        )
        .unwrap();
        let buckets = buckets_of_rows(&batch, &[0, 1], 16).unwrap();
        assert_eq!(buckets[0], buckets[2]);
        // Pinned: changing the hash would move every keyed row of every table.
        assert_eq!(
            buckets_of_rows(&batch, &[0], 1_000_003).unwrap(),
            vec![503_745, 800_837, 503_745, 924_480]
        );
        assert!(is_hashable(&DataType::Utf8) && !is_hashable(&DataType::Float64));
    }

    #[test]
    fn keys_differing_only_in_high_bits_still_spread() {
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        let ids: Vec<i64> = (0..4_000).map(|index| index * 4).collect();
        let batch =
            RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(ids))]).unwrap();
        let mut counts = [0usize; 4];
        for bucket in buckets_of_rows(&batch, &[0], 4).unwrap() {
            counts[bucket as usize] += 1;
        }
        assert!(
            counts.iter().all(|count| *count > 800),
            "multiples of 4 spread over 4 buckets: {counts:?}"
        );
    }
}
