//! Typed errors of the log tablet, one enum per operation; each variant says what the
//! caller can do.

use std::path::PathBuf;

use ufer_io::{IoError, SegmentFile};
use ufer_wire::BatchError;

/// An append was refused or failed. Nothing of the batch is in the log unless the variant
/// says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The batch is malformed or does not match the schema: reject the request.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// An idempotent writer's batch does not follow its previous one (a batch in between
    /// was lost, or this one is too old to answer): the writer must start over.
    #[error("writer {writer_id} sent batch sequence {got}, the next one must be {expected}")]
    OutOfOrderSequence {
        /// The writer.
        writer_id: i64,
        /// The sequence the bucket expects next.
        expected: i32,
        /// The sequence sent.
        got: i32,
    },
    /// The batch is larger than the table allows: split it.
    #[error("batch of {size} bytes is over the table's limit of {max} bytes")]
    TooLarge {
        /// Batch size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// The disk is full: the append (and any other not yet durable) was discarded; the
    /// tablet still serves reads and accepts appends once space returns.
    #[error("disk full: {0}")]
    DiskFull(IoError),
    /// Another I/O error; the append was discarded. Retrying may succeed.
    #[error("append failed: {0}")]
    Io(IoError),
    /// The tablet's durable state is unknown (failed fdatasync): the node must stop.
    #[error("log is unusable: {0}")]
    Fatal(IoError),
}

impl From<IoError> for AppendError {
    fn from(error: IoError) -> Self {
        match error {
            IoError::DiskFull { .. } => AppendError::DiskFull(error),
            IoError::Fatal { .. } => AppendError::Fatal(error),
            _ => AppendError::Io(error),
        }
    }
}

/// A read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The offset is not in the log: before the earliest retained offset or past the high
    /// watermark. Start again from one of the bounds.
    #[error("offset {requested} is out of range: the log holds {earliest}..{high_watermark}")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: u64,
        /// The earliest offset still in the log.
        earliest: u64,
        /// The high watermark: offsets below it are readable.
        high_watermark: u64,
    },
    /// Stored data failed its checks: a damaged sealed segment (or an index that lies).
    /// Reads of other offsets still work; the bucket needs repair from a replica.
    #[error("corrupt data in {path} at position {position}: {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Position of the bad batch.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// The projection does not fit the stored batch (wrong schema).
    #[error("projection failed: {0}")]
    Projection(BatchError),
    /// An I/O error; retrying may succeed.
    #[error("read failed: {0}")]
    Io(#[from] IoError),
}

impl ReadError {
    /// Stored data in `file` failed its checks at `position`.
    pub(crate) fn corrupt(file: &SegmentFile, position: u64, reason: String) -> Self {
        ReadError::Corrupt { path: file.path().to_path_buf(), position, reason }
    }

    /// A failed projection of a stored batch: the projection's fault, or else the batch's
    /// (`corrupt` says where).
    pub(crate) fn from_projection(error: BatchError, corrupt: impl FnOnce(String) -> Self) -> Self {
        match error {
            BatchError::SchemaMismatch(_) | BatchError::BadProjection { .. } => {
                ReadError::Projection(error)
            }
            other => corrupt(other.to_string()),
        }
    }
}

/// The tablet could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The configuration is inconsistent.
    #[error("invalid log configuration: {0}")]
    Config(String),
    /// The files cannot be made into a log (e.g. overlapping segments).
    #[error("log in {path} cannot be recovered: {reason}")]
    Corrupt {
        /// The bucket directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An I/O error.
    #[error("opening the log failed: {0}")]
    Io(#[from] IoError),
}

/// Deleting old segments failed part-way; what was deleted stays deleted.
#[derive(Debug, thiserror::Error)]
#[error("retention failed: {0}")]
pub struct RetentionError(#[from] pub IoError);
