//! `Value`: one cell of a primary-key table held outside Arrow, and the two conversions
//! between Arrow columns and values.
//!
//! The key encoder, the row codec and the merge engines all work on values; the column's Arrow
//! type always travels beside a value (a value does not know its width). Invariant: a value
//! read from a column of type `T` converts back into a column of type `T` unchanged.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, ListArray, MapArray,
    PrimitiveArray, StringArray, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, FieldRef, Fields, TimeUnit};

use super::error::PkError;

/// One cell. Integers of every width, dates, times and timestamps are `Int`; `Utf8` is `Str`,
/// `Binary` and `FixedSizeBinary` are `Bytes`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `BOOLEAN`.
    Bool(bool),
    /// Integers, `DATE`, `TIME`, `TIMESTAMP[_LTZ]` (in the column's unit).
    Int(i64),
    /// `FLOAT`.
    F32(f32),
    /// `DOUBLE`.
    F64(f64),
    /// `DECIMAL(p, s)`: the unscaled value.
    Decimal(i128),
    /// `STRING`.
    Str(String),
    /// `BYTES`, `BINARY(n)`.
    Bytes(Vec<u8>),
    /// `ARRAY<T>`.
    List(Vec<Value>),
    /// `MAP<K, V>`: entries in stored order.
    Map(Vec<(Value, Value)>),
    /// `ROW<...>`: one value per field.
    Struct(Vec<Value>),
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Equality of what is stored: `==`, except that floats compare bit for bit (a NaN is
    /// identical to itself, `-0.0` is not `+0.0`). What the invariants compare.
    pub(crate) fn identical(&self, other: &Value) -> bool {
        let all = |left: &[Value], right: &[Value]| {
            left.len() == right.len() && left.iter().zip(right).all(|(a, b)| a.identical(b))
        };
        match (self, other) {
            (Value::F32(a), Value::F32(b)) => a.to_bits() == b.to_bits(),
            (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
            (Value::List(a), Value::List(b)) | (Value::Struct(a), Value::Struct(b)) => all(a, b),
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka.identical(kb) && va.identical(vb))
            }
            (a, b) => a == b,
        }
    }
}

fn wrong_type(data_type: &DataType) -> PkError {
    PkError::UnsupportedType(format!("{data_type} (array does not have its declared type)"))
}

/// The integer at `row` of an integer-like column, or `None` for other types.
fn int_at(array: &dyn Array, row: usize) -> Option<i64> {
    Some(match array.data_type() {
        DataType::Int8 => i64::from(array.as_primitive_opt::<Int8Type>()?.value(row)),
        DataType::Int16 => i64::from(array.as_primitive_opt::<Int16Type>()?.value(row)),
        DataType::Int32 => i64::from(array.as_primitive_opt::<Int32Type>()?.value(row)),
        DataType::Int64 => array.as_primitive_opt::<Int64Type>()?.value(row),
        DataType::Date32 => i64::from(array.as_primitive_opt::<Date32Type>()?.value(row)),
        DataType::Time32(TimeUnit::Second) => {
            i64::from(array.as_primitive_opt::<Time32SecondType>()?.value(row))
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            i64::from(array.as_primitive_opt::<Time32MillisecondType>()?.value(row))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            array.as_primitive_opt::<Time64MicrosecondType>()?.value(row)
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            array.as_primitive_opt::<Time64NanosecondType>()?.value(row)
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            array.as_primitive_opt::<TimestampSecondType>()?.value(row)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            array.as_primitive_opt::<TimestampMillisecondType>()?.value(row)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            array.as_primitive_opt::<TimestampMicrosecondType>()?.value(row)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            array.as_primitive_opt::<TimestampNanosecondType>()?.value(row)
        }
        _ => return None,
    })
}

/// Whether values of this type are `Value::Int`.
pub fn is_int_like(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
            | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
            | DataType::Timestamp(_, _)
    )
}

