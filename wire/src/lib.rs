//! `ufer-wire`: the bytes ufer speaks.
//!
//! One batch format serves disk, wire and client memory: a `LogBatch` is a fixed 56-byte
//! little-endian header, optional per-column statistics, an optional change-type vector, and
//! one Arrow IPC record-batch message whose schema is known by id (`docs/format.md` has every
//! byte). This crate builds batches from Arrow data, validates them (length, magic, CRC32C,
//! structure against a schema), decodes them without copying column buffers, and projects
//! columns out of them by rewriting only Arrow metadata.
//!
//! The codec is pure: no runtime, no syscalls, no clocks; the client SDK (`client`, behind
//! the `client` feature) is the one part that does I/O. Invariant: every function that
//! reads bytes from outside returns a typed error for any input and never panics.

pub mod batch;
pub mod batch_schema;
pub mod bucketing;
pub mod builder;
pub mod change_type;
#[cfg(feature = "client")]
pub mod client;
pub mod column_layout;
pub mod decode;
pub mod decompress;
pub mod error;
pub mod header;
pub mod ipc_message;
pub mod limits;
pub mod projection;
pub mod protocol;
pub mod schema_text;
pub mod statistics;

pub use batch::{check_header, BatchLayout, LogBatch};
pub use batch_schema::BatchSchema;
pub use builder::{BatchOptions, LogBatchBuilder, WriterStamp};
pub use change_type::ChangeType;
pub use decode::{aligned_copy, BatchDecoder, DecodedBatch};
pub use error::{BatchError, BuildError, UnsupportedTypeError};
pub use header::{
    Attributes, BatchHeader, Compression, BATCH_ALIGNMENT_BYTES, BATCH_HEADER_SIZE_BYTES,
};
pub use projection::{project, project_batch, required_prefix_size, ProjectedBatch, Projection};
