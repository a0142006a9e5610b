//! [`Table`]: a table as a client uses it — schema, buckets, and the shard endpoint that
//! owns each bucket.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::batch_schema::BatchSchema;
use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::protocol::error_code::{ErrorBody, ErrorCode};
use crate::protocol::messages::{TableInfo, TableMetadata, TablePath};
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
        let bucket_addresses = addresses(connection, &metadata).await?;
        Ok(Self { info: metadata.info, schema, bucket_addresses })
    }

    /// Asks the node again where this table's buckets are (after a shard stopped answering:
    /// the node may have restarted with other shards or ports). Fails if the table is gone
    /// or was replaced by another of the same name.
    pub async fn locate_again(
        &self,
        connection: &Connection,
    ) -> Result<Vec<SocketAddr>, ClientError> {
        connection.invalidate_metadata().await;
        let metadata = connection.table_metadata(&self.info.path).await?;
        if metadata.info.table_id != self.info.table_id {
            return Err(ClientError::Server(ErrorBody::new(
                ErrorCode::TableNotFound,
                format!("table {} was dropped and created again", self.info.path),
            )));
        }
        addresses(connection, &metadata).await
    }

    /// Buckets.
    pub fn bucket_count(&self) -> u32 {
        self.info.definition.bucket_count
    }

    /// Indexes of the bucket-key columns: the bucket key, or for a primary-key table
    /// without one, the primary key.
    pub fn bucket_key_columns(&self) -> Result<Vec<usize>, ClientError> {
        let definition = &self.info.definition;
        let names = if definition.bucket_key.is_empty() {
            &definition.primary_key
        } else {
            &definition.bucket_key
        };
        self.columns(names)
    }

    /// Indexes of the primary-key columns, in key order.
    pub fn primary_key_columns(&self) -> Result<Vec<usize>, ClientError> {
        self.columns(&self.info.definition.primary_key)
    }

    fn columns(&self, names: &[String]) -> Result<Vec<usize>, ClientError> {
        self.column_indexes(names)
    }

    /// The schema index of each column in `names`, in that order.
    pub fn column_indexes(&self, names: &[impl AsRef<str>]) -> Result<Vec<usize>, ClientError> {
        names
            .iter()
            .map(|name| {
                let name = name.as_ref();
                self.schema.arrow().index_of(name).map_err(|_| {
                    ClientError::Invalid(format!("table {} has no column {name:?}", self.info.path))
                })
            })
            .collect()
    }

    /// The columns `names` as a protocol column set: ascending schema indexes, each once.
    pub fn column_set(&self, names: &[impl AsRef<str>]) -> Result<Vec<u32>, ClientError> {
        let mut columns: Vec<u32> =
            self.column_indexes(names)?.into_iter().map(|index| index as u32).collect();
        columns.sort_unstable();
        columns.dedup();
        Ok(columns)
    }
}

/// The endpoint of the shard owning each bucket of `metadata`'s table.
async fn addresses(
    connection: &Connection,
    metadata: &TableMetadata,
) -> Result<Vec<SocketAddr>, ClientError> {
    let mut bucket_addresses = Vec::with_capacity(metadata.buckets.len());
    for location in &metadata.buckets {
        bucket_addresses.push(connection.shard_address(location.node_id, location.shard).await?);
    }
    Ok(bucket_addresses)
}
