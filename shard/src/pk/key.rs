//! `KeyEncoder`: a row's primary-key columns as bytes whose bytewise order is the key order.
//!
//! Invariants (byte layout in `docs/format.md`, "Primary-key encodings"):
//! - memcomparable: for two keys of one table, `a < b` in SQL order iff `enc(a) < enc(b)`
//!   bytewise; equal keys encode equally;
//! - prefix-closed: every column's encoding is self-delimiting, so the encoding of columns
//!   `(a, b)` begins with the encoding of `(a)`; a lookup by a key prefix (the bucket key when it
//!   leads the primary key) is a byte-prefix range scan.
//!
//! Floats: `-0.0` encodes as `+0.0` and every NaN as one canonical NaN that sorts above
//! `+inf`, so SQL-equal keys are one key. Nested types have no key encoding.

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema};

use super::error::PkError;
use super::value::{is_int_like, value_at, Value};

/// Bytes that follow a `0x00` data byte in an escaped string or binary.
const ESCAPE_AFTER_ZERO_BYTE: u8 = 0xFF;
/// Bytes that end an escaped string or binary (`0x00 0x01`, below any escaped `0x00 0xFF`).
const TERMINATOR: [u8; 2] = [0x00, 0x01];

/// Encodes the key columns of rows into memcomparable bytes.
#[derive(Debug, Clone)]
pub struct KeyEncoder {
    columns: Vec<usize>,
    names: Vec<String>,
    types: Vec<DataType>,
}

/// Whether a column of this type may be part of a primary key.
pub fn has_key_encoding(data_type: &DataType) -> bool {
    is_int_like(data_type)
        || matches!(
            data_type,
            DataType::Boolean
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal128(_, _)
                | DataType::Utf8
                | DataType::Binary
                | DataType::FixedSizeBinary(_)
        )
}

impl KeyEncoder {
    /// An encoder of the columns `key_columns` (indexes into `schema`, in key order).
    pub fn new(schema: &Schema, key_columns: &[usize]) -> Result<Self, String> {
        if key_columns.is_empty() {
            return Err("a primary key needs at least one column".into());
        }
        let mut names = Vec::with_capacity(key_columns.len());
        let mut types = Vec::with_capacity(key_columns.len());
        for &column in key_columns {
            let field = schema
                .fields()
                .get(column)
                .ok_or_else(|| format!("key column index {column} is not in the schema"))?;
            if !has_key_encoding(field.data_type()) {
                return Err(format!(
                    "column {:?} of type {} cannot be a key column (nested and other types \
                     have no key encoding)",
                    field.name(),
                    field.data_type()
                ));
            }
            names.push(field.name().clone());
            types.push(field.data_type().clone());
        }
        Ok(Self { columns: key_columns.to_vec(), names, types })
    }

    /// The key columns, as indexes into the table schema.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// Appends the key of `row` of `batch` (which has the table schema) to `out`.
    pub fn encode(
        &self,
        batch: &RecordBatch,
        row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), PkError> {
        for (position, &column) in self.columns.iter().enumerate() {
            let array = batch
                .columns()
                .get(column)
                .ok_or_else(|| PkError::SchemaMismatch(format!("batch has no column {column}")))?;
            if array.data_type() != &self.types[position] {
                return Err(PkError::SchemaMismatch(format!(
                    "key column {:?} is {}, the batch has {}",
                    self.names[position],
                    self.types[position],
                    array.data_type()
                )));
            }
            self.encode_column(position, &value_at(array, row)?, row, out)?;
        }
        Ok(())
    }

    /// Appends the encoding of the first `column_count` key columns of `row` to `out`; `batch`
    /// holds exactly those columns, in key order. The result is a byte prefix of the full key
    /// of every row that has these values.
    pub fn encode_prefix(
        &self,
        batch: &RecordBatch,
        row: usize,
        column_count: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), PkError> {
        if column_count > self.columns.len() || batch.num_columns() != column_count {
            return Err(PkError::SchemaMismatch(format!(
                "a key prefix of {column_count} columns needs a batch of {column_count} key \
                 columns (of {}); the batch has {}",
                self.columns.len(),
                batch.num_columns()
            )));
        }
        for position in 0..column_count {
            let array = batch.column(position);
            if array.data_type() != &self.types[position] {
                return Err(PkError::SchemaMismatch(format!(
                    "key column {:?} is {}, the prefix batch has {}",
                    self.names[position],
                    self.types[position],
                    array.data_type()
                )));
            }
            self.encode_column(position, &value_at(array, row)?, row, out)?;
        }
        Ok(())
    }