/// The value at `row` of `array`.
pub fn value_at(array: &dyn Array, row: usize) -> Result<Value, PkError> {
    let data_type = array.data_type();
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    if let Some(int) = int_at(array, row) {
        return Ok(Value::Int(int));
    }
    let bad = || wrong_type(data_type);
    Ok(match data_type {
        DataType::Boolean => Value::Bool(array.as_boolean_opt().ok_or_else(bad)?.value(row)),
        DataType::Float32 => {
            Value::F32(array.as_primitive_opt::<Float32Type>().ok_or_else(bad)?.value(row))
        }
        DataType::Float64 => {
            Value::F64(array.as_primitive_opt::<Float64Type>().ok_or_else(bad)?.value(row))
        }
        DataType::Decimal128(_, _) => {
            Value::Decimal(array.as_primitive_opt::<Decimal128Type>().ok_or_else(bad)?.value(row))
        }
        DataType::Utf8 => {
            Value::Str(array.as_string_opt::<i32>().ok_or_else(bad)?.value(row).to_string())
        }
        DataType::Binary => {
            Value::Bytes(array.as_binary_opt::<i32>().ok_or_else(bad)?.value(row).to_vec())
        }
        DataType::FixedSizeBinary(_) => {
            Value::Bytes(array.as_fixed_size_binary_opt().ok_or_else(bad)?.value(row).to_vec())
        }
        DataType::List(_) => {
            let items = array.as_list_opt::<i32>().ok_or_else(bad)?.value(row);
            Value::List(
                (0..items.len()).map(|item| value_at(&items, item)).collect::<Result<_, _>>()?,
            )
        }
        DataType::Map(_, _) => {
            let entries = array.as_map_opt().ok_or_else(bad)?.value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut pairs = Vec::with_capacity(entries.len());
            for entry in 0..entries.len() {
                pairs.push((value_at(keys, entry)?, value_at(values, entry)?));
            }
            Value::Map(pairs)
        }
        DataType::Struct(_) => {
            let columns = array.as_struct_opt().ok_or_else(bad)?.columns();
            Value::Struct(
                columns.iter().map(|column| value_at(column, row)).collect::<Result<_, _>>()?,
            )
        }
        other => return Err(PkError::UnsupportedType(other.to_string())),
    })
}

fn mismatch(data_type: &DataType, value: &Value) -> PkError {
    PkError::CorruptRow(format!("value {value:?} does not fit a column of type {data_type}"))
}

fn build_ints<T>(data_type: &DataType, ints: &[Option<i64>]) -> Result<ArrayRef, PkError>
where
    T: ArrowPrimitiveType,
    T::Native: TryFrom<i64>,
{
    let mut natives = Vec::with_capacity(ints.len());
    for int in ints {
        natives.push(match int {
            None => None,
            Some(int) => Some(
                T::Native::try_from(*int).map_err(|_| mismatch(data_type, &Value::Int(*int)))?,
            ),
        });
    }
    let array: PrimitiveArray<T> = natives.into_iter().collect();
    Ok(Arc::new(array.with_data_type(data_type.clone())))
}

/// A column of an integer-like type (`is_int_like`) holding `ints`.
pub(crate) fn int_array(data_type: &DataType, ints: &[Option<i64>]) -> Result<ArrayRef, PkError> {
    Ok(match data_type {
        DataType::Int8 => build_ints::<Int8Type>(data_type, ints)?,
        DataType::Int16 => build_ints::<Int16Type>(data_type, ints)?,
        DataType::Int32 => build_ints::<Int32Type>(data_type, ints)?,
        DataType::Int64 => build_ints::<Int64Type>(data_type, ints)?,
        DataType::Date32 => build_ints::<Date32Type>(data_type, ints)?,
        DataType::Time32(TimeUnit::Second) => build_ints::<Time32SecondType>(data_type, ints)?,
        DataType::Time32(TimeUnit::Millisecond) => {
            build_ints::<Time32MillisecondType>(data_type, ints)?
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            build_ints::<Time64MicrosecondType>(data_type, ints)?
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            build_ints::<Time64NanosecondType>(data_type, ints)?
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            build_ints::<TimestampSecondType>(data_type, ints)?
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            build_ints::<TimestampMillisecondType>(data_type, ints)?
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            build_ints::<TimestampMicrosecondType>(data_type, ints)?
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            build_ints::<TimestampNanosecondType>(data_type, ints)?
        }
        other => return Err(PkError::UnsupportedType(format!("{other} is not integer-like"))),
    })
}

