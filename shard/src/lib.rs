//! `ufer-shard`: everything one core owns.
//!
//! A shard owns the buckets that hash to it; nothing here is shared or locked across cores
//! (state is `Rc`/`RefCell`, never `Mutex`). So far it holds the log tablet of a bucket:
//! segments of `LogBatch`es written with direct I/O, made durable by group commit, indexed
//! sparsely by offset and time, recovered at open and trimmed by retention. `kv` is the KV
//! tablet of a primary-key bucket: an LSM of sorted files over direct I/O whose write-ahead
//! log is the table's changelog. `pk` holds the pure logic of primary-key tables: key and row
//! encodings, merge engines and changelog generation; `pk_bucket` joins the two with the log
//! into the write, lookup and snapshot paths of one bucket.

pub mod clock;
pub mod kv;
pub mod log;
pub mod pk;
pub mod pk_bucket;

pub use clock::{Clock, ManualClock, MonotonicTime, SystemClock};
pub use kv::{BlockCache, KvConfig, KvError, KvStats, KvTablet, KvView};
pub use log::append::{Appended, DurableTarget};
pub use log::config::LogConfig;
pub use log::damage::DamagedRange;
pub use log::error::{AppendError, OpenError, ReadError, RetentionError};
pub use log::offsets::OffsetSpec;
pub use log::read::{LogRead, ReadChunk, ReadRequest};
pub use log::retention::RetentionOutcome;
pub use log::tablet::LogTablet;
pub use pk::changelog::{ChangelogGenerator, ChangelogOutput, Mutation, RowOp, WriteRequest};
pub use pk::error::PkError;
pub use pk::key::KeyEncoder;
pub use pk::options::{
    is_pk_property, AggFunction, ChangelogImage, DeleteBehavior, MergeEngine, PkTableOptions,
    PK_PROPERTY_NAMES,
};
pub use pk::row::RowCodec;
