//! [`LogScanner`]: reads a log table's buckets from chosen positions, fetching from each
//! bucket's owning shard directly, with the projection done on the node; batches are
//! decoded in place from the answer's aligned records section.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;

use crate::batch::LogBatch;
use crate::change_type::ChangeType;
use crate::client::connection::{Answer, Connection};
use crate::client::error::ClientError;
use crate::client::table::Table;
use crate::decode::BatchDecoder;
use crate::projection::Projection;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::{
    FetchBucket, FetchRequest, FetchResponse, ListOffsetsRequest, OffsetQuery, TablePath,
};

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// The earliest offset still stored.
    Earliest,
    /// The high watermark: only what is appended from now on.
    Latest,
    /// A given offset.
    Offset(u64),
    /// The first offset committed at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// How a scanner fetches.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Most bytes of batches per answer.
    pub max_bytes: u32,
    /// Most bytes per bucket per answer.
    pub bucket_max_bytes: u32,
    /// How long a poll waits on the node for data.
    pub max_wait: Duration,
    /// Columns to read, by name, in the order wanted; `None` for all.
    pub columns: Option<Vec<String>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            bucket_max_bytes: 4 * 1024 * 1024,
            max_wait: Duration::from_millis(500),
            columns: None,
        }
    }
}

/// Rows read from one bucket.
#[derive(Clone, Debug)]
pub struct ScannedRows {
    /// Bucket.
    pub bucket: u32,
    /// Offset of the first row.
    pub base_offset: u64,
    /// The rows (only the chosen columns).
    pub rows: RecordBatch,
    /// Change type of each row (`+A` for log tables).
    pub change_types: Vec<ChangeType>,
}

/// Reads buckets of one table.
#[derive(Debug)]
pub struct LogScanner {
    connection: Connection,
    table: Table,
    options: ScanOptions,
    positions: BTreeMap<u32, u64>,
    /// Schema column indexes fetched (ascending), if projected.
    projection: Option<Vec<u32>>,
    /// Order of the fetched columns the caller wants, if different.
    output_order: Option<Vec<usize>>,
    decoder: BatchDecoder,
    fetched_bytes: u64,
    /// At most one fetch per shard endpoint, running on its own between polls.
    in_flight: Vec<InFlight>,
    /// A shard did not answer: ask the node where the buckets are before the next fetch.
    locate_again: bool,
}

/// A fetch sent to one shard endpoint and not yet consumed.
#[derive(Debug)]
struct InFlight {
    address: SocketAddr,
    /// The offset asked for, per bucket: an answer for a bucket whose position has moved
    /// since (a new subscription) is dropped.
    offsets: BTreeMap<u32, u64>,
    task: tokio::task::JoinHandle<Result<Answer<FetchResponse>, ClientError>>,
}

impl Drop for LogScanner {
    fn drop(&mut self) {
        for fetch in &self.in_flight {
            fetch.task.abort();
        }
    }
}

impl LogScanner {
    /// A scanner of the table at `path` (subscribe to buckets before polling).
    pub async fn new(
        connection: Connection,
        path: &TablePath,
        options: ScanOptions,
    ) -> Result<Self, ClientError> {
        let table = Table::open(&connection, path).await?;
        let (projection, output_order, decoder) = match &options.columns {
            None => (None, None, BatchDecoder::new(table.schema.clone())),
            Some(names) => {
                let indexes = table.column_indexes(names)?;
                let projection = Projection::new(table.schema.clone(), &indexes)
                    .map_err(|error| ClientError::Invalid(error.to_string()))?;
                let order = indexes
                    .iter()
                    .map(|index| {
                        projection.columns().iter().position(|column| column == index).unwrap_or(0)
                    })
                    .collect::<Vec<_>>();
                let identity = order.iter().enumerate().all(|(position, index)| position == *index)
                    && order.len() == projection.columns().len();
                let columns = projection.columns().iter().map(|column| *column as u32).collect();
                (
                    Some(columns),
                    (!identity).then_some(order),
                    BatchDecoder::new(projection.projected_schema().clone()),
                )
            }
        };
        Ok(Self {
            connection,
            table,
            options,
            positions: BTreeMap::new(),
            projection,
            output_order,
            decoder,
            fetched_bytes: 0,
            in_flight: Vec::new(),
            locate_again: false,
        })
    }

    /// The table read.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Bytes of batches received so far (after projection on the node).
    pub fn fetched_bytes(&self) -> u64 {
        self.fetched_bytes
    }

