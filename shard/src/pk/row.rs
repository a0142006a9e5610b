//! `RowCodec`: the stored value of a primary-key row, all its columns in one compact byte
//! string (layout in `docs/format.md`, "Primary-key encodings").
//!
//! `schema id (u16 LE) | null bitmap | non-null values in column order`; fixed-width values
//! little-endian, strings and binaries with a u32 LE length, nested values recursively.
//! Invariants: `decode(encode(row)) == row` for every row of the schema, and decoding any byte
//! string returns a row or a `PkError`, never panics and never allocates more than the input
//! can describe (every count is checked against the bytes left).

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, FixedSizeBinaryBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float32Array, Float64Array, RecordBatch,
    RecordBatchOptions,
};
use arrow_schema::{DataType, SchemaRef};

use super::error::PkError;
use super::value::{build_array, int_array, is_int_like, value_at, Value};
use ufer_wire::limits::TYPE_NESTING_DEPTH_MAX;

/// Bytes of the schema id that starts every stored row.
pub const ROW_SCHEMA_ID_SIZE_BYTES: usize = 2;

/// Encodes rows of one schema into stored values and decodes them back.
#[derive(Debug, Clone)]
pub struct RowCodec {
    schema_id: u16,
    schema: SchemaRef,
}

fn check_type(data_type: &DataType, depth: usize) -> Result<(), String> {
    if depth > TYPE_NESTING_DEPTH_MAX {
        return Err(format!("types nest deeper than {TYPE_NESTING_DEPTH_MAX} levels"));
    }
    match data_type {
        DataType::List(item) => check_type(item.data_type(), depth + 1),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => {
                fields.iter().try_for_each(|field| check_type(field.data_type(), depth + 1))
            }
            other => Err(format!("map entries of type {other} are not a key/value struct")),
        },
        DataType::Struct(fields) => {
            fields.iter().try_for_each(|field| check_type(field.data_type(), depth + 1))
        }
        DataType::Boolean
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Utf8
        | DataType::Binary
        | DataType::FixedSizeBinary(_) => Ok(()),
        other if is_int_like(other) => Ok(()),
        other => Err(format!("type {other} has no row encoding")),
    }
}

impl RowCodec {
    /// A codec for rows of `schema`, stamped with `schema_id`; refuses types it cannot hold.
    pub fn new(schema_id: u16, schema: SchemaRef) -> Result<Self, String> {
        for field in schema.fields() {
            check_type(field.data_type(), 0)
                .map_err(|message| format!("column {:?}: {message}", field.name()))?;
        }
        Ok(Self { schema_id, schema })
    }

    /// The schema id written into every row.
    pub fn schema_id(&self) -> u16 {
        self.schema_id
    }

    /// The table schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Appends the stored value of `row` of `batch` (which has the table schema) to `out`.
    pub fn encode(
        &self,
        batch: &RecordBatch,
        row: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), PkError> {
        let values = batch
            .columns()
            .iter()
            .map(|column| value_at(column, row))
            .collect::<Result<Vec<_>, _>>()?;
        self.encode_values(&values, out)
    }

    /// Appends the stored value of a row given as one value per column.
    pub(crate) fn encode_values(&self, values: &[Value], out: &mut Vec<u8>) -> Result<(), PkError> {
        let start = out.len();
        self.write_values(values, out)?;
        // Per row, so in debug builds only: a row of the schema (no null in a NOT NULL
        // column) decodes back from its encoding.
        debug_assert!(
            !self.holds_nulls_only_where_allowed(values)
                || self.decode_values(&out[start..]).is_ok_and(|decoded| {
                    decoded.len() == values.len()
                        && decoded
                            .iter()
                            .zip(values)
                            .all(|(decoded, value)| decoded.identical(value))
                }),
            "decode(encode(row)) == row: {values:?}"
        );
        Ok(())
    }

    /// Whether the row's nulls are all in nullable columns (what `decode_values` checks).
    fn holds_nulls_only_where_allowed(&self, values: &[Value]) -> bool {
        let fields = self.schema.fields().iter();
        fields.zip(values).all(|(field, value)| field.is_nullable() || !value.is_null())
    }

