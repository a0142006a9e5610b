//! Random Arrow schemas and record batches for the property tests of the batch format.
//!
//! The type tree comes from a proptest strategy (so failures shrink to a small schema); the
//! values come from a seeded generator (so a failing case replays exactly).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::builder::{BinaryViewBuilder, StringViewBuilder};
use arrow_array::{make_array, new_null_array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Fields, IntervalUnit, Schema, TimeUnit};
use proptest::prelude::*;

/// SplitMix64: small, fast, and deterministic for a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next_u64() % bound as u64) as usize
        }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

fn leaf_type() -> impl Strategy<Value = DataType> {
    prop_oneof![
        Just(DataType::Int8),
        Just(DataType::Int16),
        Just(DataType::Int32),
        Just(DataType::Int64),
        Just(DataType::UInt8),
        Just(DataType::UInt32),
        Just(DataType::UInt64),
        Just(DataType::Float32),
        Just(DataType::Float64),
        Just(DataType::Boolean),
        Just(DataType::Utf8),
        Just(DataType::LargeUtf8),
        Just(DataType::Binary),
        Just(DataType::LargeBinary),
        Just(DataType::Utf8View),
        Just(DataType::BinaryView),
        Just(DataType::FixedSizeBinary(5)),
        Just(DataType::Decimal128(38, 4)),
        Just(DataType::Decimal256(50, 10)),
        Just(DataType::Date32),
        Just(DataType::Time64(TimeUnit::Microsecond)),
        Just(DataType::Timestamp(TimeUnit::Millisecond, None)),
        Just(DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
        Just(DataType::Duration(TimeUnit::Nanosecond)),
        Just(DataType::Interval(IntervalUnit::DayTime)),
        Just(DataType::Null),
    ]
}

/// Any data type a batch supports, nested up to three levels.
pub fn data_type() -> impl Strategy<Value = DataType> {
    leaf_type().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|child| DataType::List(Arc::new(Field::new("item", child, true)))),
            inner
                .clone()
                .prop_map(|child| DataType::LargeList(Arc::new(Field::new("item", child, true)))),
            (inner.clone(), 1i32..4).prop_map(|(child, size)| DataType::FixedSizeList(
                Arc::new(Field::new("item", child, true)),
                size
            )),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|children| {
                let fields: Fields = children
                    .into_iter()
                    .enumerate()
                    .map(|(index, child)| Field::new(format!("f{index}"), child, true))
                    .collect();
                DataType::Struct(fields)
            }),
            inner.prop_map(|value| {
                let entries = Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", value, true),
                ]);
                DataType::Map(
                    Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                    false,
                )
            }),
        ]
    })
}

/// A schema of one to `max_columns` columns; top-level columns may be NOT NULL.
pub fn schema(max_columns: usize) -> impl Strategy<Value = Schema> {
    prop::collection::vec((data_type(), any::<bool>()), 1..=max_columns).prop_map(|columns| {
        Schema::new(
            columns
                .into_iter()
                .enumerate()
                .map(|(index, (data_type, nullable))| {
                    let nullable = nullable || data_type == DataType::Null;
                    Field::new(format!("c{index}"), data_type, nullable)
                })
                .collect::<Vec<_>>(),
        )
    })
}

/// A record batch of `schema` with `rows` rows and values from `seed`.
pub fn record_batch(schema: &Schema, rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng::new(seed);
    let columns: Vec<ArrayRef> =
        schema.fields().iter().map(|field| array(field, rows, &mut rng)).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(schema.clone()), columns, &options).unwrap()
}

fn nulls(field: &Field, len: usize, rng: &mut Rng) -> Option<NullBuffer> {
    if !field.is_nullable() || len == 0 || rng.chance(30) {
        return None;
    }
    let density = rng.below(60) as u64;
    let valid: Vec<bool> = (0..len).map(|_| !rng.chance(density)).collect();
    Some(NullBuffer::new(BooleanBuffer::from(valid)))
}

