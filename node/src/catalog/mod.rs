//! The table catalog: databases and tables, persisted crash-safely in the data directory
//! and loaded at start.
//!
//! Shard 0 owns the catalog and is the only one to change it (DDL requests are forwarded
//! there); after each change it writes the file ([`file`]: replaced atomically) and sends
//! a copy to every other shard, which keep it for routing and validating requests, and
//! hands it to the tiering thread ([`SharedCatalog`]).
//!
//! - [`state`]: the [`Catalog`] itself, its changes and its encoding.
//! - [`file`]: where the file lives, reading it at start, replacing it.
//! - [`shared`]: the copy the tiering thread reads.

pub mod file;
pub mod shared;
pub mod state;

pub use file::{CATALOG_DIR_NAME, CATALOG_FILE_NAME};
pub use shared::SharedCatalog;
pub use state::{check_name, Catalog, DEFAULT_DATABASE};
