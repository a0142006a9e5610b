//! The client SDK (feature `client`, tokio + quinn): connect to a node, manage tables,
//! append rows, scan logs. Shard-aware: data requests go straight to the shard that owns
//! each bucket; catalog changes go to shard 0.

pub mod admin;
pub mod connection;
pub mod error;
pub mod scanner;
pub mod table;
pub mod writer;

pub use admin::Admin;
pub use connection::{Answer, ClientConfig, Connection, Trust};
pub use error::ClientError;
pub use scanner::{LogScanner, ScanOptions, ScannedRows, StartFrom};
pub use table::Table;
pub use writer::{AppendAck, AppendHandle, AppendOptions, AppendWriter};
