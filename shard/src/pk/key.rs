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

    fn encode_column(
        &self,
        position: usize,
        value: &Value,
        row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), PkError> {
        let data_type = &self.types[position];
        let width = int_width_bytes(data_type);
        match value {
            Value::Null => {
                return Err(PkError::NullKey { column: self.names[position].clone(), row })
            }
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