    /// Appends the key of a row held as one value per table column (as the changelog
    /// generator holds rows) to `out`; `row` only names the row in errors.
    pub(crate) fn encode_values(
        &self,
        values: &[Value],
        row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), PkError> {
        for (position, &column) in self.columns.iter().enumerate() {
            let value = values.get(column).ok_or_else(|| {
                let count = values.len();
                PkError::SchemaMismatch(format!("a row of {count} values has no column {column}"))
            })?;
            self.encode_column(position, value, row, out)?;
        }
        Ok(())
    }

    fn encode_column(
        &self,
        position: usize,
        value: &Value,
        row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), PkError> {
        if value.is_null() {
            return Err(PkError::NullKey { column: self.names[position].clone(), row });
        }
        let data_type = &self.types[position];
        let start = out.len();
        encode_value(data_type, value, out)?;
        // Per key column of every row, so in debug builds only: the module's invariants on
        // this value. Prefix-closed: the encoding delimits itself. Memcomparable: it sorts
        // below the encoding of the next larger value.
        debug_assert!(
            delimited_len(data_type, &out[start..]) == Some(out.len() - start),
            "a key column's encoding is self-delimiting: {data_type} {value:?}"
        );
        debug_assert!(
            successor(data_type, value).is_none_or(|next| {
                let mut bytes = Vec::new();
                encode_value(data_type, &next, &mut bytes).is_ok() && out[start..] < bytes[..]
            }),
            "a key encodes below its successor: {data_type} {value:?}"
        );
        Ok(())
    }
}

/// Appends the key encoding of the non-null `value` of a column of type `data_type`.
fn encode_value(data_type: &DataType, value: &Value, out: &mut Vec<u8>) -> Result<(), PkError> {
    let width = int_width_bytes(data_type);
    match value {
        Value::Null => return Err(PkError::UnsupportedType(format!("null in a {data_type} key"))),
        Value::Bool(bool) => out.push(u8::from(*bool)),
        Value::Int(int) => {
            // Flip the sign bit of the column's width: negatives sort first.
            let flipped = (*int as u64) ^ (1_u64 << (width * 8 - 1));
            out.extend_from_slice(&flipped.to_be_bytes()[8 - width..]);
        }
        Value::F32(float) => out.extend_from_slice(&order_f32(*float).to_be_bytes()),
        Value::F64(float) => out.extend_from_slice(&order_f64(*float).to_be_bytes()),
        Value::Decimal(decimal) => {
            out.extend_from_slice(&((*decimal as u128) ^ (1_u128 << 127)).to_be_bytes())
        }
        Value::Str(string) => escape(string.as_bytes(), out),
        Value::Bytes(bytes) if matches!(data_type, DataType::FixedSizeBinary(_)) => {
            out.extend_from_slice(bytes)
        }
        Value::Bytes(bytes) => escape(bytes, out),
        Value::List(_) | Value::Map(_) | Value::Struct(_) => {
            return Err(PkError::UnsupportedType(format!("{data_type} as a key column")))
        }
    }
    Ok(())
}

/// The length of the one key column encoding `bytes` starts with: its fixed width, or up to
/// the end of its escaped terminator. `None` when `bytes` holds no whole encoding.
fn delimited_len(data_type: &DataType, bytes: &[u8]) -> Option<usize> {
    let fixed = match data_type {
        DataType::Boolean => 1,
        DataType::Float32 => 4,
        DataType::Float64 => 8,
        DataType::Decimal128(_, _) => 16,
        DataType::FixedSizeBinary(size) => usize::try_from(*size).ok()?,
        DataType::Utf8 | DataType::Binary => {
            let mut at = 0;
            while at + 1 < bytes.len() {
                match (bytes[at], bytes[at + 1]) {
                    (0, ESCAPE_AFTER_ZERO_BYTE) => at += 2,
                    (0, _) if bytes[at..at + 2] == TERMINATOR => return Some(at + 2),
                    (0, _) => return None,
                    _ => at += 1,
                }
            }
            return None;
        }
        other => int_width_bytes(other),
    };
    (bytes.len() >= fixed).then_some(fixed)
}

