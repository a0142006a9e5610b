//! [`UpsertWriter`]: upserts and deletes rows of a primary-key table.
//!
//! A write is a record batch of the table's schema and, optionally, what each row does
//! ([`RowKind`]). Rows are split by the bucket their bucket key hashes to and each bucket's
//! rows go, as one `LogBatch` with change types, straight to the shard that owns the bucket;
//! the buckets of one write are sent concurrently. Writes to one bucket are sent one at a
//! time and in order (a bucket's lock is held while its request is in flight), each with
//! the next sequence number of the writer's id, so a retried request is applied once.
//! Partial updates name the columns they write ([`UpsertOptions::target_columns`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use arrow_array::{RecordBatch, UInt32Array};
use tokio::sync::Mutex;

use crate::bucketing::buckets_of_rows;
use crate::builder::{BatchOptions, LogBatchBuilder, WriterStamp};
use crate::change_type::ChangeType;
use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::client::table::Table;
use crate::client::writer::init_writer;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::{Acks, TablePath, UpsertRequest};

/// What a row of a write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// Insert the row, or merge it into the stored row of its key.
    Upsert,
    /// Delete the row of its key (only the key columns are read).
    Delete,
}

/// How an [`UpsertWriter`] writes.
#[derive(Clone, Debug)]
pub struct UpsertOptions {
    /// When the node answers.
    pub acks: Acks,
    /// Partial update: the names of the columns written (must include the primary key);
    /// the others keep their stored values. `None`: every column.
    pub target_columns: Option<Vec<String>>,
    /// Use a writer id so retried requests are applied once.
    pub idempotent: bool,
    /// Attempts after the first for retriable failures.
    pub retries: u32,
    /// Wait before the first retry (doubling after each).
    pub retry_backoff: Duration,
}

impl Default for UpsertOptions {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            target_columns: None,
            idempotent: true,
            retries: 5,
            retry_backoff: Duration::from_millis(50),
        }
    }
}

/// What a write changed in one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpsertAck {
    /// The bucket.
    pub bucket: u32,
    /// Offset of the first changelog record it caused.
    pub changelog_offset: u64,
    /// Changelog records it caused (0: no row changed).
    pub changelog_record_count: u32,
}

/// Per-bucket sending state: its writer sequence and its builder.
struct BucketState {
    sequence: i32,
    builder: Option<LogBatchBuilder>,
}

/// Upserts and deletes rows of one primary-key table.
pub struct UpsertWriter {
    connection: Connection,
    table: Table,
    options: UpsertOptions,
    target_columns: Option<Vec<u32>>,
    bucket_key_columns: Vec<usize>,
    addresses: Mutex<Vec<SocketAddr>>,
    writer_id: Mutex<i64>,
    buckets: Vec<Mutex<BucketState>>,
}

impl std::fmt::Debug for UpsertWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpsertWriter").field("table", &self.table.info.path).finish_non_exhaustive()
    }
}

impl UpsertWriter {
    /// A writer for the primary-key table at `path`.
    pub async fn new(
        connection: &Connection,
        path: &TablePath,
        options: UpsertOptions,
    ) -> Result<Self, ClientError> {
        let table = Table::open(connection, path).await?;
        if table.info.definition.primary_key.is_empty() {
            return Err(ClientError::Invalid(format!(
                "table {path} has no primary key: append to it with an AppendWriter"
            )));
        }
        let target_columns =
            options.target_columns.as_deref().map(|names| table.column_set(names)).transpose()?;
        let writer_id = if options.idempotent { init_writer(connection).await? } else { -1 };
        let buckets = (0..table.bucket_count())
            .map(|_| Mutex::new(BucketState { sequence: 0, builder: None }))
            .collect();
        Ok(Self {
            connection: connection.clone(),
            bucket_key_columns: table.bucket_key_columns()?,
            addresses: Mutex::new(table.bucket_addresses.clone()),
            table,
            options,
            target_columns,
            writer_id: Mutex::new(writer_id),
            buckets,
        })
    }

    /// The table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Upserts every row of `rows`.
    pub async fn upsert(&self, rows: &RecordBatch) -> Result<Vec<UpsertAck>, ClientError> {
        self.write(rows, None).await
    }

    /// Deletes the rows with the keys of `rows` (a batch of the table's schema; columns
    /// other than the key may be null where the schema allows).
    pub async fn delete(&self, rows: &RecordBatch) -> Result<Vec<UpsertAck>, ClientError> {
        let kinds = vec![RowKind::Delete; rows.num_rows()];
        self.write(rows, Some(&kinds)).await
    }

