//! [`SnapshotScanner`]: reads the current rows of a primary-key table, bucket by bucket, each
//! bucket as a consistent snapshot with the changelog offset it is consistent with.
//!
//! Stream-table duality: take the snapshot of a bucket, then follow its changelog with a
//! `LogScanner` from [`BucketSnapshot::log_offset`], and every change after the snapshot is
//! seen exactly once.

use std::time::Duration;

use arrow_array::RecordBatch;

use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::client::lookup::decode_rows;
use crate::client::table::Table;
use crate::decode::BatchDecoder;
use crate::protocol::messages::{SnapshotScanRequest, TablePath};

/// Bytes of rows asked for per request.
pub const SNAPSHOT_PART_SIZE_BYTES: u32 = 4 * 1024 * 1024;

/// The rows of one bucket at one changelog offset.
#[derive(Clone, Debug)]
pub struct BucketSnapshot {
    /// The bucket.
    pub bucket: u32,
    /// Every change before this changelog offset is in `rows`, none after.
    pub log_offset: u64,
    /// The rows, in key order.
    pub rows: Vec<RecordBatch>,
}

/// Reads snapshots of the buckets of one primary-key table.
#[derive(Debug)]
pub struct SnapshotScanner {
    connection: Connection,
    table: Table,
}

impl SnapshotScanner {
    /// A scanner of the primary-key table at `path`.
    pub async fn new(connection: &Connection, path: &TablePath) -> Result<Self, ClientError> {
        let table = Table::open(connection, path).await?;
        if table.info.definition.primary_key.is_empty() {
            return Err(ClientError::Invalid(format!(
                "table {path} has no primary key: read it with a LogScanner"
            )));
        }
        Ok(Self { connection: connection.clone(), table })
    }

    /// The table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// A snapshot of `bucket`, read in parts of about [`SNAPSHOT_PART_SIZE_BYTES`].
    pub async fn bucket(&self, bucket: u32) -> Result<BucketSnapshot, ClientError> {
        if bucket >= self.table.bucket_count() {
            return Err(ClientError::Invalid(format!(
                "table {} has {} buckets, not bucket {bucket}",
                self.table.info.path,
                self.table.bucket_count()
            )));
        }
        let address = self.table.bucket_addresses[bucket as usize];
        let decoder = BatchDecoder::new(self.table.schema.clone());
        let mut request = SnapshotScanRequest {
            table_id: self.table.info.table_id,
            bucket,
            scan_id: 0,
            max_bytes: SNAPSHOT_PART_SIZE_BYTES,
            projection: None,
        };
        let mut rows = Vec::new();
        loop {
            let answer = self.connection.call(address, &request, &[], Duration::ZERO).await?;
            if let Some(part) = decode_rows(&decoder, &answer.records)? {
                rows.push(part);
            }
            if !answer.body.more {
                return Ok(BucketSnapshot { bucket, log_offset: answer.body.log_offset, rows });
            }
            request.scan_id = answer.body.scan_id;
        }
    }

    /// Snapshots of every bucket, in bucket order.
    pub async fn all(&self) -> Result<Vec<BucketSnapshot>, ClientError> {
        let scans = (0..self.table.bucket_count()).map(|bucket| self.bucket(bucket));
        futures_util::future::try_join_all(scans).await
    }
}
