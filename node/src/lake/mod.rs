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
//! - [`metrics`]: commits, rows, errors and per-table lag.
//!
//! A table's Iceberg schema and the conversion of its batches are part of the table model
//! (`crate::table::LakeSchema`); where the lake is, of the node's configuration
//! (`crate::config::LakeConfig`).
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
pub mod tiering;

pub use link::{serve_tier_requests, tier_channel, TierRead, TierRequest};
pub use metrics::{LakeMetrics, TableLag};
pub use tiering::LakeService;

/// The snapshot property holding every bucket's tiered offset: `bucket:offset` pairs,
/// comma-separated, e.g. `0:1200,1:1188` (records below the offset are in the table).
pub const OFFSETS_PROPERTY: &str = "ufer.tiered-offsets";

/// The table property naming the ufer table a lake table belongs to (a ufer table
/// dropped and created again under the same name gets a new lake table).
pub const TABLE_ID_PROPERTY: &str = "ufer.table-id";

/// Most bytes of batches one read from a shard returns.
pub const READ_SIZE_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of batches one round tiers from one bucket (a round is one commit; a bucket
/// further behind catches up over several rounds, started back to back).
pub const ROUND_BUCKET_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Data files roll over at this size.
pub const DATA_FILE_SIZE_MAX_BYTES: usize = 256 * 1024 * 1024;

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
}
