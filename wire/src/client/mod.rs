//! The client SDK (feature `client`, tokio + quinn): connect to a node, manage tables,
//! append rows, scan logs; upsert, look up and snapshot primary-key tables. Shard-aware: data requests go straight to the shard that owns
//! each bucket; catalog changes go to shard 0.

pub mod admin;
pub mod connection;
pub mod error;
pub mod lookup;
pub mod scanner;
pub mod snapshot;
pub mod table;
pub mod upsert;
pub mod writer;

pub use admin::Admin;
pub use connection::{Answer, ClientConfig, Connection, Trust};
pub use error::ClientError;
pub use lookup::{LookupRows, Lookuper};
pub use scanner::{LogScanner, ScanOptions, ScannedRows, StartFrom};
pub use snapshot::{BucketSnapshot, SnapshotScanner};
pub use table::Table;
pub use upsert::{RowKind, UpsertAck, UpsertOptions, UpsertWriter};
pub use writer::{AppendAck, AppendHandle, AppendOptions, AppendWriter};
