//! Primary-key tables, the pure part: options and merge engines, the memcomparable key
//! encoding, the stored row encoding, and changelog generation. No I/O: the write path reads
//! stored rows from the KV, runs [`changelog::ChangelogGenerator`], appends the changelog to
//! the log and applies the mutations to the KV.

pub mod changelog;
pub mod error;
pub mod key;
mod merge;
pub mod options;
pub mod row;
pub mod value;