/// The next larger value of a key column, when there is one that is simple to name.
fn successor(data_type: &DataType, value: &Value) -> Option<Value> {
    match value {
        Value::Bool(false) => Some(Value::Bool(true)),
        Value::Int(int) => {
            let bits = int_width_bytes(data_type) * 8;
            let max = if bits == 64 { i64::MAX } else { (1_i64 << (bits - 1)) - 1 };
            (*int < max).then(|| Value::Int(int + 1))
        }
        Value::F32(float) if !float.is_nan() && *float != f32::INFINITY => {
            Some(Value::F32(float.next_up()))
        }
        Value::F64(float) if !float.is_nan() && *float != f64::INFINITY => {
            Some(Value::F64(float.next_up()))
        }
        Value::Decimal(decimal) => decimal.checked_add(1).map(Value::Decimal),
        // The shortest longer value: what the terminator must sort below.
        Value::Str(string) => Some(Value::Str(format!("{string}\0"))),
        Value::Bytes(bytes) if !matches!(data_type, DataType::FixedSizeBinary(_)) => {
            Some(Value::Bytes([bytes.as_slice(), &[0]].concat()))
        }
        _ => None,
    }
}

/// Width in bytes of an integer-like key column (8 for the rest, unused there).
fn int_width_bytes(data_type: &DataType) -> usize {
    match data_type {
        DataType::Int8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 | DataType::Date32 | DataType::Time32(_) => 4,
        _ => 8,
    }
}

/// `0x00` → `0x00 0xFF`, then the terminator `0x00 0x01`: order-preserving and
/// self-delimiting (a terminated string sorts before any longer string it prefixes).
fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        out.push(byte);
        if byte == 0 {
            out.push(ESCAPE_AFTER_ZERO_BYTE);
        }
    }
    out.extend_from_slice(&TERMINATOR);
}

fn order_f32(float: f32) -> u32 {
    let canonical = if float.is_nan() {
        f32::NAN.to_bits() & !(1 << 31)
    } else if float == 0.0 {
        0
    } else {
        float.to_bits()
    };
    if canonical & (1 << 31) != 0 {
        !canonical
    } else {
        canonical | (1 << 31)
    }
}

