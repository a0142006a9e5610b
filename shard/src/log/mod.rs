//! The log tablet of a bucket: segments of batches on direct I/O, sparse offset and time
//! indexes, recovery, retention.

pub mod config;
pub mod error;
pub mod index;
pub mod recovery;
pub mod scan;
pub mod segment;
pub mod tablet;
pub mod tail_cache;
pub mod writers;