fn array(field: &Field, len: usize, rng: &mut Rng) -> ArrayRef {
    let nulls = nulls(field, len, rng);
    let data_type = field.data_type().clone();
    let data = match &data_type {
        DataType::Null => return new_null_array(&DataType::Null, len),
        DataType::Boolean => {
            let values: Vec<bool> = (0..len).map(|_| rng.chance(50)).collect();
            ArrayData::builder(data_type.clone())
                .len(len)
                .add_buffer(BooleanBuffer::from(values).into_inner())
        }
        DataType::Utf8 | DataType::Binary => {
            let (offsets, values) = var_values::<i32>(len, &data_type, rng);
            ArrayData::builder(data_type.clone()).len(len).add_buffer(offsets).add_buffer(values)
        }
        DataType::LargeUtf8 | DataType::LargeBinary => {
            let (offsets, values) = var_values::<i64>(len, &data_type, rng);
            ArrayData::builder(data_type.clone()).len(len).add_buffer(offsets).add_buffer(values)
        }
        DataType::Utf8View => return string_views(len, nulls.as_ref(), rng),
        DataType::BinaryView => return binary_views(len, nulls.as_ref(), rng),
        DataType::List(child) | DataType::Map(child, _) => {
            let (offsets, child_len) = list_offsets::<i32>(len, rng);
            let child = array(child, child_len, rng);
            ArrayData::builder(data_type.clone())
                .len(len)
                .add_buffer(offsets)
                .add_child_data(child.to_data())
        }
        DataType::LargeList(child) => {
            let (offsets, child_len) = list_offsets::<i64>(len, rng);
            let child = array(child, child_len, rng);
            ArrayData::builder(data_type.clone())
                .len(len)
                .add_buffer(offsets)
                .add_child_data(child.to_data())
        }
        DataType::FixedSizeList(child, size) => {
            let child = array(child, len * *size as usize, rng);
            ArrayData::builder(data_type.clone()).len(len).add_child_data(child.to_data())
        }
        DataType::Struct(children) => {
            let mut builder = ArrayData::builder(data_type.clone()).len(len);
            for child in children {
                builder = builder.add_child_data(array(child, len, rng).to_data());
            }
            builder
        }
        fixed => {
            let width = match fixed {
                DataType::FixedSizeBinary(width) => *width as usize,
                other => {
                    other.primitive_width().unwrap_or_else(|| panic!("no generator for {other}"))
                }
            };
            ArrayData::builder(data_type.clone())
                .len(len)
                .add_buffer(Buffer::from_slice_ref(rng.bytes(len * width)))
        }
    };
    let data = data.nulls(nulls).build().unwrap();
    make_array(data)
}

/// A `Utf8View` array of `len` random strings, null where `nulls` says.
fn string_views(len: usize, nulls: Option<&NullBuffer>, rng: &mut Rng) -> ArrayRef {
    let mut builder = StringViewBuilder::new();
    for index in 0..len {
        match nulls {
            Some(nulls) if nulls.is_null(index) => builder.append_null(),
            _ => builder.append_value(text(rng)),
        }
    }
    Arc::new(builder.finish())
}

/// A `BinaryView` array of `len` random byte strings, null where `nulls` says.
fn binary_views(len: usize, nulls: Option<&NullBuffer>, rng: &mut Rng) -> ArrayRef {
    let mut builder = BinaryViewBuilder::new();
    for index in 0..len {
        match nulls {
            Some(nulls) if nulls.is_null(index) => builder.append_null(),
            _ => {
                let size = rng.below(30);
                builder.append_value(rng.bytes(size))
            }
        }
    }
    Arc::new(builder.finish())
}

fn text(rng: &mut Rng) -> String {
    const ALPHABET: &[char] = &['a', 'b', 'z', 'Ä', 'ß', '字', ' ', '0', '😀'];
    let len = rng.below(20);
    (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect()
}

fn var_values<O: arrow_array::OffsetSizeTrait>(
    len: usize,
    data_type: &DataType,
    rng: &mut Rng,
) -> (Buffer, Buffer) {
    let mut values = Vec::new();
    let mut offsets = vec![O::usize_as(0)];
    for _ in 0..len {
        match data_type {
            DataType::Utf8 | DataType::LargeUtf8 => values.extend_from_slice(text(rng).as_bytes()),
            _ => {
                let size = rng.below(24);
                values.extend(rng.bytes(size))
            }
        }
        offsets.push(O::usize_as(values.len()));
    }
    (OffsetBuffer::new(ScalarBuffer::from(offsets)).into_inner().into_inner(), Buffer::from(values))
}

fn list_offsets<O: arrow_array::OffsetSizeTrait>(len: usize, rng: &mut Rng) -> (Buffer, usize) {
    let mut total = 0usize;
    let mut offsets = vec![O::usize_as(0)];
    for _ in 0..len {
        total += rng.below(4);
        offsets.push(O::usize_as(total));
    }
    (ScalarBuffer::from(offsets).into_inner(), total)
}

/// Every data buffer of `data` and its children, for zero-copy assertions.
pub fn leaf_buffers(data: &ArrayData, out: &mut Vec<(usize, usize)>) {
    for buffer in data.buffers() {
        if !buffer.is_empty() {
            out.push((buffer.as_ptr() as usize, buffer.len()));
        }
    }
    if let Some(nulls) = data.nulls() {
        let buffer = nulls.buffer();
        if !buffer.is_empty() {
            out.push((buffer.as_ptr() as usize, buffer.len()));
        }
    }
    for child in data.child_data() {
        leaf_buffers(child, out);
    }
}