    /// Writes `rows`, each doing what `kinds` says (all upserts if `None`). Returns once
    /// every bucket answered (per `acks`): what changed, per bucket touched.
    pub async fn write(
        &self,
        rows: &RecordBatch,
        kinds: Option<&[RowKind]>,
    ) -> Result<Vec<UpsertAck>, ClientError> {
        if kinds.is_some_and(|kinds| kinds.len() != rows.num_rows()) {
            return Err(ClientError::Invalid(format!(
                "{} row kinds for {} rows",
                kinds.map_or(0, <[RowKind]>::len),
                rows.num_rows()
            )));
        }
        if rows.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let buckets = buckets_of_rows(rows, &self.bucket_key_columns, self.table.bucket_count())
            .map_err(ClientError::Invalid)?;
        let mut by_bucket: HashMap<u32, Vec<u32>> = HashMap::new();
        for (row, bucket) in buckets.iter().enumerate() {
            by_bucket.entry(*bucket).or_default().push(row as u32);
        }
        let sends = by_bucket.into_iter().map(|(bucket, indexes)| async move {
            let part = if indexes.len() == rows.num_rows() {
                rows.clone()
            } else {
                let indexes = UInt32Array::from(indexes.clone());
                arrow_select::take::take_record_batch(rows, &indexes)
                    .map_err(|error| ClientError::Batch(error.to_string()))?
            };
            let change_types: Option<Vec<ChangeType>> = kinds.map(|kinds| {
                indexes
                    .iter()
                    .map(|row| match kinds[*row as usize] {
                        RowKind::Upsert => ChangeType::UpdateAfter,
                        RowKind::Delete => ChangeType::Delete,
                    })
                    .collect()
            });
            self.send(bucket, &part, change_types.as_deref()).await
        });
        let mut acks = futures_util::future::try_join_all(sends).await?;
        acks.sort_by_key(|ack| ack.bucket);
        Ok(acks)
    }

    async fn send(
        &self,
        bucket: u32,
        rows: &RecordBatch,
        change_types: Option<&[ChangeType]>,
    ) -> Result<UpsertAck, ClientError> {
        let mut state = self.buckets[bucket as usize].lock().await;
        if state.builder.is_none() {
            let builder = LogBatchBuilder::new(self.table.schema.clone(), BatchOptions::default())
                .map_err(|error| ClientError::Batch(error.to_string()))?;
            state.builder = Some(builder);
        }
        let writer_id = *self.writer_id.lock().await;
        let stamp = if writer_id >= 0 {
            WriterStamp { writer_id, batch_sequence: state.sequence }
        } else {
            WriterStamp::NONE
        };
        let Some(builder) = state.builder.as_mut() else {
            return Err(ClientError::Batch("no batch builder".into()));
        };
        let mut bytes = builder
            .build(rows, change_types, stamp)
            .map_err(|error| ClientError::Batch(error.to_string()))?;
        let mut result = self.send_with_retries(bucket, &bytes).await;
        if writer_id >= 0
            && matches!(&result, Err(error) if error.is(ErrorCode::OutOfOrderSequence))
        {
            // The node lost track of this writer's sequence (it restarted after a write that
            // changed nothing, which it notes in memory only): the request was not applied.
            // Continue under a new writer id.
            let new_id = init_writer(&self.connection).await?;
            *self.writer_id.lock().await = new_id;
            state.sequence = 0;
            let stamp = WriterStamp { writer_id: new_id, batch_sequence: 0 };
            let Some(builder) = state.builder.as_mut() else {
                return Err(ClientError::Batch("no batch builder".into()));
            };
            bytes = builder
                .build(rows, change_types, stamp)
                .map_err(|error| ClientError::Batch(error.to_string()))?;
            result = self.send_with_retries(bucket, &bytes).await;
        }
        match result {
            Ok(ack) => {
                state.sequence = if state.sequence == i32::MAX { 0 } else { state.sequence + 1 };
                Ok(ack)
            }
            Err(error) => {
                // Maybe applied: continuing with this sequence could make the node take the
                // next request for a retry of this one. Start over with a new writer id.
                if writer_id >= 0 && !error.surely_not_done() {
                    if let Ok(new_id) = init_writer(&self.connection).await {
                        *self.writer_id.lock().await = new_id;
                        for other in &self.buckets {
                            if let Ok(mut other) = other.try_lock() {
                                other.sequence = 0;
                            }
                        }
                        state.sequence = 0;
                    }
                }
                Err(error)
            }
        }
    }

    async fn send_with_retries(&self, bucket: u32, bytes: &[u8]) -> Result<UpsertAck, ClientError> {
        let request = UpsertRequest {
            table_id: self.table.info.table_id,
            bucket,
            acks: self.options.acks,
            timeout_ms: self.connection.config().request_timeout.as_millis() as u32,
            target_columns: self.target_columns.clone(),
        };
        let mut backoff = self.options.retry_backoff;
        let mut attempt = 0;
        loop {
            let address = self.addresses.lock().await[bucket as usize];
            match self.connection.call(address, &request, bytes, Duration::ZERO).await {
                Ok(answer) => {
                    return Ok(UpsertAck {
                        bucket,
                        changelog_offset: answer.body.changelog_offset,
                        changelog_record_count: answer.body.changelog_record_count,
                    })
                }
                Err(error) if error.is_retriable() && attempt < self.options.retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    if matches!(error, ClientError::Transport { .. } | ClientError::Timeout { .. })
                    {
                        if let Ok(addresses) = self.table.locate_again(&self.connection).await {
                            *self.addresses.lock().await = addresses;
                        }
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}