    /// The next offset to read of each subscribed bucket.
    pub fn positions(&self) -> &BTreeMap<u32, u64> {
        &self.positions
    }

    /// Subscribes every bucket from `from`.
    pub async fn subscribe_all(&mut self, from: StartFrom) -> Result<(), ClientError> {
        let buckets: Vec<u32> = (0..self.table.bucket_count()).collect();
        self.subscribe(&buckets, from).await
    }

    /// Subscribes `buckets` from `from` (resolving positions on the nodes).
    pub async fn subscribe(&mut self, buckets: &[u32], from: StartFrom) -> Result<(), ClientError> {
        for &bucket in buckets {
            if bucket >= self.table.bucket_count() {
                return Err(ClientError::Invalid(format!(
                    "table {} has no bucket {bucket}",
                    self.table.info.path
                )));
            }
        }
        let query = match from {
            StartFrom::Offset(offset) => {
                for &bucket in buckets {
                    self.positions.insert(bucket, offset);
                }
                return Ok(());
            }
            StartFrom::Earliest => OffsetQuery::Earliest,
            StartFrom::Latest => OffsetQuery::Latest,
            StartFrom::Timestamp(timestamp) => OffsetQuery::Timestamp(timestamp),
        };
        for (address, group) in self.group_by_address(buckets.iter().copied()) {
            let request =
                ListOffsetsRequest { table_id: self.table.info.table_id, query, buckets: group };
            let answer = self.connection.call(address, &request, &[], Duration::ZERO).await?;
            for offset in answer.body.offsets {
                if let Some(error) = offset.error {
                    return Err(ClientError::Server(error));
                }
                self.positions.insert(offset.bucket, offset.offset);
            }
        }
        Ok(())
    }

    fn group_by_address(
        &self,
        buckets: impl Iterator<Item = u32>,
    ) -> BTreeMap<SocketAddr, Vec<u32>> {
        let mut groups: BTreeMap<SocketAddr, Vec<u32>> = BTreeMap::new();
        for bucket in buckets {
            groups.entry(self.table.bucket_addresses[bucket as usize]).or_default().push(bucket);
        }
        groups
    }

    /// Returns what is new in the subscribed buckets, and moves past it.
    ///
    /// Each shard endpoint that owns subscribed buckets always has one fetch running (a
    /// long poll of up to `max_wait` on the node when it has nothing new): `poll` waits for
    /// the first answer, takes every answer that is in, and sends the next fetch to those
    /// endpoints before returning — so one quiet shard never delays rows from another, and
    /// the next answer travels while the caller works on this one. An empty result means
    /// a long poll ended with nothing new. An answer that failed is dropped and its
    /// buckets fetched again (the error is returned when nothing else came in); positions
    /// only move past rows returned. Cancel-safe: a dropped `poll` loses nothing.
    pub async fn poll(&mut self) -> Result<Vec<ScannedRows>, ClientError> {
        if self.locate_again {
            if let Ok(addresses) = self.table.locate_again(&self.connection).await {
                self.table.bucket_addresses = addresses;
                // Fetches still running go to where the buckets were.
                self.in_flight.retain(|fetch| {
                    let moved = fetch.offsets.keys().any(|bucket| {
                        self.table.bucket_addresses[*bucket as usize] != fetch.address
                    });
                    if moved {
                        fetch.task.abort();
                    }
                    !moved
                });
            }
            self.locate_again = false;
        }
        self.start_fetches();
        if self.in_flight.is_empty() {
            return Ok(Vec::new());
        }
        let (output, first) = {
            let tasks = self.in_flight.iter_mut().map(|fetch| &mut fetch.task);
            let (output, first, _) = futures_util::future::select_all(tasks).await;
            (output, first)
        };
        let mut done = vec![(self.in_flight.swap_remove(first).offsets, output)];
        let mut index = 0;
        while index < self.in_flight.len() {
            if self.in_flight[index].task.is_finished() {
                let fetch = self.in_flight.swap_remove(index);
                done.push((fetch.offsets, fetch.task.await));
            } else {
                index += 1;
            }
        }
        let mut scanned = Vec::new();
        let mut failure = None;
        for (offsets, output) in done {
            let answer = match output {
                Ok(Ok(answer)) => answer,
                Ok(Err(error)) => {
                    failure.get_or_insert(error);
                    continue;
                }
                Err(error) => {
                    failure.get_or_insert(ClientError::Invalid(format!("a fetch failed: {error}")));
                    continue;
                }
            };
            if let Err(error) = self.take_answer(&offsets, answer, &mut scanned) {
                failure.get_or_insert(error);
            }
        }
        if matches!(failure, Some(ClientError::Transport { .. } | ClientError::Timeout { .. })) {
            // A shard did not answer: the node may have restarted with its buckets
            // elsewhere. The next poll asks where they are before fetching again (not this
            // one: what it took must reach the caller even if it is dropped while waiting).
            self.locate_again = true;
        }
        self.start_fetches();
        match failure {
            Some(error) if scanned.is_empty() => Err(error),
            _ => Ok(scanned),
        }
    }

