//! The log tablet of a bucket: segments of batches on direct I/O, sparse offset and time
//! indexes, recovery, retention.
//!
//! [`tablet::LogTablet`] is one type whose methods live beside the concern they serve:
//! `append` and `roll` write, `retention` trims, `read` (planned by `read_plan`, projecting
//! through `projection`, positioned by `segment_view`) and `offsets` read; `state` is what
//! they share and `recovery` builds.

pub mod append;
pub mod config;
pub mod damage;
pub mod error;
pub mod index;
pub mod offsets;
mod projection;
pub mod read;
mod read_plan;
pub mod recovery;
pub mod retention;
mod roll;
pub mod scan;
pub mod segment;
mod segment_view;
mod state;
pub mod tablet;
pub mod tail_cache;
pub mod writers;
