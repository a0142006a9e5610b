//! Errors of the node: [`NodeError`] for starting and stopping, and the mapping of storage
//! errors to protocol error codes.

use ufer_shard::kv::KvError;
use ufer_shard::pk_bucket::PkBucketError;
use ufer_shard::{AppendError, OpenError, ReadError};
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::BatchError;

/// The node could not start, or failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Configuration, data directory, certificate or sockets.
    #[error("cannot start the node: {0}")]
    Startup(String),
    /// A shard thread stopped with an error.
    #[error("shard {shard} failed: {reason}")]
    Shard {
        /// Which.
        shard: usize,
        /// Why.
        reason: String,
    },
}

/// The protocol error for a failed append.
pub fn append_error(error: &AppendError) -> ErrorBody {
    let code = match error {
        AppendError::InvalidBatch(BatchError::SchemaMismatch(_)) => ErrorCode::SchemaMismatch,
        AppendError::InvalidBatch(_) => ErrorCode::InvalidBatch,
        AppendError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequence,
        AppendError::TooLarge { .. } => ErrorCode::BatchTooLarge,
        AppendError::DiskFull(_) => ErrorCode::DiskFull,
        AppendError::Io(_) => ErrorCode::StorageError,
        AppendError::Fatal(_) => ErrorCode::StorageFailed,
    };
    ErrorBody::new(code, error.to_string())
}

/// The protocol error for a failed read.
pub fn read_error(error: &ReadError) -> ErrorBody {
    let code = match error {
        ReadError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        ReadError::Corrupt { .. } => ErrorCode::CorruptData,
        ReadError::Projection(_) => ErrorCode::InvalidRequest,
        ReadError::Io(_) => ErrorCode::StorageError,
    };
    ErrorBody::new(code, error.to_string())
}

/// The protocol error for a bucket that could not be opened.
pub fn open_error(error: &OpenError) -> ErrorBody {
    ErrorBody::new(ErrorCode::StorageError, error.to_string())
}

/// The protocol error for a failed primary-key write, lookup or scan.
pub fn pk_error(error: &PkBucketError) -> ErrorBody {
    let code = match error {
        PkBucketError::Append(append) => return append_error(append),
        PkBucketError::Read(read) => return read_error(read),
        PkBucketError::Open(open) => return open_error(open),
        PkBucketError::Batch(BatchError::SchemaMismatch(_)) => ErrorCode::SchemaMismatch,
        PkBucketError::Batch(_) => ErrorCode::InvalidBatch,
        PkBucketError::Row(_)
        | PkBucketError::BadChangeType { .. }
        | PkBucketError::WrongBucket { .. } => ErrorCode::InvalidRow,
        PkBucketError::KeyTooLarge { .. } | PkBucketError::RowTooLarge { .. } => {
            ErrorCode::BatchTooLarge
        }
        PkBucketError::Projection(_)
        | PkBucketError::TooManyKeys { .. }
        | PkBucketError::PrefixLookupUnsupported => ErrorCode::InvalidRequest,
        PkBucketError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequence,
        PkBucketError::TooManyScans { .. } => ErrorCode::ResourceExhausted,
        PkBucketError::ScanNotFound(_) => ErrorCode::ScanNotFound,
        PkBucketError::Kv(KvError::Corrupt { .. })
        | PkBucketError::KvUnrepairable { .. }
        | PkBucketError::ChangelogGone { .. }
        | PkBucketError::KvAheadOfChangelog { .. } => ErrorCode::CorruptData,
        PkBucketError::Kv(kv) if kv.is_disk_full() => ErrorCode::DiskFull,
        PkBucketError::Kv(_) | PkBucketError::Maintenance(_) => ErrorCode::StorageError,
        PkBucketError::Closed => ErrorCode::ShuttingDown,
        PkBucketError::Definition(_) | PkBucketError::Build(_) | PkBucketError::Busy => {
            ErrorCode::Internal
        }
    };
    ErrorBody::new(code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ufer_io::IoError;

    #[test]
    fn a_failed_fdatasync_says_the_batch_may_be_stored_and_a_failed_write_that_it_is_not() {
        let fatal = AppendError::Fatal(IoError::Fatal { path: "/x".into(), reason: "EIO".into() });
        assert_eq!(append_error(&fatal).code, ErrorCode::StorageFailed);
        let io = std::io::Error::other("EIO");
        let failed_write =
            AppendError::Io(IoError::Io { op: "writing", path: "/x".into(), source: io });
        assert_eq!(append_error(&failed_write).code, ErrorCode::StorageError);
        let pk = PkBucketError::Append(fatal);
        assert_eq!(pk_error(&pk).code, ErrorCode::StorageFailed);
    }
}
