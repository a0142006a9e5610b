//! [`Table`]: a table as a client uses it — schema, buckets, and the shard endpoint that
//! owns each bucket.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::batch_schema::BatchSchema;
use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::protocol::messages::{TableInfo, TablePath};
use crate::schema_text::parse_schema;

/// A table and where its buckets live.
#[derive(Clone, Debug)]
pub struct Table {
    /// The catalog entry.
    pub info: TableInfo,
    /// Its schema.
    pub schema: BatchSchema,
    /// The owning shard's endpoint of each bucket.
    pub bucket_addresses: Vec<SocketAddr>,
}

impl Table {
    /// Looks the table up (asking the node again if it is not in the cached metadata).
    pub async fn open(connection: &Connection, path: &TablePath) -> Result<Self, ClientError> {
        let metadata = connection.table_metadata(path).await?;
        let arrow = parse_schema(&metadata.info.definition.schema).map_err(|error| {
            ClientError::Invalid(format!(
                "table {path} has a schema this client cannot read: {error}"
            ))
        })?;
        let schema = BatchSchema::new(metadata.info.schema_id, Arc::new(arrow))
            .map_err(|error| ClientError::Invalid(error.to_string()))?;
        let mut bucket_addresses = Vec::with_capacity(metadata.buckets.len());
        for location in &metadata.buckets {
            bucket_addresses
                .push(connection.shard_address(location.node_id, location.shard).await?);
        }
        Ok(Self { info: metadata.info, schema, bucket_addresses })
    }

    /// Buckets.
    pub fn bucket_count(&self) -> u32 {
        self.info.definition.bucket_count
    }

    /// Indexes of the bucket-key columns.
    pub fn bucket_key_columns(&self) -> Result<Vec<usize>, ClientError> {
        self.info
            .definition
            .bucket_key
            .iter()
            .map(|name| {
                self.schema.arrow().index_of(name).map_err(|_| {
                    ClientError::Invalid(format!("bucket key column {name:?} is not in the schema"))
                })
            })
            .collect()
    }
}