fn build_with<T, F>(data_type: &DataType, values: &[&Value], native: F) -> Result<ArrayRef, PkError>
where
    T: ArrowPrimitiveType,
    F: Fn(&Value) -> Option<T::Native>,
{
    let mut natives = Vec::with_capacity(values.len());
    for value in values {
        natives.push(match value {
            Value::Null => None,
            other => Some(native(other).ok_or_else(|| mismatch(data_type, other))?),
        });
    }
    let array: PrimitiveArray<T> = natives.into_iter().collect();
    Ok(Arc::new(array.with_data_type(data_type.clone())))
}

fn validity(values: &[&Value]) -> Option<NullBuffer> {
    values
        .iter()
        .any(|value| value.is_null())
        .then(|| NullBuffer::from(values.iter().map(|value| !value.is_null()).collect::<Vec<_>>()))
}

fn offsets_of(lengths: impl Iterator<Item = usize>) -> Result<OffsetBuffer<i32>, PkError> {
    let mut offsets = vec![0_i32];
    let mut end = 0_usize;
    for length in lengths {
        end += length;
        offsets.push(
            i32::try_from(end)
                .map_err(|_| PkError::CorruptRow("nested values exceed i32 offsets".into()))?,
        );
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(offsets)))
}

fn arrow_error(error: arrow_schema::ArrowError) -> PkError {
    PkError::CorruptRow(error.to_string())
}

