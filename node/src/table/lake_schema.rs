//! [`LakeSchema`]: how a ufer table looks as an Apache Iceberg (v2) table, and the
//! conversion of its batches into the lake's rows.
//!
//! The lake table has the ufer table's columns, in order, followed by system columns (the
//! names Apache Fluss gives them): `__bucket` (int), `__offset` (long: the row's log
//! offset), `__timestamp` (timestamptz: the batch's commit time), and for a primary-key
//! table `__change_type` (string: `+I`, `-U`, `+U`, `-D`), since its changelog is tiered
//! until row-level deletes can be committed.
//!
//! Invariants: field ids are assigned once by iceberg-rust from the ufer schema (top-level
//! columns 1..n in order, then nested fields) when the lake table is created (a
//! table's schema never changes, so they never move); Iceberg v2 knows no 8/16-bit
//! integers, second/millisecond/nanosecond times or timestamps, so those are widened to
//! `int` and microseconds (nanoseconds are truncated to microseconds: v2 has no finer
//! unit). The converted batch always has exactly [`LakeSchema::arrow`] as schema, field ids
//! included, which is what iceberg-rust's Parquet writer matches columns by.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use ufer_wire::ChangeType;

/// The column holding a row's bucket.
pub const BUCKET_COLUMN: &str = "__bucket";
/// The column holding a row's log offset.
pub const OFFSET_COLUMN: &str = "__offset";
/// The column holding a row's commit time.
pub const TIMESTAMP_COLUMN: &str = "__timestamp";
/// The column holding a changelog row's change type (primary-key tables).
pub const CHANGE_TYPE_COLUMN: &str = "__change_type";

/// The time zone Iceberg's Arrow mapping writes for `timestamptz`.
const UTC: &str = "+00:00";

/// Why a table cannot be a lake table, or a batch could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum LakeSchemaError {
    /// A column's type has no Iceberg v2 counterpart.
    #[error("column {column:?}: type {data_type} has no Apache Iceberg v2 type")]
    Unsupported {
        /// The column.
        column: String,
        /// Its type.
        data_type: DataType,
    },
    /// A column name collides with a system column.
    #[error("column {0:?} is reserved for the lake table's system columns")]
    Reserved(String),
    /// iceberg-rust refused the schema.
    #[error("Iceberg schema: {0}")]
    Iceberg(#[from] iceberg::Error),
    /// A batch did not convert.
    #[error("converting a batch for the lake: {0}")]
    Convert(#[from] arrow_schema::ArrowError),
}

/// A ufer table's lake schema.
#[derive(Clone, Debug)]
pub struct LakeSchema {
    /// The Iceberg schema.
    pub iceberg: iceberg::spec::Schema,
    /// The same as Arrow, with `PARQUET:field_id` on every field.
    pub arrow: SchemaRef,
    /// Whether the rows carry a change type (primary-key tables).
    pub changelog: bool,
}

impl LakeSchema {
    /// The lake schema of a table whose batches have schema `table`.
    pub fn new(table: &Schema, changelog: bool) -> Result<Self, LakeSchemaError> {
        let mut fields: Vec<FieldRef> = Vec::with_capacity(table.fields().len() + 4);
        for field in table.fields() {
            if field.name().starts_with("__") {
                return Err(LakeSchemaError::Reserved(field.name().clone()));
            }
            fields.push(Arc::new(lake_field(field, field.name())?));
        }
        fields.push(Arc::new(Field::new(BUCKET_COLUMN, DataType::Int32, false)));
        fields.push(Arc::new(Field::new(OFFSET_COLUMN, DataType::Int64, false)));
        fields.push(Arc::new(Field::new(
            TIMESTAMP_COLUMN,
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            false,
        )));
        if changelog {
            fields.push(Arc::new(Field::new(CHANGE_TYPE_COLUMN, DataType::Utf8, false)));
        }
        let plain = Schema::new(fields);
        let iceberg = iceberg::arrow::arrow_schema_to_schema_auto_assign_ids(&plain)?;
        let arrow = Arc::new(iceberg::arrow::schema_to_arrow_schema(&iceberg)?);
        Ok(Self { iceberg, arrow, changelog })
    }

    /// Columns that come from the ufer table (the rest are system columns).
    pub fn table_column_count(&self) -> usize {
        self.arrow.fields().len() - if self.changelog { 4 } else { 3 }
    }

    /// The lake rows of `rows`, the records of `bucket` from `first_offset` on, committed at
    /// `timestamp_ms`, with their change types (primary-key tables).
    pub fn convert(
        &self,
        rows: &RecordBatch,
        bucket: u32,
        first_offset: u64,
        timestamp_ms: i64,
        change_types: &[ChangeType],
    ) -> Result<RecordBatch, LakeSchemaError> {
        let count = rows.num_rows();
        assert_eq!(rows.num_columns(), self.table_column_count(), "rows of the table's schema");
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.arrow.fields().len());
        for (column, target) in rows.columns().iter().zip(self.arrow.fields()) {
            if column.data_type() == target.data_type() {
                columns.push(column.clone());
            } else {
                columns.push(arrow_cast::cast(column, target.data_type())?);
            }
        }
        columns.push(Arc::new(Int32Array::from_value(bucket as i32, count)));
        let first = first_offset as i64;
        columns.push(Arc::new(Int64Array::from_iter_values(first..first + count as i64)));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from_value(timestamp_ms.saturating_mul(1000), count)
                .with_timezone(UTC),
        ));
        if self.changelog {
            assert_eq!(change_types.len(), count, "a change type per row");
            columns.push(Arc::new(StringArray::from_iter_values(
                change_types.iter().map(|change| change.short_name()),
            )));
        }
        Ok(RecordBatch::try_new(self.arrow.clone(), columns)?)
    }
}

