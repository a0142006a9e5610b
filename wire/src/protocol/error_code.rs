//! [`ErrorCode`]: every error a node can answer with, and the body that carries it.
//!
//! Codes are part of the protocol and never change meaning. Each says whether retrying the
//! same request can succeed.

use crate::protocol::codec::{Decoder, Encoder, ProtocolError};

/// What went wrong with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// A failure the node did not expect; see the message.
    Internal = 1,
    /// The frame or body could not be decoded.
    MalformedRequest = 2,
    /// The API key is unknown.
    UnsupportedApi = 3,
    /// The API version is not one this node speaks.
    UnsupportedVersion = 4,
    /// The frame is larger than the node accepts.
    FrameTooLarge = 5,
    /// The request is well formed but makes no sense (e.g. zero buckets).
    InvalidRequest = 6,
    /// No such database.
    DatabaseNotFound = 10,
    /// The database exists.
    DatabaseAlreadyExists = 11,
    /// The database still has tables.
    DatabaseNotEmpty = 12,
    /// No such table.
    TableNotFound = 13,
    /// The table exists.
    TableAlreadyExists = 14,
    /// The table definition is invalid (schema, keys, buckets, properties).
    InvalidTableDefinition = 15,
    /// No such bucket in the table.
    BucketNotFound = 16,
    /// A batch is malformed or fails its CRC.
    InvalidBatch = 20,
    /// A batch's schema id or shape does not match the table.
    SchemaMismatch = 21,
    /// A batch or request is over a size limit.
    BatchTooLarge = 22,
    /// A writer's batch sequence skipped ahead (a batch was lost in between).
    OutOfOrderSequence = 23,
    /// The writer id was not given out by this node.
    UnknownWriter = 24,
    /// A row breaks a rule of the table: a null or missing key, a versioned row without its
    /// version, a delete where the table disables deletes.
    InvalidRow = 25,
    /// The API needs a primary-key table and the table has none (or the reverse).
    WrongTableKind = 26,
    /// The offset is before the log start or after the high watermark.
    OffsetOutOfRange = 30,
    /// Stored data failed its checks.
    CorruptData = 31,
    /// The snapshot scan is unknown: it ended, expired after being idle, or the node
    /// restarted. Start a new one.
    ScanNotFound = 32,
    /// The disk is full: the batch was not stored.
    DiskFull = 40,
    /// A write failed; the batch was not stored.
    StorageError = 41,
    /// The node is out of a bounded resource (memory in flight); retry later.
    ResourceExhausted = 42,
    /// The request did not finish in time.
    Timeout = 43,
    /// The node is shutting down.
    ShuttingDown = 44,
    /// An fdatasync failed: the batch may or may not be stored (the device's state is
    /// unknown), and the bucket takes no more writes until the node restarts and recovers
    /// it. Resend only from an idempotent writer, whose resend the recovered node
    /// recognizes; a writer must not take the batch's sequence number for another batch.
    StorageFailed = 45,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 29] = [
        ErrorCode::Internal,
        ErrorCode::MalformedRequest,
        ErrorCode::UnsupportedApi,
        ErrorCode::UnsupportedVersion,
        ErrorCode::FrameTooLarge,
        ErrorCode::InvalidRequest,
        ErrorCode::DatabaseNotFound,
        ErrorCode::DatabaseAlreadyExists,
        ErrorCode::DatabaseNotEmpty,
        ErrorCode::TableNotFound,
        ErrorCode::TableAlreadyExists,
        ErrorCode::InvalidTableDefinition,
        ErrorCode::BucketNotFound,
        ErrorCode::InvalidBatch,
        ErrorCode::SchemaMismatch,
        ErrorCode::BatchTooLarge,
        ErrorCode::OutOfOrderSequence,
        ErrorCode::UnknownWriter,
        ErrorCode::InvalidRow,
        ErrorCode::WrongTableKind,
        ErrorCode::OffsetOutOfRange,
        ErrorCode::CorruptData,
        ErrorCode::ScanNotFound,
        ErrorCode::DiskFull,
        ErrorCode::StorageError,
        ErrorCode::ResourceExhausted,
        ErrorCode::Timeout,
        ErrorCode::ShuttingDown,
        ErrorCode::StorageFailed,
    ];

    /// The code with this number, if known.
    pub fn from_u16(value: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|code| *code as u16 == value)
    }

    /// True if the same request may succeed later.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::DiskFull
                | ErrorCode::StorageError
                | ErrorCode::ResourceExhausted
                | ErrorCode::Timeout
                | ErrorCode::ShuttingDown
                | ErrorCode::StorageFailed
        )
    }

    /// A short upper-case name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::MalformedRequest => "MALFORMED_REQUEST",
            ErrorCode::UnsupportedApi => "UNSUPPORTED_API",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::FrameTooLarge => "FRAME_TOO_LARGE",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::DatabaseNotFound => "DATABASE_NOT_FOUND",
            ErrorCode::DatabaseAlreadyExists => "DATABASE_ALREADY_EXISTS",
            ErrorCode::DatabaseNotEmpty => "DATABASE_NOT_EMPTY",
            ErrorCode::TableNotFound => "TABLE_NOT_FOUND",
            ErrorCode::TableAlreadyExists => "TABLE_ALREADY_EXISTS",
            ErrorCode::InvalidTableDefinition => "INVALID_TABLE_DEFINITION",
            ErrorCode::BucketNotFound => "BUCKET_NOT_FOUND",
            ErrorCode::InvalidBatch => "INVALID_BATCH",
            ErrorCode::SchemaMismatch => "SCHEMA_MISMATCH",
            ErrorCode::BatchTooLarge => "BATCH_TOO_LARGE",
            ErrorCode::OutOfOrderSequence => "OUT_OF_ORDER_SEQUENCE",
            ErrorCode::UnknownWriter => "UNKNOWN_WRITER",
            ErrorCode::InvalidRow => "INVALID_ROW",
            ErrorCode::WrongTableKind => "WRONG_TABLE_KIND",
            ErrorCode::ScanNotFound => "SCAN_NOT_FOUND",
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::CorruptData => "CORRUPT_DATA",
            ErrorCode::DiskFull => "DISK_FULL",
            ErrorCode::StorageError => "STORAGE_ERROR",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::StorageFailed => "STORAGE_FAILED",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of an error response: a code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong.
    pub code: ErrorCode,
    /// Details: names, numbers, limits.
    pub message: String,
}

