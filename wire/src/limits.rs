//! Hard limits of the batch format, each with its unit in its name.
//!
//! These bound what any peer may send; tables and nodes may configure lower limits. They are
//! protocol constants: raising one is a format change.

/// Largest batch, header included.
pub const BATCH_SIZE_MAX_BYTES: u32 = 64 * 1024 * 1024;

/// Most records in one batch.
pub const BATCH_RECORD_COUNT_MAX: u32 = 4 * 1024 * 1024;

/// Largest statistics block.
pub const STATISTICS_SIZE_MAX_BYTES: u32 = 64 * 1024;

/// Longest min or max value kept in statistics; longer string/binary bounds are left out.
pub const STATISTICS_VALUE_SIZE_MAX_BYTES: usize = 128;

/// Largest Arrow flatbuffer metadata of one batch (nodes and buffers of every column).
pub const IPC_METADATA_SIZE_MAX_BYTES: u32 = 1024 * 1024;

/// Most flatbuffer tables the metadata verifier will visit, and deepest nesting: bounds the
/// work a malicious metadata blob can cause.
pub const IPC_METADATA_TABLE_COUNT_MAX: usize = 100_000;
/// See [`IPC_METADATA_TABLE_COUNT_MAX`].
pub const IPC_METADATA_DEPTH_MAX: usize = 64;

/// Largest total of decompressed column buffers in one batch: a compressed batch cannot
/// make the reader allocate more than this.
pub const BATCH_DECOMPRESSED_SIZE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Most values in one field node (a column, or the child of a nested column): the bits in
/// the largest decompressed batch.
pub const NODE_LENGTH_MAX: u64 = BATCH_DECOMPRESSED_SIZE_MAX_BYTES * 8;

/// Deepest nesting of types (list of struct of list …) a schema may have.
pub const TYPE_NESTING_DEPTH_MAX: usize = 32;

const _: () = assert!(STATISTICS_SIZE_MAX_BYTES < BATCH_SIZE_MAX_BYTES);
const _: () = assert!(IPC_METADATA_SIZE_MAX_BYTES < BATCH_SIZE_MAX_BYTES);
const _: () = assert!(BATCH_DECOMPRESSED_SIZE_MAX_BYTES >= BATCH_SIZE_MAX_BYTES as u64);
