//! [`Lookuper`]: point and prefix lookups on a primary-key table.
//!
//! Keys are a record batch of the primary-key columns (in key order); prefixes a record
//! batch of the bucket-key columns. Keys are split by the bucket their bucket key hashes to,
//! each bucket's keys go as one request to the shard that owns it, all buckets at once, and
//! the rows found come back in the order of the keys that found them. Lookups see every
//! write acknowledged with `acks=all` before they were sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::{Schema, SchemaRef};
use tokio::sync::Mutex;

use crate::batch_schema::BatchSchema;
use crate::bucketing::buckets_of_rows;
use crate::builder::{BatchOptions, LogBatchBuilder, WriterStamp};
use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::client::table::Table;
use crate::decode::BatchDecoder;
use crate::protocol::messages::{LookupRequest, TablePath};

/// Rows a lookup found.
#[derive(Clone, Debug)]
pub struct LookupRows {
    /// The rows (the table's columns, or the projection), in the order of `key_index`.
    pub rows: RecordBatch,
    /// For each row, the index of the key (or prefix) in the request that found it.
    pub key_index: Vec<u32>,
    /// True if a prefix lookup found more rows in some bucket than one answer holds.
    pub truncated: bool,
}

/// Looks rows of one primary-key table up by key or by bucket-key prefix.
pub struct Lookuper {
    connection: Connection,
    table: Table,
    addresses: Mutex<Vec<SocketAddr>>,
    key_schema: BatchSchema,
    prefix_schema: BatchSchema,
    /// Positions of the bucket-key columns among the key columns.
    bucket_key_in_key: Vec<usize>,
    projection: Option<Vec<u32>>,
    result_schema: BatchSchema,
    /// Decodes answers (made once: building one costs more than a small lookup).
    result_decoder: BatchDecoder,
    /// Build request batches of keys and of prefixes.
    key_builder: std::sync::Mutex<LogBatchBuilder>,
    prefix_builder: std::sync::Mutex<LogBatchBuilder>,
}

impl std::fmt::Debug for Lookuper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookuper").field("table", &self.table.info.path).finish_non_exhaustive()
    }
}

fn sub_schema(table: &Table, columns: &[usize]) -> Result<BatchSchema, ClientError> {
    let arrow = table.schema.arrow();
    let fields: Vec<_> = columns.iter().map(|&column| arrow.field(column).clone()).collect();
    BatchSchema::new(table.schema.id(), Arc::new(Schema::new(fields)))
        .map_err(|error| ClientError::Invalid(error.to_string()))
}

impl Lookuper {
    /// A lookuper for the primary-key table at `path`, returning the `projection` columns
    /// (by name, any order; `None` for all).
    pub async fn new(
        connection: &Connection,
        path: &TablePath,
        projection: Option<&[&str]>,
    ) -> Result<Self, ClientError> {
        let table = Table::open(connection, path).await?;
        if table.info.definition.primary_key.is_empty() {
            return Err(ClientError::Invalid(format!(
                "table {path} has no primary key: read it with a LogScanner"
            )));
        }
        let key_columns = table.primary_key_columns()?;
        let bucket_key_columns = table.bucket_key_columns()?;
        let bucket_key_in_key = bucket_key_columns
            .iter()
            .map(|column| {
                key_columns.iter().position(|key| key == column).ok_or_else(|| {
                    ClientError::Invalid(format!("the bucket key of {path} is not in its key"))
                })
            })
            .collect::<Result<Vec<usize>, ClientError>>()?;
        let projection = projection.map(|names| table.column_set(names)).transpose()?;
        let result_schema = match &projection {
            None => table.schema.clone(),
            Some(columns) => {
                let columns: Vec<usize> = columns.iter().map(|column| *column as usize).collect();
                sub_schema(&table, &columns)?
            }
        };
        let key_schema = sub_schema(&table, &key_columns)?;
        let prefix_schema = sub_schema(&table, &bucket_key_columns)?;
        let builder = |schema: &BatchSchema| {
            LogBatchBuilder::new(schema.clone(), BatchOptions::default())
                .map(std::sync::Mutex::new)
                .map_err(|error| ClientError::Batch(error.to_string()))
        };
        Ok(Self {
            connection: connection.clone(),
            addresses: Mutex::new(table.bucket_addresses.clone()),
            key_builder: builder(&key_schema)?,
            prefix_builder: builder(&prefix_schema)?,
            key_schema,
            prefix_schema,
            result_decoder: BatchDecoder::new(result_schema.clone()),
            bucket_key_in_key,
            projection,
            result_schema,
            table,
        })
    }

    /// The schema key batches must have: the primary-key columns in key order.
    pub fn key_schema(&self) -> &SchemaRef {
        self.key_schema.arrow()
    }

    /// The schema prefix batches must have: the bucket-key columns.
    pub fn prefix_schema(&self) -> &SchemaRef {
        self.prefix_schema.arrow()
    }

    /// The schema of the rows found.
    pub fn result_schema(&self) -> &SchemaRef {
        self.result_schema.arrow()
    }

    /// The rows with the keys of `keys` (at most one per key).
    pub async fn lookup(&self, keys: &RecordBatch) -> Result<LookupRows, ClientError> {
        let bucket_key = self.bucket_key_in_key.clone();
        self.run(keys, &self.key_schema, &bucket_key, false).await
    }

    /// Every row whose bucket key equals a row of `prefixes`.
    pub async fn prefix_lookup(&self, prefixes: &RecordBatch) -> Result<LookupRows, ClientError> {
        let all: Vec<usize> = (0..self.prefix_schema.arrow().fields().len()).collect();
        self.run(prefixes, &self.prefix_schema, &all, true).await
    }