/// A column of type `data_type` holding `values`, built in one pass per column.
pub fn build_array(data_type: &DataType, values: &[&Value]) -> Result<ArrayRef, PkError> {
    if is_int_like(data_type) {
        let ints = values
            .iter()
            .map(|value| match value {
                Value::Null => Ok(None),
                Value::Int(int) => Ok(Some(*int)),
                other => Err(mismatch(data_type, other)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        return int_array(data_type, &ints);
    }
    Ok(match data_type {
        DataType::Float32 => {
            build_with::<Float32Type, _>(data_type, values, |value| match value {
                Value::F32(float) => Some(*float),
                _ => None,
            })?
        }
        DataType::Float64 => {
            build_with::<Float64Type, _>(data_type, values, |value| match value {
                Value::F64(float) => Some(*float),
                _ => None,
            })?
        }
        DataType::Decimal128(_, _) => {
            build_with::<Decimal128Type, _>(data_type, values, |value| match value {
                Value::Decimal(decimal) => Some(*decimal),
                _ => None,
            })?
        }
        _ => build_variable(data_type, values)?,
    })
}

fn build_variable(data_type: &DataType, values: &[&Value]) -> Result<ArrayRef, PkError> {
    let check = |ok: bool, value: &Value| if ok { Ok(()) } else { Err(mismatch(data_type, value)) };
    Ok(match data_type {
        DataType::Boolean => {
            let mut bools = Vec::with_capacity(values.len());
            for value in values {
                bools.push(match value {
                    Value::Null => None,
                    Value::Bool(bool) => Some(*bool),
                    other => return Err(mismatch(data_type, other)),
                });
            }
            Arc::new(BooleanArray::from(bools))
        }
        DataType::Utf8 => {
            let mut strings = Vec::with_capacity(values.len());
            for value in values {
                strings.push(match value {
                    Value::Null => None,
                    Value::Str(string) => Some(string.as_str()),
                    other => return Err(mismatch(data_type, other)),
                });
            }
            Arc::new(StringArray::from(strings))
        }
        DataType::Binary | DataType::FixedSizeBinary(_) => {
            let mut bytes = Vec::with_capacity(values.len());
            for value in values {
                bytes.push(match value {
                    Value::Null => None,
                    Value::Bytes(bytes) => Some(bytes.as_slice()),
                    other => return Err(mismatch(data_type, other)),
                });
            }
            if let DataType::FixedSizeBinary(size) = data_type {
                for (value, bytes) in values.iter().zip(&bytes) {
                    let size = usize::try_from(*size).unwrap_or(0);
                    check(bytes.is_none_or(|bytes| bytes.len() == size), value)?;
                }
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(bytes.into_iter(), *size)
                        .map_err(arrow_error)?,
                )
            } else {
                Arc::new(BinaryArray::from(bytes))
            }
        }
        DataType::List(item) => build_list(item, values)?,
        DataType::Map(entries, sorted) => build_map(entries, *sorted, values)?,
        DataType::Struct(fields) => build_struct(fields, values)?,
        other => return Err(PkError::UnsupportedType(other.to_string())),
    })
}

fn build_list(item: &FieldRef, values: &[&Value]) -> Result<ArrayRef, PkError> {
    let data_type = DataType::List(item.clone());
    let mut items: Vec<&Value> = Vec::new();
    let mut lengths = Vec::with_capacity(values.len());
    for value in values {
        match value {
            Value::Null => lengths.push(0),
            Value::List(list) => {
                lengths.push(list.len());
                items.extend(list.iter());
            }
            other => return Err(mismatch(&data_type, other)),
        }
    }
    let child = build_array(item.data_type(), &items)?;
    let offsets = offsets_of(lengths.into_iter())?;
    Ok(Arc::new(
        ListArray::try_new(item.clone(), offsets, child, validity(values)).map_err(arrow_error)?,
    ))
}

fn build_map(entries: &FieldRef, sorted: bool, values: &[&Value]) -> Result<ArrayRef, PkError> {
    let data_type = DataType::Map(entries.clone(), sorted);
    let DataType::Struct(entry_fields) = entries.data_type() else {
        return Err(PkError::UnsupportedType(data_type.to_string()));
    };
    if entry_fields.len() != 2 {
        return Err(PkError::UnsupportedType(data_type.to_string()));
    }
    let (mut keys, mut items): (Vec<&Value>, Vec<&Value>) = (Vec::new(), Vec::new());
    let mut lengths = Vec::with_capacity(values.len());
    for value in values {
        match value {
            Value::Null => lengths.push(0),
            Value::Map(pairs) => {
                lengths.push(pairs.len());
                for (key, item) in pairs {
                    keys.push(key);
                    items.push(item);
                }
            }
            other => return Err(mismatch(&data_type, other)),
        }
    }
    let key_array = build_array(entry_fields[0].data_type(), &keys)?;
    let item_array = build_array(entry_fields[1].data_type(), &items)?;
    let entry_array = StructArray::try_new(entry_fields.clone(), vec![key_array, item_array], None)
        .map_err(arrow_error)?;
    let offsets = offsets_of(lengths.into_iter())?;
    Ok(Arc::new(
        MapArray::try_new(entries.clone(), offsets, entry_array, validity(values), sorted)
            .map_err(arrow_error)?,
    ))
}

fn build_struct(fields: &Fields, values: &[&Value]) -> Result<ArrayRef, PkError> {
    let data_type = DataType::Struct(fields.clone());
    for value in values {
        match value {
            Value::Null => {}
            Value::Struct(children) if children.len() == fields.len() => {}
            other => return Err(mismatch(&data_type, other)),
        }
    }
    let mut children = Vec::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        let column: Vec<&Value> = values
            .iter()
            .map(|value| match value {
                Value::Struct(children) => children.get(index).unwrap_or(&Value::Null),
                _ => &Value::Null,
            })
            .collect();
        children.push(build_array(field.data_type(), &column)?);
    }
    if fields.is_empty() {
        return Ok(Arc::new(StructArray::new_empty_fields(values.len(), validity(values))));
    }
    Ok(Arc::new(
        StructArray::try_new(fields.clone(), children, validity(values)).map_err(arrow_error)?,
    ))
}
