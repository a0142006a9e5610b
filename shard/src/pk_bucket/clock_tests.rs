//! Time-driven behaviour of a bucket on a manual clock: an idle snapshot scan expires, and a
//! quiet bucket's KV snapshot becomes due, exactly when the clock passes the limit — and not
//! while it stands still, however long the test takes.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch};
use ufer_wire::schema_text::parse_schema;
use ufer_wire::{BatchOptions, BatchSchema, LogBatchBuilder, WriterStamp};

use crate::clock::{Clock, ManualClock};
use crate::kv::KvConfig;
use crate::log::config::LogConfig;
use crate::pk::options::PkTableOptions;
use crate::pk_bucket::{
    PkBucket, PkBucketEnv, PkBucketError, PkBucketSpec, ScanCursor, WriteColumns,
    SNAPSHOT_SCAN_IDLE_MAX,
};

fn run<F, Fut>(body: F)
where
    F: FnOnce(std::path::PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    ufer_io::executor::run_on_new_thread(move || body(path))
        .unwrap_or_else(|error| panic!("{error}"));
}

fn schema() -> BatchSchema {
    let arrow = parse_schema("id BIGINT NOT NULL, v BIGINT").unwrap();
    BatchSchema::new(1, Arc::new(arrow)).unwrap()
}

/// A bucket on `clock` whose KV never flushes by itself.
async fn open(dir: &Path, clock: &ManualClock) -> Rc<PkBucket> {
    let options =
        PkTableOptions::from_definition(schema().arrow(), &["id".into()], &[], &[]).unwrap();
    let spec = PkBucketSpec { schema: schema(), options, bucket: 0, bucket_count: 1 };
    let clock: Rc<dyn Clock> = Rc::new(clock.clone());
    let env = PkBucketEnv { clock, background: None, block_cache: None };
    let kv = KvConfig { memtable_size_max_bytes: 64 << 20, ..KvConfig::test_min() };
    let (log_path, kv_path) = (dir.join("log"), dir.join("kv"));
    PkBucket::open(&log_path, &kv_path, spec, LogConfig::test_min(), kv, env).await.unwrap()
}

/// Upserts rows `ids` and waits until they are durable.
async fn upsert(bucket: &Rc<PkBucket>, ids: std::ops::Range<i64>) {
    let ids: Vec<i64> = ids.collect();
    let rows = RecordBatch::try_new(
        schema().arrow().clone(),
        vec![Arc::new(Int64Array::from(ids.clone())), Arc::new(Int64Array::from(ids))],
    )
    .unwrap();
    let mut builder = LogBatchBuilder::new(schema(), BatchOptions::default()).unwrap();
    let bytes = builder.build(&rows, None, WriterStamp::NONE).unwrap();
    let outcome = bucket.write(&bytes, WriteColumns::All).await.unwrap();
    bucket.wait_durable(&outcome).await.unwrap();
}

#[test]
fn an_idle_snapshot_scan_expires_when_the_clock_passes_the_idle_limit() {
    run(|path| async move {
        let clock = ManualClock::new(1_000);
        let bucket = open(&path, &clock).await;
        upsert(&bucket, 0..20).await;
        let first = bucket.snapshot_scan(ScanCursor::Start, 1, None).await.unwrap();
        assert!(first.more);
        let scan = ScanCursor::Resume(first.scan_id);

        let just_under = SNAPSHOT_SCAN_IDLE_MAX - Duration::from_millis(1);
        clock.advance(just_under.as_millis() as i64);
        let second = bucket.snapshot_scan(scan, 1, None).await.unwrap();
        assert!(second.more, "idle for less than the limit: the scan is still there");
        assert_eq!(bucket.scans.borrow().len(), 1);

        clock.advance(SNAPSHOT_SCAN_IDLE_MAX.as_millis() as i64);
        match bucket.snapshot_scan(scan, 1, None).await {
            Err(PkBucketError::ScanNotFound(id)) => assert_eq!(id, first.scan_id),
            other => panic!("expected the scan to have expired, got {other:?}"),
        }
        assert!(bucket.scans.borrow().is_empty());
    });
}

#[test]
fn a_quiet_bucket_s_snapshot_becomes_due_when_the_clock_passes_its_age() {
    run(|path| async move {
        let clock = ManualClock::new(1_000);
        let bucket = open(&path, &clock).await;
        let age = Duration::from_secs(300);
        upsert(&bucket, 0..5).await;
        assert!(!bucket.snapshot_if_older_than(age).await.unwrap(), "the clock stood still");
        clock.advance(age.as_millis() as i64 - 1);
        assert!(!bucket.snapshot_if_older_than(age).await.unwrap(), "not old enough yet");
        clock.advance(1);
        assert!(bucket.snapshot_if_older_than(age).await.unwrap(), "due once the clock moved");
        assert_eq!(bucket.kv().snapshot_log_offset(), bucket.log().high_watermark());

        // A fresh snapshot, and then a quiet bucket: nothing is due however far time moves.
        clock.advance(age.as_millis() as i64);
        assert!(!bucket.snapshot_if_older_than(age).await.unwrap(), "nothing applied since");
        upsert(&bucket, 5..6).await;
        assert!(bucket.snapshot_if_older_than(age).await.unwrap(), "old and changed");
        bucket.close().await.unwrap();
    });
}
