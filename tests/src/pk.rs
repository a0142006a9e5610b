//! A primary-key bucket as the crash test and its child open it: schema `id BIGINT NOT NULL,
//! v BIGINT`, key `id`, last row wins, tiny KV limits so flushes and compactions happen
//! between kills.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use ufer_shard::kv::KvConfig;
use ufer_shard::pk::options::PkTableOptions;
use ufer_shard::pk_bucket::{PkBucket, PkBucketEnv, PkBucketError, PkBucketSpec};
use ufer_shard::{Clock, LogConfig};
use ufer_wire::schema_text::parse_schema;
use ufer_wire::{BatchOptions, BatchSchema, ChangeType, LogBatchBuilder, WriterStamp};

/// Concurrent writing tasks in the child.
pub const TASK_COUNT: u64 = 4;
/// Keys each task writes alone (task `t` owns keys `HOT_KEY_COUNT + k * TASK_COUNT + t`).
pub const KEYS_PER_TASK: u64 = 64;
/// Keys every task writes (`0..HOT_KEY_COUNT`).
pub const HOT_KEY_COUNT: u64 = 4;

/// The table's schema.
pub fn schema() -> BatchSchema {
    let arrow = parse_schema("id BIGINT NOT NULL, v BIGINT").expect("schema");
    BatchSchema::new(1, Arc::new(arrow)).expect("schema")
}

/// Opens (and recovers) the bucket in `dir`.
pub async fn open_bucket(dir: &Path, clock: Rc<dyn Clock>) -> Result<Rc<PkBucket>, PkBucketError> {
    let schema = schema();
    let options = PkTableOptions::from_definition(schema.arrow(), &["id".into()], &[], &[])
        .map_err(PkBucketError::Definition)?;
    let spec = PkBucketSpec { schema, options, bucket: 0, bucket_count: 1 };
    let mut log = LogConfig::test_min();
    log.segment_size_max_bytes = 32 * 1024;
    let env = PkBucketEnv { clock, background: None, block_cache: None };
    PkBucket::open(&dir.join("log"), &dir.join("kv"), spec, log, KvConfig::test_min(), env).await
}

/// A write request's batch: upsert `key` with `value`, or delete it when `value` is
/// negative.
pub fn write_batch(key: i64, value: i64) -> Vec<u8> {
    write_batch_of(key, value, WriterStamp::NONE)
}

/// [`write_batch`] from an idempotent writer.
pub fn write_batch_of(key: i64, value: i64, stamp: WriterStamp) -> Vec<u8> {
    let schema = schema();
    let rows = RecordBatch::try_new(
        schema.arrow().clone(),
        vec![
            Arc::new(Int64Array::from(vec![key])),
            Arc::new(Int64Array::from(vec![if value < 0 { None } else { Some(value) }])),
        ],
    )
    .expect("rows");
    let change = if value < 0 { ChangeType::Delete } else { ChangeType::UpdateAfter };
    LogBatchBuilder::new(schema, BatchOptions::default())
        .expect("builder")
        .build(&rows, Some(&[change]), stamp)
        .expect("batch")
}