/// `field` as the lake stores it (before field ids are assigned).
fn lake_field(field: &Field, path: &str) -> Result<Field, LakeSchemaError> {
    let unsupported = || LakeSchemaError::Unsupported {
        column: path.to_string(),
        data_type: field.data_type().clone(),
    };
    let data_type = match field.data_type() {
        DataType::Boolean
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32
        | DataType::Utf8
        | DataType::Binary => field.data_type().clone(),
        DataType::Int8 | DataType::Int16 => DataType::Int32,
        DataType::Decimal128(precision, scale) if *scale >= 0 && *precision <= 38 => {
            field.data_type().clone()
        }
        DataType::FixedSizeBinary(size) if *size > 0 => field.data_type().clone(),
        DataType::Time32(_) | DataType::Time64(_) => DataType::Time64(TimeUnit::Microsecond),
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        DataType::List(item) => {
            DataType::List(Arc::new(lake_field(item, &format!("{path}.element"))?))
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(children) = entries.data_type() else { return Err(unsupported()) };
            let children: Vec<Field> = children
                .iter()
                .map(|child| lake_field(child, &format!("{path}.{}", child.name())))
                .collect::<Result<_, _>>()?;
            DataType::Map(
                Arc::new(Field::new(
                    entries.name(),
                    DataType::Struct(Fields::from(children)),
                    entries.is_nullable(),
                )),
                *sorted,
            )
        }
        DataType::Struct(children) => {
            let children: Vec<Field> = children
                .iter()
                .map(|child| lake_field(child, &format!("{path}.{}", child.name())))
                .collect::<Result<_, _>>()?;
            DataType::Struct(Fields::from(children))
        }
        _ => return Err(unsupported()),
    };
    Ok(Field::new(field.name(), data_type, field.is_nullable()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use arrow_array::{Int16Array, ListArray, TimestampNanosecondArray};
    use iceberg::spec::{PrimitiveType, Type};

    fn table_schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("small", DataType::Int16, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                true,
            ),
        ])
    }

    #[test]
    fn columns_keep_their_order_and_gain_system_columns_with_field_ids() {
        let lake = LakeSchema::new(&table_schema(), true).unwrap();
        let names: Vec<&str> =
            lake.arrow.fields().iter().map(|field| field.name().as_str()).collect();
        assert_eq!(
            names,
            ["id", "small", "at", "tags", "__bucket", "__offset", "__timestamp", "__change_type"]
        );
        for field in lake.arrow.fields() {
            assert!(field.metadata().contains_key("PARQUET:field_id"), "{}", field.name());
        }
        let small = lake.iceberg.field_by_name("small").unwrap();
        assert_eq!(*small.field_type, Type::Primitive(PrimitiveType::Int));
        let at = lake.iceberg.field_by_name("at").unwrap();
        assert_eq!(*at.field_type, Type::Primitive(PrimitiveType::Timestamptz));
        assert!(lake.iceberg.field_by_name("id").unwrap().required);
        assert_eq!(lake.table_column_count(), 4);
    }

    #[test]
    fn batches_convert_with_widened_types_and_offsets_per_row() {
        let lake = LakeSchema::new(&table_schema(), true).unwrap();
        let rows = RecordBatch::try_new(
            Arc::new(table_schema()),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(Int16Array::from(vec![Some(-3), None])),
                Arc::new(
                    TimestampNanosecondArray::from(vec![Some(1_500), None]).with_timezone("UTC"),
                ),
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1)]),
                    None,
                ])),
            ],
        )
        .unwrap();
        let converted =
            lake.convert(&rows, 3, 40, 1_000, &[ChangeType::Insert, ChangeType::Delete]).unwrap();
        assert_eq!(converted.schema(), lake.arrow);
        let offsets = converted.column(5).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(offsets.values().to_vec(), vec![40, 41]);
        let small = converted.column(1).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!((small.value(0), small.is_null(1)), (-3, true));
        let at = converted.column(2).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert_eq!(at.value(0), 1, "nanoseconds truncated to microseconds");
        let changes = converted.column(7).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((changes.value(0), changes.value(1)), ("+I", "-D"));
        let stamp =
            converted.column(6).as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        assert_eq!(stamp.value(1), 1_000_000);
    }

    #[test]
    fn system_column_names_are_reserved() {
        let schema = Schema::new(vec![Field::new("__offset", DataType::Int64, false)]);
        assert!(matches!(LakeSchema::new(&schema, false), Err(LakeSchemaError::Reserved(_))));
    }
}
