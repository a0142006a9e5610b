//! Limits of the node's request handling, each with its unit.

use ufer_wire::protocol::frame::REQUEST_BODY_SIZE_MAX_BYTES;

/// Concurrent bidirectional streams (requests) per connection.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 1024;

/// Messages waiting in each direction between two shards.
pub const SHARD_CHANNEL_CAPACITY: usize = 1024;

/// Bytes of a request body read (and counted against the in-flight budget) at a time.
pub const REQUEST_READ_CHUNK_BYTES: usize = 256 * 1024;

/// Buckets per table.
pub const BUCKET_COUNT_MAX: u32 = 1024;

/// Longest database or table name.
pub const NAME_SIZE_MAX_BYTES: usize = 255;

/// Largest request body the node reads.
pub const fn request_body_size_max() -> usize {
    REQUEST_BODY_SIZE_MAX_BYTES as usize
}

/// Most buckets one fetch or offset request may name.
pub const REQUEST_BUCKET_COUNT_MAX: usize = 4096;

/// Writer ids reserved per catalog write (so InitWriter rarely touches the disk).
pub const WRITER_ID_BLOCK: i64 = 1024;
