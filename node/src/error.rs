//! Errors of the node: [`NodeError`] for starting and stopping, and the mapping of storage
//! errors to protocol error codes.

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
        AppendError::Fatal(_) => ErrorCode::StorageError,
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
