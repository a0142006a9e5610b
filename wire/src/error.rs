//! Typed errors of the batch format: [`BatchError`] for bytes that do not form a valid
//! `LogBatch` (or do not match the schema they claim), [`BuildError`] for Arrow data that
//! cannot be turned into one.
//!
//! Every variant names what was wrong with numbers a reader can check; none is a bug of
//! ours (those are assertions). The node maps them to wire error codes.

use arrow_schema::ArrowError;

/// The bytes are not a valid `LogBatch`, or not one of the expected schema.
///
/// Received from a client: reject the request. Read from disk: the data is corrupt.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the structure needs.
    #[error("batch truncated: {what} needs {needed} bytes, only {available} available")]
    Truncated {
        /// The part that did not fit.
        what: &'static str,
        /// Bytes it needs from the start of the batch.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The magic byte is not a known format version.
    #[error("batch magic is {found:#04x}, expected {expected:#04x}")]
    BadMagic {
        /// The byte found.
        found: u8,
        /// The byte of the format this build reads.
        expected: u8,
    },
    /// The length field is impossible (too small, not aligned, or over the limit).
    #[error("batch length {length} is invalid: {reason}")]
    BadLength {
        /// The length field.
        length: u64,
        /// Why it is impossible.
        reason: &'static str,
    },
    /// The stored CRC does not match the bytes: corruption in transit or on disk.
    #[error("batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// A header field other than the length is invalid.
    #[error("batch header field {field} is invalid: {reason}")]
    BadHeader {
        /// The field's name.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A change-type byte is not one of the five defined values.
    #[error("change type byte {value} of record {index} is invalid (0..=4 expected)")]
    BadChangeType {
        /// Record index in the batch.
        index: usize,
        /// The byte.
        value: u8,
    },
    /// The statistics block is malformed.
    #[error("batch statistics are malformed: {0}")]
    BadStatistics(String),
    /// The Arrow IPC message (prefix or flatbuffer metadata) is malformed.
    #[error("batch Arrow message is malformed: {0}")]
    BadMessage(String),
    /// The Arrow message does not have the shape of the schema it was decoded with.
    #[error("batch does not match schema: {0}")]
    SchemaMismatch(String),
    /// The schema holds a type the batch format does not carry.
    #[error(transparent)]
    Unsupported(#[from] UnsupportedTypeError),
    /// A projection names a column the schema does not have.
    #[error("projection column {column} is out of range: the schema has {field_count} columns")]
    BadProjection {
        /// The column index asked for.
        column: usize,
        /// Columns in the schema.
        field_count: usize,
    },
    /// Arrow refused the column data while decoding (e.g. offsets out of range).
    #[error("batch column data is invalid: {0}")]
    Arrow(#[from] ArrowError),
}

/// A schema holds a data type the `LogBatch` format cannot carry: dictionary encoding (which
/// needs dictionary messages), unions, run-end encoding and list views.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {field:?} has type {data_type}, which ufer batches do not support")]
pub struct UnsupportedTypeError {
    /// The field (path for nested fields, e.g. `a.b`).
    pub field: String,
    /// The data type, as Arrow prints it.
    pub data_type: String,
}

/// Arrow data could not be turned into a `LogBatch`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The record batch's schema differs from the one the builder was made for.
    #[error("record batch does not match the table schema: {0}")]
    SchemaMismatch(String),
    /// A type the batch format does not carry.
    #[error(transparent)]
    Unsupported(#[from] UnsupportedTypeError),
    /// Change types were given with the wrong count.
    #[error("{given} change types given for {records} records")]
    ChangeTypeCount {
        /// Change types given.
        given: usize,
        /// Records in the batch.
        records: usize,
    },
    /// More records than one batch may hold.
    #[error("batch has {records} records, the limit is {max}")]
    TooManyRecords {
        /// Records in the batch.
        records: usize,
        /// [`crate::limits::BATCH_RECORD_COUNT_MAX`].
        max: u32,
    },
    /// The encoded batch is larger than the format allows.
    #[error("encoded batch is {size} bytes, the limit is {max} bytes")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// [`crate::limits::BATCH_SIZE_MAX_BYTES`].
        max: u32,
    },
    /// Statistics were asked for a column that cannot have them.
    #[error("statistics asked for column {column}, which {reason}")]
    Statistics {
        /// Column index.
        column: usize,
        /// Why not.
        reason: String,
    },
    /// No record batches were given.
    #[error("no record batches to build from")]
    Empty,
    /// Arrow failed to encode the data.
    #[error("Arrow encoding failed: {0}")]
    Arrow(#[from] ArrowError),
}
