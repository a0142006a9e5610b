//! A table schema as batches use it: the Arrow schema, its id, and each column's IPC layout,
//! and field nodes, computed once so that validating or projecting a batch does no schema
//! walk and allocates nothing.

use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};

use crate::column_layout::{schema_layout, schema_nodes, ColumnLayout, NodeSpec};
use crate::error::UnsupportedTypeError;

/// A schema every batch of which can be validated, decoded and projected.
#[derive(Clone, Debug)]
pub struct BatchSchema {
    id: u16,
    arrow: SchemaRef,
    layouts: Arc<[ColumnLayout]>,
    nodes: Arc<[NodeSpec]>,
}

impl BatchSchema {
    /// The schema `arrow` known by `id`. Fails if it holds a type batches cannot carry.
    pub fn new(id: u16, arrow: SchemaRef) -> Result<Self, UnsupportedTypeError> {
        let layouts = schema_layout(&arrow)?.into();
        let nodes = schema_nodes(&arrow)?.into();
        Ok(Self { id, arrow, layouts, nodes })
    }

    /// Same as [`BatchSchema::new`] for an owned schema.
    pub fn from_schema(id: u16, arrow: Schema) -> Result<Self, UnsupportedTypeError> {
        Self::new(id, Arc::new(arrow))
    }

    /// The schema id stamped into every batch.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The Arrow schema.
    pub fn arrow(&self) -> &SchemaRef {
        &self.arrow
    }

    /// Per top-level column: field nodes and buffers it occupies in a message.
    pub fn layouts(&self) -> &[ColumnLayout] {
        &self.layouts
    }

    /// Every field node a message of this schema holds, in IPC order.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }
}
