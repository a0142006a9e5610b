//! [`ClientError`]: what a client call can fail with.

use crate::protocol::codec::ProtocolError;
use crate::protocol::error_code::{ErrorBody, ErrorCode};

/// A client call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error.
    #[error("{0}")]
    Server(ErrorBody),
    /// The connection or stream failed; the request may or may not have been carried out.
    #[error("transport error talking to {address}: {reason}")]
    Transport {
        /// The node address.
        address: String,
        /// What happened.
        reason: String,
    },
    /// No answer within the request timeout; the request may or may not have been carried out.
    #[error("no answer from {address} within {timeout_ms} ms")]
    Timeout {
        /// The node address.
        address: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The answer could not be decoded.
    #[error("malformed answer: {0}")]
    Protocol(#[from] ProtocolError),
    /// Bad arguments or configuration (names, schemas, certificates).
    #[error("{0}")]
    Invalid(String),
    /// A batch could not be built or decoded.
    #[error("batch error: {0}")]
    Batch(String),
}

impl ClientError {
    /// True if the node answered with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        matches!(self, ClientError::Server(error) if error.code == code)
    }

    /// True if trying again may succeed (retriable server errors, lost connections, timeouts).
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Server(error) => error.code.is_retriable(),
            ClientError::Transport { .. } | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// True if the request surely was not carried out (the node said so; not after a
    /// failed fdatasync, whose batch may be stored).
    pub fn surely_not_done(&self) -> bool {
        matches!(self, ClientError::Server(error) if error.code != ErrorCode::StorageFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fdatasync_is_retriable_but_never_surely_not_done() {
        let answer = |code| ClientError::Server(ErrorBody::new(code, "x"));
        let failed = answer(ErrorCode::StorageFailed);
        assert!(failed.is_retriable(), "an idempotent writer resends it");
        assert!(!failed.surely_not_done(), "the batch may be stored: its sequence is spent");
        assert!(answer(ErrorCode::StorageError).surely_not_done(), "a failed write stored nothing");
        assert!(answer(ErrorCode::DiskFull).surely_not_done());
    }
}
