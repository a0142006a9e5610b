//! Lake tiering: lake-enabled tables' records copied, exactly once, into Apache Iceberg
//! (format v2) tables that any batch engine reads (DESIGN.md "Lake tiering").
//!
//! What lives where:
//! - [`tiering`]: the tiering thread — a background glommio executor of its own (pinned
//!   only when configured) with a tokio runtime for iceberg-rust's writer and catalog. It
//!   reads each bucket's durable records through the shard that owns it, writes Parquet
//!   (zstd) data files and commits them with a fast append whose snapshot properties hold
//!   every bucket's tiered offset.
//! - [`link`]: the requests between the tiering thread and the shards.
//! - [`schema`]: a table's Iceberg schema and the conversion of its batches.
//! - [`metrics`]: commits, rows, errors and per-table lag.
//!
//! Invariants: the lake holds a bucket's records below its tiered offset, each once; the
//! tiered offsets are only ever read from the lake's current snapshot (never kept locally),
//! so a crash anywhere — before the files are written, between writing and committing,
//! after committing — loses and duplicates nothing: uncommitted files are never
//! referenced, and their names (bucket, first offset, a random UUID) are never reused.
//! Retention of a lake-enabled table deletes only segments entirely below the tiered
//! offset the shard was last told (nothing before it is told).

pub mod link;
pub mod metrics;
pub mod schema;
pub mod tiering;

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use link::{serve_tier_requests, tier_channel, TierRead, TierRequest};
pub use metrics::{LakeMetrics, TableLag};
pub use schema::LakeSchema;
pub use tiering::LakeService;

use crate::catalog::Catalog;

/// The snapshot property holding every bucket's tiered offset: `bucket:offset` pairs,
/// comma-separated, e.g. `0:1200,1:1188` (records below the offset are in the table).
pub const OFFSETS_PROPERTY: &str = "ufer.tiered-offsets";

/// The table property naming the ufer table a lake table belongs to (a ufer table
/// dropped and created again under the same name gets a new lake table).
pub const TABLE_ID_PROPERTY: &str = "ufer.table-id";

/// Default catalog name (pyiceberg and other readers must use the same one).
pub const CATALOG_NAME_DEFAULT: &str = "ufer";

/// Most bytes of batches one read from a shard returns.
pub const READ_SIZE_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of batches one round tiers from one bucket (a round is one commit; a bucket
/// further behind catches up over several rounds, started back to back).
pub const ROUND_BUCKET_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Data files roll over at this size.
pub const DATA_FILE_SIZE_MAX_BYTES: usize = 256 * 1024 * 1024;

/// How the node reaches its lake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeConfig {
    /// Iceberg SQL catalog URI (`sqlite:…`); `None`: `<data_dir>/lake/catalog.db`.
    pub catalog_uri: Option<String>,
    /// Warehouse location (a local directory, `file:///…` or a path); `None`:
    /// `<data_dir>/lake/warehouse`.
    pub warehouse: Option<String>,
    /// The catalog's name (readers must use the same).
    pub catalog_name: String,
    /// Pin the tiering thread to this CPU; `None`: unpinned, so it never holds a shard's core.
    pub core: Option<usize>,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            catalog_uri: None,
            warehouse: None,
            catalog_name: CATALOG_NAME_DEFAULT.into(),
            core: None,
        }
    }
}

impl LakeConfig {
    /// The catalog URI for a node with data in `data_dir`.
    pub fn catalog_uri(&self, data_dir: &Path) -> String {
        self.catalog_uri.clone().unwrap_or_else(|| {
            format!("sqlite:{}?mode=rwc", data_dir.join("lake").join("catalog.db").display())
        })
    }

    /// The warehouse location for a node with data in `data_dir`.
    pub fn warehouse(&self, data_dir: &Path) -> String {
        self.warehouse.clone().unwrap_or_else(|| {
            format!("file://{}", data_dir.join("lake").join("warehouse").display())
        })
    }
}

/// The catalog as shard 0 last installed it, for the tiering thread.
#[derive(Clone, Debug)]
pub struct SharedCatalog(Arc<Mutex<Arc<Catalog>>>);

impl SharedCatalog {
    /// Starts with `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self(Arc::new(Mutex::new(catalog)))
    }

    /// Replaces it.
    pub fn set(&self, catalog: Arc<Catalog>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = catalog;
    }

    /// The current one.
    pub fn get(&self) -> Arc<Catalog> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Encodes tiered offsets for [`OFFSETS_PROPERTY`].
pub fn encode_offsets(offsets: &std::collections::BTreeMap<u32, u64>) -> String {
    offsets
        .iter()
        .map(|(bucket, offset)| format!("{bucket}:{offset}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes [`OFFSETS_PROPERTY`]; `None` if it is not well formed.
pub fn decode_offsets(text: &str) -> Option<std::collections::BTreeMap<u32, u64>> {
    if text.is_empty() {
        return Some(std::collections::BTreeMap::new());
    }
    text.split(',')
        .map(|pair| {
            let (bucket, offset) = pair.split_once(':')?;
            Some((bucket.parse().ok()?, offset.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_and_bad_text_is_refused() {
        let offsets = std::collections::BTreeMap::from([(0, 12), (3, u64::MAX)]);
        assert_eq!(decode_offsets(&encode_offsets(&offsets)), Some(offsets));
        assert_eq!(decode_offsets(""), Some(Default::default()));
        assert_eq!(decode_offsets("0:1,x"), None);
        assert_eq!(decode_offsets("0:-1"), None);
    }

    #[test]
    fn the_embedded_default_lives_in_the_data_dir() {
        let config = LakeConfig::default();
        let dir = Path::new("/data");
        assert_eq!(config.catalog_uri(dir), "sqlite:/data/lake/catalog.db?mode=rwc");
        assert_eq!(config.warehouse(dir), "file:///data/lake/warehouse");
    }
}
