//! The table model: what a table's definition resolves to ([`resolve`]: its batch schema,
//! log limits, primary-key and lake options) and how the table looks in the lake
//! ([`LakeSchema`]). It depends on no other part of the node, so the catalog, the shards,
//! the request layer, tiering and SQL all build on it.

pub mod lake_schema;
pub mod resolve;

pub use lake_schema::{LakeSchema, LakeSchemaError};
pub use resolve::{
    is_lake_table, resolve, LakeTableOptions, ResolvedTable, LAKE_ENABLED_PROPERTIES,
    LAKE_FRESHNESS_DEFAULT, LAKE_FRESHNESS_MIN, TABLE_PROPERTIES,
};