    fn write_values(&self, values: &[Value], out: &mut Vec<u8>) -> Result<(), PkError> {
        let fields = self.schema.fields();
        if values.len() != fields.len() {
            return Err(PkError::SchemaMismatch(format!(
                "{} values for {} columns",
                values.len(),
                fields.len()
            )));
        }
        out.extend_from_slice(&self.schema_id.to_le_bytes());
        write_bitmap(values.iter(), out);
        for (field, value) in fields.iter().zip(values) {
            if !value.is_null() {
                encode_value(field.data_type(), value, out)?;
            }
        }
        Ok(())
    }

    /// Checks the schema id and reads the row's null bitmap.
    fn open<'a>(&self, bytes: &'a [u8]) -> Result<(Reader<'a>, Vec<bool>), PkError> {
        let mut reader = Reader { bytes, at: 0 };
        let id = u16::from_le_bytes(reader.array::<ROW_SCHEMA_ID_SIZE_BYTES>()?);
        if id != self.schema_id {
            return Err(PkError::SchemaIdMismatch { expected: self.schema_id, found: id });
        }
        let nulls = reader.bitmap(self.schema.fields().len())?;
        for (field, null) in self.schema.fields().iter().zip(&nulls) {
            if *null && !field.is_nullable() {
                return Err(PkError::CorruptRow(format!(
                    "column {:?} is NOT NULL but the row holds null",
                    field.name()
                )));
            }
        }
        Ok((reader, nulls))
    }

    /// Decodes one stored row into one value per column.
    pub(crate) fn decode_values(&self, bytes: &[u8]) -> Result<Vec<Value>, PkError> {
        let (mut reader, nulls) = self.open(bytes)?;
        let mut values = Vec::with_capacity(nulls.len());
        for (field, null) in self.schema.fields().iter().zip(nulls) {
            values.push(if null {
                Value::Null
            } else {
                decode_value(field.data_type(), &mut reader)?
            });
        }
        reader.finish()?;
        Ok(values)
    }

    /// Decodes stored rows into one batch of the table schema, column by column: flat
    /// columns go straight into typed buffers (no value per cell), nested ones via values.
    pub fn decode_rows(&self, rows: &[&[u8]]) -> Result<RecordBatch, PkError> {
        let fields = self.schema.fields();
        let mut sinks: Vec<ColumnSink> =
            fields.iter().map(|field| ColumnSink::new(field.data_type(), rows.len())).collect();
        for bytes in rows {
            let (mut reader, nulls) = self.open(bytes)?;
            for ((field, sink), null) in fields.iter().zip(&mut sinks).zip(nulls) {
                if null {
                    sink.push_null();
                } else {
                    sink.push(field.data_type(), &mut reader)?;
                }
            }
            reader.finish()?;
        }
        let mut columns = Vec::with_capacity(fields.len());
        for (field, sink) in fields.iter().zip(sinks) {
            columns.push(sink.finish(field.data_type())?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
            .map_err(|error| PkError::CorruptRow(error.to_string()))
    }

    /// A batch of the table schema holding `rows` (each one value per column).
    pub(crate) fn build_batch(&self, rows: &[Vec<Value>]) -> Result<RecordBatch, PkError> {
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for (index, field) in self.schema.fields().iter().enumerate() {
            let column: Vec<&Value> =
                rows.iter().map(|row| row.get(index).unwrap_or(&Value::Null)).collect();
            columns.push(build_array(field.data_type(), &column)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
            .map_err(|error| PkError::CorruptRow(error.to_string()))
    }
}

/// Bit `i` (LSB first) set when item `i` is null.
fn write_bitmap<'a>(values: impl ExactSizeIterator<Item = &'a Value>, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + values.len().div_ceil(8), 0);
    for (index, value) in values.enumerate() {
        if value.is_null() {
            out[start + index / 8] |= 1 << (index % 8);
        }
    }
}

fn too_long(what: &str) -> PkError {
    PkError::CorruptRow(format!("{what} longer than u32::MAX"))
}

fn write_count(count: usize, out: &mut Vec<u8>) -> Result<(), PkError> {
    let count = u32::try_from(count).map_err(|_| too_long("nested value"))?;
    out.extend_from_slice(&count.to_le_bytes());
    Ok(())
}

fn encode_value(data_type: &DataType, value: &Value, out: &mut Vec<u8>) -> Result<(), PkError> {
    let mismatch = || PkError::CorruptRow(format!("value {value:?} does not fit type {data_type}"));
    match (data_type, value) {
        (DataType::Int8, Value::Int(int)) => out.push(*int as i8 as u8),
        (DataType::Int16, Value::Int(int)) => out.extend_from_slice(&(*int as i16).to_le_bytes()),
        (DataType::Int32 | DataType::Date32 | DataType::Time32(_), Value::Int(int)) => {
            out.extend_from_slice(&(*int as i32).to_le_bytes())
        }
        (_, Value::Int(int)) if is_int_like(data_type) => out.extend_from_slice(&int.to_le_bytes()),
        (DataType::Boolean, Value::Bool(bool)) => out.push(u8::from(*bool)),
        (DataType::Float32, Value::F32(float)) => out.extend_from_slice(&float.to_le_bytes()),
        (DataType::Float64, Value::F64(float)) => out.extend_from_slice(&float.to_le_bytes()),
        (DataType::Decimal128(_, _), Value::Decimal(decimal)) => {
            out.extend_from_slice(&decimal.to_le_bytes())
        }
        (DataType::Utf8, Value::Str(string)) => {
            write_count(string.len(), out)?;
            out.extend_from_slice(string.as_bytes());
        }
        (DataType::Binary, Value::Bytes(bytes)) => {
            write_count(bytes.len(), out)?;
            out.extend_from_slice(bytes);
        }
        (DataType::FixedSizeBinary(size), Value::Bytes(bytes)) => {
            if usize::try_from(*size).ok() != Some(bytes.len()) {
                return Err(mismatch());
            }
            out.extend_from_slice(bytes);
        }
        (DataType::List(item), Value::List(items)) => {
            write_count(items.len(), out)?;
            write_bitmap(items.iter(), out);
            for item_value in items.iter().filter(|item| !item.is_null()) {
                encode_value(item.data_type(), item_value, out)?;
            }
        }
        (DataType::Map(entries, _), Value::Map(pairs)) => {
            let DataType::Struct(fields) = entries.data_type() else { return Err(mismatch()) };
            let (Some(key_field), Some(item_field)) = (fields.first(), fields.get(1)) else {
                return Err(mismatch());
            };
            write_count(pairs.len(), out)?;
            write_bitmap(pairs.iter().map(|(_, item)| item), out);
            for (key, item) in pairs {
                // Map keys are never null (the schema text makes them NOT NULL).
                encode_value(key_field.data_type(), key, out)?;
                if !item.is_null() {
                    encode_value(item_field.data_type(), item, out)?;
                }
            }
        }
        (DataType::Struct(fields), Value::Struct(children)) if fields.len() == children.len() => {
            write_bitmap(children.iter(), out);
            for (field, child) in fields.iter().zip(children) {
                if !child.is_null() {
                    encode_value(field.data_type(), child, out)?;
                }
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

/// A cursor over stored bytes; every read checks the bytes left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, size: usize) -> Result<&'a [u8], PkError> {
        let end =
            self.at.checked_add(size).filter(|end| *end <= self.bytes.len()).ok_or_else(|| {
                PkError::CorruptRow(format!(
                    "row ends at byte {} but {size} more bytes are needed at byte {}",
                    self.bytes.len(),
                    self.at
                ))
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PkError> {
        let mut array = [0_u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    /// The row ends exactly here.
    fn finish(&self) -> Result<(), PkError> {
        if self.at != self.bytes.len() {
            return Err(PkError::CorruptRow(format!(
                "{} bytes after the last column",
                self.bytes.len() - self.at
            )));
        }
        Ok(())
    }

    fn string(&mut self) -> Result<&'a str, PkError> {
        let size = self.count()?;
        std::str::from_utf8(self.take(size)?)
            .map_err(|error| PkError::CorruptRow(format!("string: {error}")))
    }

    fn count(&mut self) -> Result<usize, PkError> {
        let count = u32::from_le_bytes(self.array::<4>()?);
        usize::try_from(count).map_err(|_| PkError::CorruptRow("count exceeds usize".into()))
    }

    /// Reads a null bitmap of `count` bits; bounds `count` by the bytes left first.
    fn bitmap(&mut self, count: usize) -> Result<Vec<bool>, PkError> {
        let bytes = self.take(count.div_ceil(8))?;
        // Padding bits are zero, so every row has exactly one encoding (stored bytes are
        // compared to tell whether a row changed).
        if let (Some(last), 1..) = (bytes.last(), count % 8) {
            if last >> (count % 8) != 0 {
                return Err(PkError::CorruptRow("null bitmap has padding bits set".into()));
            }
        }
        Ok((0..count).map(|index| bytes[index / 8] & (1 << (index % 8)) != 0).collect())
    }
}

fn decode_value(data_type: &DataType, reader: &mut Reader<'_>) -> Result<Value, PkError> {
    Ok(match data_type {
        DataType::Int8 => Value::Int(i64::from(i8::from_le_bytes(reader.array()?))),
        DataType::Int16 => Value::Int(i64::from(i16::from_le_bytes(reader.array()?))),
        DataType::Int32 | DataType::Date32 | DataType::Time32(_) => {
            Value::Int(i64::from(i32::from_le_bytes(reader.array()?)))
        }
        other if is_int_like(other) => Value::Int(i64::from_le_bytes(reader.array()?)),
        DataType::Boolean => match reader.array::<1>()?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            byte => return Err(PkError::CorruptRow(format!("boolean byte {byte}"))),
        },
        DataType::Float32 => Value::F32(f32::from_le_bytes(reader.array()?)),
        DataType::Float64 => Value::F64(f64::from_le_bytes(reader.array()?)),
        DataType::Decimal128(precision, _) => {
            let decimal = i128::from_le_bytes(reader.array()?);
            let limit = 10_u128.checked_pow(u32::from(*precision)).unwrap_or(u128::MAX);
            if decimal.unsigned_abs() >= limit {
                return Err(PkError::CorruptRow(format!(
                    "decimal {decimal} has more than {precision} digits"
                )));
            }
            Value::Decimal(decimal)
        }
        DataType::Utf8 => Value::Str(reader.string()?.to_string()),
        DataType::Binary => {
            let size = reader.count()?;
            Value::Bytes(reader.take(size)?.to_vec())
        }
        DataType::FixedSizeBinary(size) => {
            let size = usize::try_from(*size)
                .map_err(|_| PkError::UnsupportedType(data_type.to_string()))?;
            Value::Bytes(reader.take(size)?.to_vec())
        }
        DataType::List(item) => {
            let count = reader.count()?;
            let nulls = reader.bitmap(count)?;
            let mut items = Vec::with_capacity(count);
            for null in nulls {
                items.push(if null {
                    Value::Null
                } else {
                    decode_value(item.data_type(), reader)?
                });
            }
            Value::List(items)
        }
        DataType::Map(entries, _) => decode_map(entries.data_type(), reader)?,
        DataType::Struct(fields) => {
            let nulls = reader.bitmap(fields.len())?;
            let mut children = Vec::with_capacity(fields.len());
            for (field, null) in fields.iter().zip(nulls) {
                children.push(if null {
                    Value::Null
                } else {
                    decode_value(field.data_type(), reader)?
                });
            }
            Value::Struct(children)
        }
        other => return Err(PkError::UnsupportedType(other.to_string())),
    })
}

fn decode_map(entry_type: &DataType, reader: &mut Reader<'_>) -> Result<Value, PkError> {
    let DataType::Struct(fields) = entry_type else {
        return Err(PkError::UnsupportedType(entry_type.to_string()));
    };
    let (Some(key_field), Some(item_field)) = (fields.first(), fields.get(1)) else {
        return Err(PkError::UnsupportedType(entry_type.to_string()));
    };
    let count = reader.count()?;
    let nulls = reader.bitmap(count)?;
    let mut pairs = Vec::with_capacity(count);
    for null in nulls {
        let key = decode_value(key_field.data_type(), reader)?;
        let item = if null { Value::Null } else { decode_value(item_field.data_type(), reader)? };
        pairs.push((key, item));
    }
    Ok(Value::Map(pairs))
}

/// One column of `decode_rows` being filled.
enum ColumnSink {
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i64>>),
    F32(Vec<Option<f32>>),
    F64(Vec<Option<f64>>),
    Decimal(Vec<Option<i128>>),
    Str(StringBuilder),
    Binary(BinaryBuilder),
    Fixed(FixedSizeBinaryBuilder),
    Nested(Vec<Value>),
}

impl ColumnSink {
    fn new(data_type: &DataType, capacity: usize) -> Self {
        match data_type {
            DataType::Boolean => Self::Bool(Vec::with_capacity(capacity)),
            DataType::Float32 => Self::F32(Vec::with_capacity(capacity)),
            DataType::Float64 => Self::F64(Vec::with_capacity(capacity)),
            DataType::Decimal128(_, _) => Self::Decimal(Vec::with_capacity(capacity)),
            DataType::Utf8 => Self::Str(StringBuilder::with_capacity(capacity, 0)),
            DataType::Binary => Self::Binary(BinaryBuilder::with_capacity(capacity, 0)),
            DataType::FixedSizeBinary(size) => {
                Self::Fixed(FixedSizeBinaryBuilder::with_capacity(capacity, *size))
            }
            other if is_int_like(other) => Self::Int(Vec::with_capacity(capacity)),
            _ => Self::Nested(Vec::with_capacity(capacity)),
        }
    }

    fn push_null(&mut self) {
        match self {
            Self::Bool(values) => values.push(None),
            Self::Int(values) => values.push(None),
            Self::F32(values) => values.push(None),
            Self::F64(values) => values.push(None),
            Self::Decimal(values) => values.push(None),
            Self::Str(builder) => builder.append_null(),
            Self::Binary(builder) => builder.append_null(),
            Self::Fixed(builder) => builder.append_null(),
            Self::Nested(values) => values.push(Value::Null),
        }
    }

    fn push(&mut self, data_type: &DataType, reader: &mut Reader<'_>) -> Result<(), PkError> {
        match self {
            Self::Str(builder) => builder.append_value(reader.string()?),
            Self::Binary(builder) => {
                let size = reader.count()?;
                builder.append_value(reader.take(size)?);
            }
            Self::Fixed(builder) => {
                let DataType::FixedSizeBinary(size) = data_type else {
                    return Err(PkError::UnsupportedType(data_type.to_string()));
                };
                let size = usize::try_from(*size)
                    .map_err(|_| PkError::UnsupportedType(data_type.to_string()))?;
                builder
                    .append_value(reader.take(size)?)
                    .map_err(|error| PkError::CorruptRow(error.to_string()))?;
            }
            Self::Nested(values) => values.push(decode_value(data_type, reader)?),
            scalar => match (scalar, decode_value(data_type, reader)?) {
                (Self::Bool(values), Value::Bool(bool)) => values.push(Some(bool)),
                (Self::Int(values), Value::Int(int)) => values.push(Some(int)),
                (Self::F32(values), Value::F32(float)) => values.push(Some(float)),
                (Self::F64(values), Value::F64(float)) => values.push(Some(float)),
                (Self::Decimal(values), Value::Decimal(decimal)) => values.push(Some(decimal)),
                (_, value) => {
                    return Err(PkError::CorruptRow(format!("{value:?} in a {data_type} column")))
                }
            },
        }
        Ok(())
    }

    fn finish(self, data_type: &DataType) -> Result<ArrayRef, PkError> {
        Ok(match self {
            Self::Bool(values) => Arc::new(BooleanArray::from(values)),
            Self::Int(values) => int_array(data_type, &values)?,
            Self::F32(values) => Arc::new(Float32Array::from(values)),
            Self::F64(values) => Arc::new(Float64Array::from(values)),
            Self::Decimal(values) => {
                Arc::new(Decimal128Array::from(values).with_data_type(data_type.clone()))
            }
            Self::Str(mut builder) => Arc::new(builder.finish()),
            Self::Binary(mut builder) => Arc::new(builder.finish()),
            Self::Fixed(mut builder) => Arc::new(builder.finish()),
            Self::Nested(values) => build_array(data_type, &values.iter().collect::<Vec<_>>())?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use arrow_schema::{Field, Fields, Schema, TimeUnit};
    use proptest::prelude::*;

    use super::*;

    fn map_of(key: DataType, value: DataType) -> DataType {
        let entries =
            Fields::from(vec![Field::new("key", key, false), Field::new("value", value, true)]);
        DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
    }

    /// A schema with every type the schema text has, nested ones included.
    pub(crate) fn every_type_schema() -> SchemaRef {
        let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
        let row = DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", list(DataType::Float64), true),
        ]));
        let types = [
            DataType::Boolean,
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Float32,
            DataType::Float64,
            DataType::Decimal128(12, 2),
            DataType::Utf8,
            DataType::Binary,
            DataType::FixedSizeBinary(4),
            DataType::Date32,
            DataType::Time32(TimeUnit::Millisecond),
            DataType::Time64(TimeUnit::Nanosecond),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            list(DataType::Utf8),
            map_of(DataType::Utf8, DataType::Int64),
            row,
        ];
        let mut fields = vec![Field::new("id", DataType::Int64, false)];
        fields.extend(
            types
                .into_iter()
                .enumerate()
                .map(|(index, data_type)| Field::new(format!("c{index}"), data_type, true)),
        );
        Arc::new(Schema::new(fields))
    }

    /// Random values of `data_type` (null only when `nullable`).
    pub(crate) fn value_of(data_type: &DataType, nullable: bool) -> BoxedStrategy<Value> {
        let value: BoxedStrategy<Value> = match data_type {
            DataType::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
            DataType::Int8 => any::<i8>().prop_map(|int| Value::Int(int.into())).boxed(),
            DataType::Int16 => any::<i16>().prop_map(|int| Value::Int(int.into())).boxed(),
            DataType::Int32 | DataType::Date32 | DataType::Time32(_) => {
                any::<i32>().prop_map(|int| Value::Int(int.into())).boxed()
            }
            DataType::Float32 => any::<f32>().prop_map(Value::F32).boxed(),
            DataType::Float64 => any::<f64>().prop_map(Value::F64).boxed(),
            DataType::Decimal128(_, _) => {
                (-999_999_999_999_i128..=999_999_999_999).prop_map(Value::Decimal).boxed()
            }
            DataType::Utf8 => "[a-z\u{0}é]{0,5}".prop_map(Value::Str).boxed(),
            DataType::Binary => {
                prop::collection::vec(any::<u8>(), 0..5).prop_map(Value::Bytes).boxed()
            }
            DataType::FixedSizeBinary(size) => {
                prop::collection::vec(any::<u8>(), *size as usize).prop_map(Value::Bytes).boxed()
            }
            DataType::List(item) => prop::collection::vec(value_of(item.data_type(), true), 0..4)
                .prop_map(Value::List)
                .boxed(),
            DataType::Map(entries, _) => {
                let DataType::Struct(fields) = entries.data_type() else { unreachable!() };
                let pair =
                    (value_of(fields[0].data_type(), false), value_of(fields[1].data_type(), true));
                prop::collection::vec(pair, 0..3).prop_map(Value::Map).boxed()
            }
            DataType::Struct(fields) => fields
                .iter()
                .map(|field| value_of(field.data_type(), field.is_nullable()))
                .collect::<Vec<_>>()
                .prop_map(Value::Struct)
                .boxed(),
            _ => any::<i64>().prop_map(Value::Int).boxed(),
        };
        if nullable {
            prop_oneof![1 => Just(Value::Null), 4 => value].boxed()
        } else {
            value
        }
    }

    fn rows_of(schema: &SchemaRef) -> impl Strategy<Value = Vec<Vec<Value>>> {
        let row: Vec<BoxedStrategy<Value>> = schema
            .fields()
            .iter()
            .map(|field| value_of(field.data_type(), field.is_nullable()))
            .collect();
        prop::collection::vec(row, 0..6)
    }

    fn encoded_rows(codec: &RowCodec, batch: &RecordBatch) -> Vec<Vec<u8>> {
        (0..batch.num_rows())
            .map(|row| {
                let mut bytes = Vec::new();
                codec.encode(batch, row, &mut bytes).unwrap();
                bytes
            })
            .collect()
    }

    proptest! {
        #[test]
        fn every_type_round_trips(rows in rows_of(&every_type_schema())) {
            let codec = RowCodec::new(7, every_type_schema()).unwrap();
            let batch = codec.build_batch(&rows).unwrap();
            let encoded = encoded_rows(&codec, &batch);
            let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
            let decoded = codec.decode_rows(&slices).unwrap();
            prop_assert_eq!(&decoded, &batch);
            prop_assert_eq!(encoded_rows(&codec, &decoded), encoded);
        }

        #[test]
        fn truncated_or_extended_rows_are_errors(rows in rows_of(&every_type_schema()), extra: u8) {
            let codec = RowCodec::new(7, every_type_schema()).unwrap();
            let batch = codec.build_batch(&rows).unwrap();
            for bytes in encoded_rows(&codec, &batch) {
                for end in 0..bytes.len() {
                    prop_assert!(codec.decode_rows(&[&bytes[..end]]).is_err());
                }
                let mut longer = bytes.clone();
                longer.push(extra);
                prop_assert!(matches!(codec.decode_rows(&[&longer]), Err(PkError::CorruptRow(_))));
            }
        }

        /// Flipped bytes either decode to a row that encodes back to the same bytes (the
        /// encoding is canonical) or are an error; never a panic.
        #[test]
        fn flipped_bytes_never_panic(
            rows in rows_of(&every_type_schema()),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1_u8..=255), 1..4),
        ) {
            let codec = RowCodec::new(7, every_type_schema()).unwrap();
            let batch = codec.build_batch(&rows).unwrap();
            for mut bytes in encoded_rows(&codec, &batch) {
                for (at, mask) in &flips {
                    let at = at.index(bytes.len());
                    bytes[at] ^= mask;
                }
                if let Ok(decoded) = codec.decode_rows(&[&bytes]) {
                    // Whatever decodes is a valid row of the schema that encodes back the same.
                    prop_assert_eq!(encoded_rows(&codec, &decoded), vec![bytes]);
                }
            }
        }

        #[test]
        fn garbage_never_panics(tail in prop::collection::vec(any::<u8>(), 0..200)) {
            let codec = RowCodec::new(7, every_type_schema()).unwrap();
            let mut bytes = 7_u16.to_le_bytes().to_vec();
            bytes.extend_from_slice(&tail);
            let _ = codec.decode_rows(&[&bytes]);
            let _ = codec.decode_rows(&[&tail]);
        }
    }

    #[test]
    fn wrong_schema_id_and_null_in_not_null_column_are_errors() {
        let codec = RowCodec::new(7, every_type_schema()).unwrap();
        let error = codec.decode_rows(&[&[8, 0, 0]]).unwrap_err();
        assert_eq!(error, PkError::SchemaIdMismatch { expected: 7, found: 8 });
        // Every column null, the NOT NULL `id` included.
        let mut bytes = 7_u16.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0xFF, 0xFF, 0x0F]);
        assert!(matches!(codec.decode_rows(&[&bytes]), Err(PkError::CorruptRow(_))));
        assert!(matches!(codec.decode_rows(&[&[7]]), Err(PkError::CorruptRow(_))));
    }

    /// The example of `docs/format.md` §7.2.
    #[test]
    fn documented_example_bytes() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let codec = RowCodec::new(1, schema).unwrap();
        let mut bytes = Vec::new();
        codec.encode_values(&[Value::Int(5), Value::Str("ab".into())], &mut bytes).unwrap();
        assert_eq!(bytes, [1, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0x61, 0x62]);
    }

    #[test]
    fn types_without_an_encoding_are_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("u", DataType::UInt32, true)]));
        assert!(RowCodec::new(1, schema).unwrap_err().contains("no row encoding"));
    }
}
