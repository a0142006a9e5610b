//! `ufer-node`: the storage node process (binary `ufer`).
//!
//! One glommio executor per shard, each with its own QUIC endpoint (its own UDP port), its
//! buckets' log tablets, and channels to the other shards; shard 0 also owns the table
//! catalog; a tiering thread copies lake-enabled tables into Apache Iceberg. The CLI (`main.rs`) starts a node (`ufer serve`) or talks to one through the
//! client SDK.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod disk_check;
pub mod error;
pub mod lake;
pub mod limits;
pub mod metrics;
pub mod metrics_http;
pub mod node;
pub mod routing;
pub mod server;
pub mod shard;
#[cfg(feature = "sql")]
pub mod sql;
pub mod table;
pub mod tls;

pub use config::NodeConfig;
pub use error::NodeError;
pub use node::{start, NodeHandle};
