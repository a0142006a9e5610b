//! [`PkBucketError`]: why a primary-key bucket refused to open, write or read.

use ufer_wire::{BatchError, BuildError};

use crate::kv::KvError;
use crate::log::error::{AppendError, OpenError, ReadError};
use crate::pk::error::PkError;
use crate::pk_bucket::limits::LOOKUP_KEY_COUNT_MAX;

/// What went wrong in a primary-key bucket; each variant says what the caller can do.
#[derive(Debug, thiserror::Error)]
pub enum PkBucketError {
    /// The table definition cannot make a primary-key bucket (a bug: the catalog checks it).
    #[error("primary-key table definition: {0}")]
    Definition(String),
    /// The changelog could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The KV failed (I/O, corruption, a failed fsync).
    #[error("KV: {0}")]
    Kv(#[from] KvError),
    /// The changelog append failed; nothing of the write was applied.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// The changelog could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The request's batch is malformed or of another schema.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A row breaks a rule of the table (null key, missing version, delete disabled, ...).
    #[error(transparent)]
    Row(#[from] PkError),
    /// Building the changelog batch failed.
    #[error("building the changelog: {0}")]
    Build(#[from] BuildError),
    /// Projecting rows failed (a column index out of range).
    #[error("projection: {0}")]
    Projection(#[from] arrow_schema::ArrowError),
    /// A request marked a row `-U`, which only changelogs hold.
    #[error("row {row} is marked -U (update before); a write marks rows +I, +U or -D")]
    BadChangeType {
        /// The row.
        row: usize,
    },
    /// A row's bucket key hashes to another bucket.
    #[error("row {row} belongs to bucket {bucket}, not to bucket {this_bucket}")]
    WrongBucket {
        /// The row.
        row: usize,
        /// Where its bucket key hashes.
        bucket: u32,
        /// This bucket.
        this_bucket: u32,
    },
    /// An idempotent writer skipped a sequence number.
    #[error("writer {writer_id} sent batch {got}, expected {expected}")]
    OutOfOrderSequence {
        /// The writer.
        writer_id: i64,
        /// The sequence expected.
        expected: i32,
        /// The sequence sent.
        got: i32,
    },
    /// A prefix lookup on a table whose bucket key is not the leading primary-key columns.
    #[error(
        "prefix lookup needs a bucket key made of the leading primary-key columns, in key order"
    )]
    PrefixLookupUnsupported,
    /// An encoded key is larger than the KV stores.
    #[error("a key takes {size} bytes encoded; at most {max}")]
    KeyTooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A row is larger than the KV stores.
    #[error("a row takes {size} bytes encoded; at most {max}")]
    RowTooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A lookup sent more keys than one request may.
    #[error("{count} keys in one lookup; at most {max}", max = LOOKUP_KEY_COUNT_MAX)]
    TooManyKeys {
        /// Keys sent.
        count: usize,
    },
    /// Too many snapshot scans are open on the bucket.
    #[error("{max} snapshot scans are open on this bucket; finish one or wait for one to expire")]
    TooManyScans {
        /// The limit.
        max: usize,
    },
    /// The snapshot scan is unknown (finished, expired, or the node restarted).
    #[error("snapshot scan {0} is unknown: it finished, expired, or the node restarted")]
    ScanNotFound(u64),
    /// The changelog the KV snapshot needs was deleted (the KV cannot be rebuilt).
    #[error(
        "the KV snapshot covers the changelog up to offset {snapshot}, but the changelog starts \
         at {log_start_offset}: the bucket cannot be rebuilt"
    )]
    ChangelogGone {
        /// Offset the snapshot covers.
        snapshot: u64,
        /// Where the changelog starts.
        log_start_offset: u64,
    },
    /// The KV snapshot covers more changelog than the log holds (the log lost data).
    #[error(
        "the KV snapshot covers the changelog up to offset {snapshot}, past its high \
         watermark {high_watermark}"
    )]
    KvAheadOfChangelog {
        /// Offset the snapshot covers.
        snapshot: u64,
        /// The changelog's high watermark.
        high_watermark: u64,
    },
    /// A KV file failed its checks and the changelog cannot rebuild it (retention deleted
    /// the changelog before the KV's snapshot): the bucket refuses every request and keeps
    /// its files as they are, for a repair (a backup, or a replica once there are replicas).
    #[error(
        "the KV of this bucket is corrupt ({reason}) and the changelog cannot rebuild it: it \
         starts at offset {log_start_offset}; the files are kept for a repair"
    )]
    KvUnrepairable {
        /// What failed its checks.
        reason: String,
        /// Where the changelog starts.
        log_start_offset: u64,
    },
    /// A background flush or compaction failed; the bucket refuses work until reopened.
    #[error("background KV work failed: {0}")]
    Maintenance(String),
    /// The bucket is closing.
    #[error("the bucket is closing")]
    Closed,
    /// The bucket could not be closed because a request still holds it.
    #[error("the bucket is still in use")]
    Busy,
}
