//! The records section of a write request (produce, upsert, lookup keys): exactly one
//! batch, parsed and checked before anything is written.

use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::{BatchError, LogBatch};

/// The error code and message for a batch that fails its checks.
pub fn batch_error(error: BatchError) -> ErrorBody {
    let code = match error {
        BatchError::SchemaMismatch(_) => ErrorCode::SchemaMismatch,
        BatchError::BadLength { length, .. }
            if length > u64::from(ufer_wire::limits::BATCH_SIZE_MAX_BYTES) =>
        {
            ErrorCode::BatchTooLarge
        }
        _ => ErrorCode::InvalidBatch,
    };
    ErrorBody::new(code, error.to_string())
}

/// Checks that `records` is exactly one well-formed batch (`what` names the request in the
/// message) and returns it.
pub fn one_batch<'a>(records: &'a [u8], what: &str) -> Result<LogBatch<'a>, ErrorBody> {
    if records.is_empty() {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("{what} must carry a batch"),
        ));
    }
    let batch = LogBatch::parse(records).map_err(batch_error)?;
    if batch.len() != records.len() {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!(
                "{what} carries exactly one batch: {} bytes follow the {}-byte batch",
                records.len() - batch.len(),
                batch.len()
            ),
        ));
    }
    Ok(batch)
}
