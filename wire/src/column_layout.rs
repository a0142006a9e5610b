//! Which Arrow types a batch may carry, and how many IPC field nodes and buffers each
//! top-level column occupies.
//!
//! Arrow IPC flattens a record batch into a list of field nodes (one per type node, in
//! pre-order) and a list of buffers (per node: validity, then the type's own buffers). To
//! validate a message against a schema, or to cut columns out of it without decoding, one
//! needs each column's node and buffer counts. View types (`Utf8View`, `BinaryView`) have a
//! per-batch number of data buffers, given by the message's `variadicBufferCounts`.

use arrow_schema::{DataType, Field, FieldRef, Schema};

use crate::error::UnsupportedTypeError;
use crate::limits::TYPE_NESTING_DEPTH_MAX;

/// The IPC footprint of one top-level column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ColumnLayout {
    /// Field nodes the column occupies.
    pub node_count: usize,
    /// Buffers the column occupies, not counting the variadic data buffers of view types.
    pub fixed_buffer_count: usize,
    /// View-typed nodes in the column, each taking one entry of `variadicBufferCounts`.
    pub view_count: usize,
}

/// What a message must hold for one field node, precomputed per schema so that checking a
/// batch walks a flat list instead of the type tree (and allocates nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// The field's path, for error messages.
    pub name: String,
    /// The node's first buffer is a validity bitmap.
    pub has_validity: bool,
    /// Buffers of the node itself, not counting view types' variadic data buffers.
    pub own_buffer_count: usize,
    /// A view type: one entry of `variadicBufferCounts` adds data buffers.
    pub is_view: bool,
    /// Width of the elements of the node's first data buffer when it is fixed-width (values
    /// or offsets): its length must be a multiple of it.
    pub fixed_width_bytes: Option<usize>,
}

/// The field nodes of `schema` in IPC (pre-)order, or the first unsupported type.
pub fn schema_nodes(schema: &Schema) -> Result<Vec<NodeSpec>, UnsupportedTypeError> {
    let mut nodes = Vec::new();
    for field in schema.fields() {
        add_nodes(field, field.name(), 0, &mut nodes)?;
    }
    Ok(nodes)
}

fn add_nodes(
    field: &Field,
    path: &str,
    depth: usize,
    nodes: &mut Vec<NodeSpec>,
) -> Result<(), UnsupportedTypeError> {
    let data_type = field.data_type();
    let own_buffer_count =
        own_buffer_count(data_type).filter(|_| depth <= TYPE_NESTING_DEPTH_MAX).ok_or_else(
            || UnsupportedTypeError { field: path.to_string(), data_type: data_type.to_string() },
        )?;
    let fixed_width_bytes = match arrow_data::layout(data_type).buffers.first() {
        Some(arrow_data::BufferSpec::FixedWidth { byte_width, .. }) => Some(*byte_width),
        _ => None,
    };
    nodes.push(NodeSpec {
        name: path.to_string(),
        has_validity: *data_type != DataType::Null,
        own_buffer_count,
        is_view: matches!(data_type, DataType::Utf8View | DataType::BinaryView),
        fixed_width_bytes,
    });
    for child in child_fields(data_type) {
        add_nodes(child, &child_path(path, child), depth + 1, nodes)?;
    }
    Ok(())
}

/// Layouts of every top-level column of `schema`, or the first unsupported type.
pub fn schema_layout(schema: &Schema) -> Result<Vec<ColumnLayout>, UnsupportedTypeError> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let mut layout = ColumnLayout::default();
            add_field(field, field.name(), 0, &mut layout)?;
            Ok(layout)
        })
        .collect()
}

/// Checks that every type in `schema` can be carried in a batch.
pub fn check_schema_supported(schema: &Schema) -> Result<(), UnsupportedTypeError> {
    schema_layout(schema).map(|_| ())
}

fn add_field(
    field: &Field,
    path: &str,
    depth: usize,
    layout: &mut ColumnLayout,
) -> Result<(), UnsupportedTypeError> {
    let unsupported = || UnsupportedTypeError {
        field: path.to_string(),
        data_type: field.data_type().to_string(),
    };
    if depth > TYPE_NESTING_DEPTH_MAX {
        return Err(unsupported());
    }
    layout.node_count += 1;
    let Some(own) = own_buffer_count(field.data_type()) else {
        return Err(unsupported());
    };
    layout.fixed_buffer_count += own;
    if matches!(field.data_type(), DataType::Utf8View | DataType::BinaryView) {
        layout.view_count += 1;
    }
    for child in child_fields(field.data_type()) {
        add_field(child, &child_path(path, child), depth + 1, layout)?;
    }
    Ok(())
}

/// Buffers a node of `data_type` has itself (children not counted; view types' variadic
/// data buffers not counted), or `None` for a type batches do not support.
pub fn own_buffer_count(data_type: &DataType) -> Option<usize> {
    Some(match data_type {
        DataType::Null => 0,
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Timestamp(_, _)
        | DataType::Date32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Duration(_)
        | DataType::Interval(_)
        | DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _)
        | DataType::FixedSizeBinary(_)
        | DataType::Utf8View
        | DataType::BinaryView => 2,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => 3,
        DataType::List(_) | DataType::LargeList(_) | DataType::Map(_, _) => 2,
        DataType::FixedSizeList(_, _) | DataType::Struct(_) => 1,
        DataType::Dictionary(_, _)
        | DataType::Union(_, _)
        | DataType::RunEndEncoded(_, _)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => return None,
    })
}

/// The child fields of a nested type, in IPC order (empty for other types).
pub fn child_fields(data_type: &DataType) -> &[FieldRef] {
    match data_type {
        DataType::List(child)
        | DataType::LargeList(child)
        | DataType::Map(child, _)
        | DataType::FixedSizeList(child, _) => core::slice::from_ref(child),
        DataType::Struct(children) => children,
        _ => &[],
    }
}

fn child_path(parent: &str, child: &Field) -> String {
    format!("{parent}.{}", child.name())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{Fields, TimeUnit};

    use super::*;

    #[test]
    fn nested_columns_count_every_node_and_buffer() {
        let point = Fields::from(vec![
            Field::new("x", DataType::Float64, false),
            Field::new("label", DataType::Utf8View, true),
        ]);
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "points",
                DataType::List(Arc::new(Field::new("item", DataType::Struct(point), true))),
                true,
            ),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("nothing", DataType::Null, true),
        ]);
        let layout = schema_layout(&schema).unwrap();
        let expect = |node_count, fixed_buffer_count, view_count| ColumnLayout {
            node_count,
            fixed_buffer_count,
            view_count,
        };
        assert_eq!(layout[0], expect(1, 2, 0));
        assert_eq!(layout[1], expect(1, 3, 0));
        // list (2) + struct (1) + float64 (2) + utf8view (2 + variadic)
        assert_eq!(layout[2], expect(4, 7, 1));
        assert_eq!(layout[3], expect(1, 2, 0));
        assert_eq!(layout[4], expect(1, 0, 0));
    }

    #[test]
    fn dictionary_and_union_columns_are_rejected_with_their_path() {
        let schema = Schema::new(vec![Field::new(
            "outer",
            DataType::Struct(Fields::from(vec![Field::new(
                "tag",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            )])),
            true,
        )]);
        let error = check_schema_supported(&schema).unwrap_err();
        assert_eq!(error.field, "outer.tag");
    }
}