fn order_f64(float: f64) -> u64 {
    let canonical = if float.is_nan() {
        f64::NAN.to_bits() & !(1 << 63)
    } else if float == 0.0 {
        0
    } else {
        float.to_bits()
    };
    if canonical & (1 << 63) != 0 {
        !canonical
    } else {
        canonical | (1 << 63)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;
    use std::sync::Arc;

    use arrow_schema::{Field, TimeUnit};
    use proptest::prelude::*;

    use super::*;
    use crate::pk::value::build_array;

    fn batch_of(columns: &[(DataType, Vec<Value>)]) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .enumerate()
            .map(|(index, (data_type, _))| Field::new(format!("c{index}"), data_type.clone(), true))
            .collect();
        let arrays = columns
            .iter()
            .map(|(data_type, values)| {
                build_array(data_type, &values.iter().collect::<Vec<_>>()).unwrap()
            })
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    /// Encodes rows 0 and 1 of a one-column batch and compares the bytes.
    fn byte_order(data_type: DataType, a: Value, b: Value) -> Ordering {
        let batch = batch_of(&[(data_type, vec![a, b])]);
        let encoder = KeyEncoder::new(&batch.schema(), &[0]).unwrap();
        let (mut left, mut right) = (Vec::new(), Vec::new());
        encoder.encode(&batch, 0, &mut left).unwrap();
        encoder.encode(&batch, 1, &mut right).unwrap();
        left.cmp(&right)
    }

    /// SQL order of floats under the key policy: -0.0 = +0.0, all NaNs equal and greatest.
    fn float_order(a: f64, b: f64) -> Ordering {
        match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.partial_cmp(&b).unwrap(),
        }
    }

    fn float64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            -3.0..3.0_f64,
        ]
    }

    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop_oneof![Just(0_u8), Just(1), Just(0xFF), any::<u8>()], 0..6)
    }

    proptest! {
        #[test]
        fn integer_byte_order_is_value_order(a: i64, b: i64, a8: i8, b8: i8, a32: i32, b32: i32) {
            let int = |value: i64| Value::Int(value);
            prop_assert_eq!(byte_order(DataType::Int64, int(a), int(b)), a.cmp(&b));
            prop_assert_eq!(
                byte_order(DataType::Int8, int(a8.into()), int(b8.into())), a8.cmp(&b8)
            );
            prop_assert_eq!(
                byte_order(DataType::Int32, int(a32.into()), int(b32.into())), a32.cmp(&b32)
            );
            prop_assert_eq!(
                byte_order(DataType::Date32, int(a32.into()), int(b32.into())), a32.cmp(&b32)
            );
            let timestamp = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
            prop_assert_eq!(byte_order(timestamp, int(a), int(b)), a.cmp(&b));
        }

        #[test]
        fn float_byte_order_is_value_order(a in float64(), b in float64()) {
            let order = byte_order(DataType::Float64, Value::F64(a), Value::F64(b));
            prop_assert_eq!(order, float_order(a, b));
            let (a32, b32) = (a as f32, b as f32);
            prop_assert_eq!(
                byte_order(DataType::Float32, Value::F32(a32), Value::F32(b32)),
                float_order(f64::from(a32), f64::from(b32))
            );
        }

        #[test]
        fn decimal_byte_order_is_value_order(a in -(10_i128.pow(38) - 1)..10_i128.pow(38), b: i64) {
            let b = i128::from(b);
            prop_assert_eq!(
                byte_order(DataType::Decimal128(38, 2), Value::Decimal(a), Value::Decimal(b)),
                a.cmp(&b)
            );
        }

        #[test]
        fn string_and_binary_byte_order_is_value_order(a in tricky_bytes(), b in tricky_bytes()) {
            prop_assert_eq!(
                byte_order(DataType::Binary, Value::Bytes(a.clone()), Value::Bytes(b.clone())),
                a.cmp(&b)
            );
            let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
            let (a, b) = (text(&a), text(&b));
            prop_assert_eq!(
                byte_order(DataType::Utf8, Value::Str(a.clone()), Value::Str(b.clone())),
                a.cmp(&b)
            );
        }

        #[test]
        fn fixed_binary_byte_order_is_value_order(a: [u8; 3], b: [u8; 3]) {
            prop_assert_eq!(
                byte_order(
                    DataType::FixedSizeBinary(3),
                    Value::Bytes(a.to_vec()),
                    Value::Bytes(b.to_vec())
                ),
                a.cmp(&b)
            );
        }

        /// Two columns: order is lexicographic over (first, second), and the encoding of the
        /// first column alone is a byte prefix of exactly the keys with that first value.
        #[test]
        fn multi_column_order_and_prefix(
            first in prop::collection::vec(tricky_bytes(), 2),
            second in prop::collection::vec(any::<i16>(), 2),
        ) {
            let batch = batch_of(&[
                (DataType::Binary, first.iter().cloned().map(Value::Bytes).collect()),
                (DataType::Int16, second.iter().map(|int| Value::Int((*int).into())).collect()),
            ]);
            let encoder = KeyEncoder::new(&batch.schema(), &[0, 1]).unwrap();
            let encode = |row| {
                let mut key = Vec::new();
                encoder.encode(&batch, row, &mut key).unwrap();
                key
            };
            let (left, right) = (encode(0), encode(1));
            prop_assert_eq!(left.cmp(&right), (&first[0], second[0]).cmp(&(&first[1], second[1])));
            let prefix_batch = batch.project(&[0]).unwrap();
            let mut prefix = Vec::new();
            encoder.encode_prefix(&prefix_batch, 0, 1, &mut prefix).unwrap();
            prop_assert!(left.starts_with(&prefix));
            prop_assert_eq!(right.starts_with(&prefix), first[0] == first[1]);
        }
    }

    /// The example of `docs/format.md` §7.1.
    #[test]
    fn documented_example_bytes() {
        let batch = batch_of(&[
            (DataType::Utf8, vec![Value::Str("eu".into())]),
            (DataType::Int32, vec![Value::Int(-1)]),
        ]);
        let mut key = Vec::new();
        KeyEncoder::new(&batch.schema(), &[0, 1]).unwrap().encode(&batch, 0, &mut key).unwrap();
        assert_eq!(key, [0x65, 0x75, 0x00, 0x01, 0x7F, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn null_key_is_an_error_naming_column_and_row() {
        let batch = batch_of(&[(DataType::Int32, vec![Value::Int(1), Value::Null])]);
        let encoder = KeyEncoder::new(&batch.schema(), &[0]).unwrap();
        let error = encoder.encode(&batch, 1, &mut Vec::new()).unwrap_err();
        assert_eq!(error, PkError::NullKey { column: "c0".into(), row: 1 });
    }

    #[test]
    fn nested_columns_and_bad_prefixes_are_refused() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let schema = Schema::new(vec![Field::new("l", list, true)]);
        assert!(KeyEncoder::new(&schema, &[0]).unwrap_err().contains("cannot be a key"));
        assert!(KeyEncoder::new(&schema, &[3]).is_err());
        let batch = batch_of(&[(DataType::Int32, vec![Value::Int(1)])]);
        let encoder = KeyEncoder::new(&batch.schema(), &[0]).unwrap();
        let error = encoder.encode_prefix(&batch, 0, 2, &mut Vec::new()).unwrap_err();
        assert!(matches!(error, PkError::SchemaMismatch(_)));
    }
}