    async fn run(
        &self,
        keys: &RecordBatch,
        schema: &BatchSchema,
        bucket_columns: &[usize],
        prefix: bool,
    ) -> Result<LookupRows, ClientError> {
        let keys = conform(keys, schema)?;
        let buckets = buckets_of_rows(&keys, bucket_columns, self.table.bucket_count())
            .map_err(ClientError::Invalid)?;
        let mut by_bucket: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for (row, bucket) in buckets.iter().enumerate() {
            by_bucket.entry(*bucket).or_default().push(row as u32);
        }
        let calls = by_bucket.into_iter().map(|(bucket, rows)| {
            let keys = &keys;
            async move {
                let part =
                    arrow_select::take::take_record_batch(keys, &UInt32Array::from(rows.clone()))
                        .map_err(|error| ClientError::Batch(error.to_string()))?;
                let (found, key_index, truncated) = self.call(bucket, &part, prefix).await?;
                let key_index: Vec<u32> =
                    key_index.into_iter().map(|index| rows[index as usize]).collect();
                Ok::<_, ClientError>((found, key_index, truncated))
            }
        });
        let answers = futures_util::future::try_join_all(calls).await?;
        let mut batches = Vec::new();
        let mut key_index = Vec::new();
        let mut truncated = false;
        for (found, indexes, cut) in answers {
            truncated |= cut;
            if let Some(found) = found {
                batches.push(found);
                key_index.extend(indexes);
            }
        }
        let rows = arrow_select::concat::concat_batches(self.result_schema.arrow(), &batches)
            .map_err(|error| ClientError::Batch(error.to_string()))?;
        // Rows in the order of the keys that found them (stable within a prefix).
        let mut order: Vec<u32> = (0..key_index.len() as u32).collect();
        order.sort_by_key(|position| key_index[*position as usize]);
        let rows = arrow_select::take::take_record_batch(&rows, &UInt32Array::from(order.clone()))
            .map_err(|error| ClientError::Batch(error.to_string()))?;
        let key_index = order.iter().map(|position| key_index[*position as usize]).collect();
        Ok(LookupRows { rows, key_index, truncated })
    }

    async fn call(
        &self,
        bucket: u32,
        keys: &RecordBatch,
        prefix: bool,
    ) -> Result<(Option<RecordBatch>, Vec<u32>, bool), ClientError> {
        let builder = if prefix { &self.prefix_builder } else { &self.key_builder };
        let bytes = builder
            .lock()
            .map_err(|_| poisoned())?
            .build(keys, None, WriterStamp::NONE)
            .map_err(|error| ClientError::Batch(error.to_string()))?;
        let request = LookupRequest {
            table_id: self.table.info.table_id,
            bucket,
            prefix,
            projection: self.projection.clone(),
        };
        let address = self.addresses.lock().await[bucket as usize];
        let answer = match self.connection.call(address, &request, &bytes, Duration::ZERO).await {
            Ok(answer) => answer,
            Err(error @ (ClientError::Transport { .. } | ClientError::Timeout { .. })) => {
                // The node may have restarted with its buckets elsewhere: ask, then once more.
                let addresses =
                    self.table.locate_again(&self.connection).await.map_err(|_| error)?;
                let address = addresses[bucket as usize];
                *self.addresses.lock().await = addresses;
                self.connection.call(address, &request, &bytes, Duration::ZERO).await?
            }
            Err(error) => return Err(error),
        };
        let found = decode_rows(&self.result_decoder, &answer.records)?;
        let count = found.as_ref().map_or(0, RecordBatch::num_rows);
        if count != answer.body.key_index.len() {
            return Err(ClientError::Batch(format!(
                "the node returned {count} rows and {} key indexes",
                answer.body.key_index.len()
            )));
        }
        if answer.body.key_index.iter().any(|index| *index as usize >= keys.num_rows()) {
            return Err(ClientError::Batch("the node returned a key index out of range".into()));
        }
        Ok((found, answer.body.key_index, answer.body.truncated))
    }
}

/// `batch` with the columns of `schema` (by name, in its order), or an error naming what
/// is missing or of another type.
fn conform(batch: &RecordBatch, schema: &BatchSchema) -> Result<RecordBatch, ClientError> {
    let mut columns = Vec::new();
    for field in schema.arrow().fields() {
        let index = batch.schema().index_of(field.name()).map_err(|_| {
            ClientError::Invalid(format!("the keys have no column {:?}", field.name()))
        })?;
        let column = batch.column(index).clone();
        if column.data_type() != field.data_type() {
            return Err(ClientError::Invalid(format!(
                "key column {:?} is {}, the table has {}",
                field.name(),
                column.data_type(),
                field.data_type()
            )));
        }
        columns.push(column);
    }
    RecordBatch::try_new(schema.arrow().clone(), columns)
        .map_err(|error| ClientError::Invalid(error.to_string()))
}

fn poisoned() -> ClientError {
    ClientError::Batch("a batch builder was left broken by a panic".into())
}

/// The rows of a records section holding zero or one batch `decoder` reads.
pub(crate) fn decode_rows(
    decoder: &BatchDecoder,
    records: &arrow_buffer::Buffer,
) -> Result<Option<RecordBatch>, ClientError> {
    if records.is_empty() {
        return Ok(None);
    }
    let decoded = decoder.decode(records).map_err(|error| ClientError::Batch(error.to_string()))?;
    Ok(Some(decoded.record_batch))
}