    /// Sends a fetch to every endpoint with subscribed buckets and none running.
    fn start_fetches(&mut self) {
        let groups = self.group_by_address(self.positions.keys().copied());
        for (address, group) in groups {
            if self.in_flight.iter().any(|fetch| fetch.address == address) {
                continue;
            }
            let offsets: BTreeMap<u32, u64> =
                group.iter().map(|bucket| (*bucket, self.positions[bucket])).collect();
            let request = FetchRequest {
                table_id: self.table.info.table_id,
                max_wait_ms: self.options.max_wait.as_millis() as u32,
                min_bytes: 1,
                max_bytes: self.options.max_bytes,
                projection: self.projection.clone(),
                buckets: offsets
                    .iter()
                    .map(|(bucket, offset)| FetchBucket {
                        bucket: *bucket,
                        offset: *offset,
                        max_bytes: self.options.bucket_max_bytes,
                    })
                    .collect(),
            };
            let connection = self.connection.clone();
            let wait = self.options.max_wait;
            let task =
                tokio::spawn(async move { connection.call(address, &request, &[], wait).await });
            self.in_flight.push(InFlight { address, offsets, task });
        }
    }

    /// Decodes one answer into `scanned`, for buckets still at the offsets it was asked for.
    fn take_answer(
        &mut self,
        offsets: &BTreeMap<u32, u64>,
        answer: Answer<FetchResponse>,
        scanned: &mut Vec<ScannedRows>,
    ) -> Result<(), ClientError> {
        self.fetched_bytes += answer.records.len() as u64;
        let mut at = 0usize;
        for bucket in answer.body.buckets {
            let records = answer.records.slice_with_length(at, bucket.records_length as usize);
            at += bucket.records_length as usize;
            let current = self.positions.get(&bucket.bucket).copied();
            if current.is_none() || current != offsets.get(&bucket.bucket).copied() {
                continue;
            }
            if let Some(error) = bucket.error {
                if error.code == ErrorCode::OffsetOutOfRange
                    && current.is_some_and(|position| position < bucket.log_start_offset)
                {
                    // Retention removed what was next: continue from the earliest kept.
                    self.positions.insert(bucket.bucket, bucket.log_start_offset);
                    continue;
                }
                return Err(ClientError::Server(error));
            }
            self.decode_bucket(bucket.bucket, &records, scanned)?;
        }
        Ok(())
    }

    fn decode_bucket(
        &mut self,
        bucket: u32,
        records: &Buffer,
        out: &mut Vec<ScannedRows>,
    ) -> Result<(), ClientError> {
        let mut at = 0usize;
        while at < records.len() {
            let length = LogBatch::parse(&records.as_slice()[at..])
                .map_err(|error| ClientError::Batch(error.to_string()))?
                .len();
            let decoded = self
                .decoder
                .decode(&records.slice_with_length(at, length))
                .map_err(|error| ClientError::Batch(error.to_string()))?;
            at += length;
            let position = self.positions.get(&bucket).copied().unwrap_or(0);
            let base_offset = decoded.base_offset();
            let rows_total = decoded.record_batch.num_rows();
            let end_offset = base_offset + (rows_total as u64).max(1);
            if end_offset <= position {
                continue;
            }
            let skip = position.saturating_sub(base_offset) as usize;
            let change_types: Vec<ChangeType> =
                (skip..rows_total).map(|row| decoded.change_type(row)).collect();
            let mut rows = decoded.record_batch.slice(skip, rows_total - skip);
            if let Some(order) = &self.output_order {
                rows =
                    rows.project(order).map_err(|error| ClientError::Batch(error.to_string()))?;
            }
            self.positions.insert(bucket, end_offset);
            if rows.num_rows() > 0 {
                out.push(ScannedRows {
                    bucket,
                    base_offset: base_offset + skip as u64,
                    rows,
                    change_types,
                });
            }
        }
        Ok(())
    }
}
