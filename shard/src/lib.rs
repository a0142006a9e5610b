//! `ufer-shard`: everything one core owns.
//!
//! A shard owns the buckets that hash to it; nothing here is shared or locked across cores
//! (state is `Rc`/`RefCell`, never `Mutex`). So far it holds the log tablet of a bucket:
//! segments of `LogBatch`es written with direct I/O, made durable by group commit, indexed
//! sparsely by offset and time, recovered at open and trimmed by retention. `pk` holds the pure
//! logic of primary-key tables: key and row encodings, merge engines and changelog generation.

#![forbid(unsafe_code)]

pub mod clock;
pub mod log;
pub mod pk;

pub use clock::{Clock, ManualClock, SystemClock};
pub use log::config::LogConfig;
pub use log::error::{AppendError, OpenError, ReadError, RetentionError};
pub use log::tablet::{Appended, LogRead, LogTablet, OffsetSpec, ReadChunk, RetentionOutcome};
pub use pk::changelog::{ChangelogGenerator, ChangelogOutput, Mutation, RowOp, WriteRequest};
pub use pk::error::PkError;
pub use pk::key::KeyEncoder;
pub use pk::options::{
    is_pk_property, AggFunction, ChangelogImage, DeleteBehavior, MergeEngine, PkTableOptions,
    PK_PROPERTY_NAMES,
};
pub use pk::row::RowCodec;