/// Longest error message sent (longer ones are cut at a character boundary).
pub const ERROR_MESSAGE_SIZE_MAX_BYTES: usize = 4096;

/// `message` cut to at most [`ERROR_MESSAGE_SIZE_MAX_BYTES`] at a character boundary.
fn cut(message: &str) -> &str {
    let mut end = message.len().min(ERROR_MESSAGE_SIZE_MAX_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

impl ErrorBody {
    /// An error with a message (cut to [`ERROR_MESSAGE_SIZE_MAX_BYTES`]).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        let length = cut(&message).len();
        message.truncate(length);
        Self { code, message }
    }

    /// Encodes the body (the message cut to [`ERROR_MESSAGE_SIZE_MAX_BYTES`], whoever
    /// built it).
    pub fn encode(&self, encoder: &mut Encoder) {
        encoder.u16(self.code as u16);
        encoder.string(cut(&self.message));
    }

    /// Decodes the body; an unknown code becomes [`ErrorCode::Internal`] with the number
    /// in the message, so a newer node's errors still reach the user. The message is cut
    /// like [`ErrorBody::new`] cuts it, so a decoded error can always be sent on.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        let raw = decoder.u16("error code")?;
        let message = decoder.string("error message")?;
        Ok(match ErrorCode::from_u16(raw) {
            Some(code) => Self::new(code, message),
            None => Self::new(ErrorCode::Internal, format!("error {raw}: {message}")),
        })
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_long_messages_are_cut() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u16(code as u16), Some(code));
            let body = ErrorBody::new(code, "é".repeat(3000));
            assert!(body.message.len() <= ERROR_MESSAGE_SIZE_MAX_BYTES);
            let mut encoder = Encoder::default();
            body.encode(&mut encoder);
            let bytes = encoder.finish();
            assert_eq!(ErrorBody::decode(&mut Decoder::new(&bytes)).unwrap(), body);
        }
        // A long message from elsewhere (a newer node, a hand-built body) is cut, never a
        // panic when it is sent on.
        let mut encoder = Encoder::default();
        encoder.u16(999);
        encoder.string(&"x".repeat(65_000));
        let bytes = encoder.finish();
        let decoded = ErrorBody::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(decoded.code, ErrorCode::Internal);
        assert!(decoded.message.starts_with("error 999: xxx"));
        assert_eq!(decoded.message.len(), ERROR_MESSAGE_SIZE_MAX_BYTES);
        let built = ErrorBody { code: ErrorCode::Timeout, message: "y".repeat(70_000) };
        let mut encoder = Encoder::default();
        built.encode(&mut encoder);
        let bytes = encoder.finish();
        let decoded = ErrorBody::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(decoded.message.len(), ERROR_MESSAGE_SIZE_MAX_BYTES);
        let names: std::collections::HashSet<&str> =
            ErrorCode::ALL.iter().map(|code| code.name()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
