//! A primary-key bucket on real files against a reference: the same requests run through the
//! pure `ChangelogGenerator` over an in-memory map (itself checked against an independent
//! model in `pk::changelog`'s tests) must give the same answers, the same changelog and the
//! same table — whatever flushes, compactions, clean reopens and reopens without a close
//! (replay of the changelog after the last KV snapshot) happen in between, for every merge
//! engine and changelog image. Also: lookups see only durable writes, and a corrupt KV file
//! is rebuilt from the changelog.
//!
//! 24 cases by default; `UFER_PROPTEST_CASES` sets another number.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use proptest::prelude::*;
use ufer_shard::pk_bucket::{
    LookupBy, PkBucket, PkBucketEnv, PkBucketError, PkBucketSpec, ScanCursor, WriteColumns,
};
use ufer_shard::{
    ChangelogGenerator, Clock, KvConfig, KvError, LogConfig, PkTableOptions, ReadRequest, RowOp,
    SystemClock, WriteRequest,
};
use ufer_wire::schema_text::parse_schema;
use ufer_wire::{
    aligned_copy, BatchDecoder, BatchOptions, BatchSchema, ChangeType, LogBatch, LogBatchBuilder,
    WriterStamp,
};

/// A changelog row as compared: change type, id, v, s.
type Change = (u8, i64, Option<i64>, Option<String>);

fn schema() -> BatchSchema {
    let arrow = parse_schema("id BIGINT NOT NULL, v BIGINT, s STRING").unwrap();
    BatchSchema::new(1, Arc::new(arrow)).unwrap()
}

/// The table properties of each engine the test runs.
fn engine_properties(engine: u8) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = match engine {
        0 => &[],
        1 => &[("table.changelog.image", "wal")],
        2 => &[("table.merge-engine", "first_row")],
        3 => {
            &[("table.merge-engine", "versioned"), ("table.merge-engine.versioned.ver-column", "v")]
        }
        _ => &[
            ("table.merge-engine", "aggregation"),
            ("fields.v.agg", "sum"),
            ("fields.s.agg", "listagg"),
        ],
    };
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

fn options(engine: u8) -> PkTableOptions {
    PkTableOptions::from_definition(
        schema().arrow(),
        &["id".into()],
        &[],
        &engine_properties(engine),
    )
    .unwrap()
}

#[derive(Clone, Debug)]
enum Step {
    /// Rows (key, v, s, delete?) and whether it is a partial update of (id, v).
    Write(Vec<(i64, Option<i64>, Option<String>, bool)>, bool),
    Flush,
    Compact,
    /// Close cleanly and open again.
    Reopen,
    /// Drop without closing (as a crash after the last durable write) and open again.
    Crash,
}

fn step() -> impl Strategy<Value = Step> {
    let row = (
        0i64..12,
        proptest::option::of(-3i64..50),
        proptest::option::of("[a-c]{0,3}"),
        proptest::bool::weighted(0.2),
    );
    prop_oneof![
        8 => (proptest::collection::vec(row, 1..6), proptest::bool::weighted(0.2))
            .prop_map(|(rows, partial)| Step::Write(rows, partial)),
        1 => Just(Step::Flush),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
    ]
}

fn rows(rows: &[(i64, Option<i64>, Option<String>, bool)]) -> RecordBatch {
    RecordBatch::try_new(
        schema().arrow().clone(),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|row| row.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|row| row.1).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|row| row.2.clone()).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

fn changes_of(batch: &RecordBatch, change_types: &[ChangeType]) -> Vec<Change> {
    let ids = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    let values = batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    let texts = batch.column(2).as_any().downcast_ref::<StringArray>().unwrap();
    (0..batch.num_rows())
        .map(|row| {
            (
                change_types[row].to_byte(),
                ids.value(row),
                (!values.is_null(row)).then(|| values.value(row)),
                (!texts.is_null(row)).then(|| texts.value(row).to_string()),
            )
        })
        .collect()
}

async fn open(dir: &Path, engine: u8) -> Rc<PkBucket> {
    open_with(dir, engine, LogConfig::test_min(), KvConfig::test_min()).await
}

async fn open_with(dir: &Path, engine: u8, log: LogConfig, kv: KvConfig) -> Rc<PkBucket> {
    let spec =
        PkBucketSpec { schema: schema(), options: options(engine), bucket: 0, bucket_count: 1 };
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let env = PkBucketEnv { clock, background: None, block_cache: None };
    PkBucket::open(&dir.join("log"), &dir.join("kv"), spec, log, kv, env).await.unwrap()
}

/// The whole changelog read back from the bucket's log.
async fn changelog(bucket: &PkBucket) -> Vec<Change> {
    let decoder = BatchDecoder::new(schema());
    let log = bucket.log();
    let mut changes = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log.read(ReadRequest::new(offset, 1 << 20)).await.unwrap();
        for chunk in &read.chunks {
            let mut bytes = chunk.as_bytes();
            while !bytes.is_empty() {
                let length = LogBatch::parse(bytes).unwrap().len();
                let decoded = decoder.decode(&aligned_copy(&bytes[..length])).unwrap();
                let types: Vec<ChangeType> = (0..decoded.record_batch.num_rows())
                    .map(|row| decoded.change_type(row))
                    .collect();
                changes.extend(changes_of(&decoded.record_batch, &types));
                bytes = &bytes[length..];
            }
        }
        offset = read.next_offset;
    }
    changes
}

/// The table by snapshot scan, in small parts.
async fn table(bucket: &Rc<PkBucket>) -> Vec<Change> {
    let mut rows = Vec::new();
    let mut cursor = ScanCursor::Start;
    loop {
        let part = bucket.snapshot_scan(cursor, 64, None).await.unwrap();
        if let Some(batch) = &part.rows {
            rows.extend(changes_of(batch, &vec![ChangeType::Insert; batch.num_rows()]));
        }
        if !part.more {
            return rows;
        }
        cursor = ScanCursor::Resume(part.scan_id);
    }
}

/// The reference: the generator over a map.
struct Reference {
    generator: ChangelogGenerator,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    changelog: Vec<Change>,
}

impl Reference {
    /// Applies a write; `Err` if the generator refuses it (then nothing changes).
    fn write(
        &mut self,
        batch: &RecordBatch,
        ops: &[RowOp],
        target: Option<&[usize]>,
    ) -> Result<(), String> {
        let request = WriteRequest { batch, ops: Some(ops), target_columns: target };
        let keys = self.generator.keys_to_read(&request).map_err(|error| error.to_string())?;
        let current: Vec<Option<Vec<u8>>> =
            keys.iter().map(|key| self.kv.get(key).cloned()).collect();
        let output =
            self.generator.generate(&request, &current).map_err(|error| error.to_string())?;
        if let Some(changelog) = &output.changelog {
            self.changelog.extend(changes_of(changelog, &output.change_types));
        }
        for (key, value) in output.mutations {
            match value {
                Some(value) => self.kv.insert(key, value),
                None => self.kv.remove(&key),
            };
        }
        Ok(())
    }

    fn table(&self) -> Vec<Change> {
        if self.kv.is_empty() {
            return Vec::new();
        }
        let values: Vec<&[u8]> = self.kv.values().map(Vec::as_slice).collect();
        let batch = self.generator.row_codec().decode_rows(&values).unwrap();
        changes_of(&batch, &vec![ChangeType::Insert; batch.num_rows()])
    }
}

async fn run_case(dir: &Path, engine: u8, steps: Vec<Step>) -> Result<(), String> {
    let mut reference = Reference {
        generator: ChangelogGenerator::new(1, schema().arrow().clone(), options(engine)).unwrap(),
        kv: BTreeMap::new(),
        changelog: Vec::new(),
    };
    let mut bucket = open(dir, engine).await;
    let mut builder = LogBatchBuilder::new(schema(), BatchOptions::default()).unwrap();
    for (index, step) in steps.into_iter().enumerate() {
        match step {
            Step::Write(written, partial) => {
                let batch = rows(&written);
                let ops: Vec<RowOp> = written
                    .iter()
                    .map(|row| if row.3 { RowOp::Delete } else { RowOp::Upsert })
                    .collect();
                let types: Vec<ChangeType> = written
                    .iter()
                    .map(|row| if row.3 { ChangeType::Delete } else { ChangeType::UpdateAfter })
                    .collect();
                let target: Option<&[usize]> = partial.then_some(&[0, 1][..]);
                let expected = reference.write(&batch, &ops, target);
                let bytes = builder.build(&batch, Some(&types), WriterStamp::NONE).unwrap();
                let columns = target.map_or(WriteColumns::All, WriteColumns::Partial);
                let outcome = bucket.write(&bytes, columns).await;
                match (&expected, &outcome) {
                    (Ok(()), Ok(outcome)) => bucket.wait_durable(outcome).await.unwrap(),
                    (Err(_), Err(_)) => {}
                    _ => {
                        return Err(format!(
                            "step {index}: the reference says {expected:?}, the bucket {outcome:?}"
                        ))
                    }
                }
            }
            Step::Flush => {
                bucket.wait_maintenance().await;
                bucket.flush().await.unwrap();
            }
            Step::Compact => {
                bucket.wait_maintenance().await;
                while bucket.kv().needs_compaction() && bucket.kv().compact_step().await.unwrap() {}
            }
            Step::Reopen => {
                bucket.close().await.unwrap();
                bucket = open(dir, engine).await;
            }
            Step::Crash => {
                bucket.wait_maintenance().await;
                drop(bucket);
                bucket = open(dir, engine).await;
            }
        }
    }
    let table = table(&bucket).await;
    if table != reference.table() {
        return Err(format!("table {table:?}\nreference {:?}", reference.table()));
    }
    let changelog = changelog(&bucket).await;
    if changelog != reference.changelog {
        return Err(format!("changelog {changelog:?}\nreference {:?}", reference.changelog));
    }
    bucket.close().await.unwrap();
    Ok(())
}

fn cases() -> u32 {
    std::env::var("UFER_PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_bucket_on_files_behaves_like_the_generator_over_a_map(
        engine in 0u8..5,
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let result = support::run(move || async move { run_case(&path, engine, steps).await });
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

fn key_batch(bucket: &PkBucket, ids: &[i64]) -> Vec<u8> {
    let keys = RecordBatch::try_new(
        bucket.key_schema().arrow().clone(),
        vec![Arc::new(Int64Array::from(ids.to_vec()))],
    )
    .unwrap();
    LogBatchBuilder::new(bucket.key_schema().clone(), BatchOptions::default())
        .unwrap()
        .build(&keys, None, WriterStamp::NONE)
        .unwrap()
}

#[test]
fn lookups_see_a_write_only_once_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let bucket = open(&path, 0).await;
        let batch = rows(&[(1, Some(5), None, false)]);
        let bytes = LogBatchBuilder::new(schema(), BatchOptions::default())
            .unwrap()
            .build(&batch, None, WriterStamp::NONE)
            .unwrap();
        let outcome = bucket.write(&bytes, WriteColumns::All).await.unwrap();
        let before = bucket.lookup(&key_batch(&bucket, &[1]), LookupBy::Key, None).await.unwrap();
        assert!(before.rows.is_none(), "a lookup saw a write that is not durable");
        assert_eq!(before.log_offset, 0);
        bucket.wait_durable(&outcome).await.unwrap();
        let after = bucket.lookup(&key_batch(&bucket, &[1]), LookupBy::Key, None).await.unwrap();
        assert_eq!(after.key_index, vec![0]);
        assert_eq!(after.log_offset, 1);
        bucket.close().await.unwrap();
    });
}

#[test]
fn a_corrupt_kv_file_is_rebuilt_from_the_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let bucket = open(&path, 0).await;
        let mut builder = LogBatchBuilder::new(schema(), BatchOptions::default()).unwrap();
        for round in 0..20 {
            let written: Vec<_> = (0..10).map(|id| (id, Some(round), None, false)).collect();
            let bytes = builder.build(&rows(&written), None, WriterStamp::NONE).unwrap();
            let outcome = bucket.write(&bytes, WriteColumns::All).await.unwrap();
            bucket.wait_durable(&outcome).await.unwrap();
        }
        bucket.close().await.unwrap();
    });
    // Flip a byte in the middle of every sorted file, or cut one short.
    let kv_dir = dir.path().join("kv");
    let mut files: Vec<_> = std::fs::read_dir(&kv_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "kv"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the KV flushed sorted files");
    for (index, file) in files.iter().enumerate() {
        let mut bytes = std::fs::read(file).unwrap();
        if index % 2 == 0 {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
        } else {
            bytes.truncate(bytes.len() - 100);
        }
        std::fs::write(file, bytes).unwrap();
    }
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        // A file whose footer or index fails its checks is rebuilt at open; one whose data
        // block does is found by the read, which fails with a typed error (never a wrong
        // row); the bucket is then reopened without its KV and rebuilt.
        let mut bucket = open(&path, 0).await;
        let keys: Vec<i64> = (0..10).collect();
        let found = match bucket.lookup(&key_batch(&bucket, &keys), LookupBy::Key, None).await {
            Ok(found) => found,
            Err(PkBucketError::Kv(KvError::Corrupt { .. })) => {
                assert!(bucket.needs_rebuild());
                // Closing discards the corrupt KV; opening rebuilds it from the changelog.
                bucket.close().await.unwrap();
                assert!(!path.join("kv").exists());
                bucket = open(&path, 0).await;
                bucket.lookup(&key_batch(&bucket, &keys), LookupBy::Key, None).await.unwrap()
            }
            Err(other) => panic!("{other}"),
        };
        let values = found.rows.unwrap();
        let values = values.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(values.len(), 10);
        assert!((0..10).all(|row| values.value(row) == 19), "the last round of every key");
        bucket.close().await.unwrap();
    });
}

#[test]
fn retention_keeps_the_changelog_the_last_snapshot_needs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        // Retention would delete every sealed segment; the KV never flushes on its own.
        let mut log = LogConfig::test_min();
        log.retention_size_max_bytes = Some(1);
        let kv = KvConfig { memtable_size_max_bytes: 64 << 20, ..KvConfig::test_min() };
        let bucket = open_with(&path, 0, log.clone(), kv.clone()).await;
        let write_rounds = |bucket: Rc<PkBucket>, rounds: std::ops::Range<i64>| {
            let mut builder = LogBatchBuilder::new(schema(), BatchOptions::default()).unwrap();
            async move {
                for round in rounds {
                    let written: Vec<_> =
                        (0..20).map(|id| (id, Some(round), None, false)).collect();
                    let bytes = builder.build(&rows(&written), None, WriterStamp::NONE).unwrap();
                    let outcome = bucket.write(&bytes, WriteColumns::All).await.unwrap();
                    bucket.wait_durable(&outcome).await.unwrap();
                }
            }
        };
        write_rounds(bucket.clone(), 0..40).await;
        assert!(bucket.log().segment_count() > 3, "the changelog rolled segments");
        bucket.log().apply_retention().await.unwrap();
        assert_eq!(bucket.log().log_start_offset(), 0, "nothing past the snapshot (0) goes");
        // A snapshot lets retention trim up to it, never past it.
        let quiet = bucket.snapshot_if_older_than(std::time::Duration::from_secs(3600)).await;
        assert!(!quiet.unwrap(), "the last snapshot is recent");
        assert!(bucket.snapshot_if_older_than(std::time::Duration::ZERO).await.unwrap());
        let snapshot = bucket.kv().snapshot_log_offset();
        // 20 inserts, then 39 rounds of -U/+U for 20 keys.
        assert_eq!(snapshot, 20 + 39 * 40);
        bucket.log().apply_retention().await.unwrap();
        let start = bucket.log().log_start_offset();
        assert!(start > 0 && start <= snapshot, "log start {start}, snapshot {snapshot}");
        write_rounds(bucket.clone(), 40..45).await;
        // Reopened without a close: the snapshot plus the changelog kept after it.
        bucket.wait_maintenance().await;
        drop(bucket);
        let bucket = open_with(&path, 0, log, kv).await;
        let found = bucket
            .lookup(&key_batch(&bucket, &(0..20).collect::<Vec<_>>()), LookupBy::Key, None)
            .await
            .unwrap();
        let values = found.rows.unwrap();
        let values = values.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert!((0..20).all(|row| values.value(row) == 44));
        bucket.close().await.unwrap();
    });
}

#[test]
fn a_corrupt_kv_file_whose_changelog_retention_deleted_is_kept_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let mut log = LogConfig::test_min();
    log.retention_size_max_bytes = Some(1);
    let kv = KvConfig { memtable_size_max_bytes: 64 << 20, ..KvConfig::test_min() };
    let (log_again, kv_again) = (log.clone(), kv.clone());
    support::run(move || async move {
        let bucket = open_with(&path, 0, log, kv).await;
        let mut builder = LogBatchBuilder::new(schema(), BatchOptions::default()).unwrap();
        for round in 0..40 {
            let written: Vec<_> = (0..20).map(|id| (id, Some(round), None, false)).collect();
            let bytes = builder.build(&rows(&written), None, WriterStamp::NONE).unwrap();
            let outcome = bucket.write(&bytes, WriteColumns::All).await.unwrap();
            bucket.wait_durable(&outcome).await.unwrap();
        }
        assert!(bucket.snapshot_if_older_than(std::time::Duration::ZERO).await.unwrap());
        bucket.log().apply_retention().await.unwrap();
        assert!(bucket.log().log_start_offset() > 0, "the changelog before the snapshot is gone");
        bucket.close().await.unwrap();
    });
    // A flipped byte in the first data block of every sorted file: found by a read.
    let kv_dir = dir.path().join("kv");
    let files: Vec<_> = std::fs::read_dir(&kv_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "kv"))
        .collect();
    assert!(!files.is_empty());
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|file| {
            let mut bytes = std::fs::read(file).unwrap();
            bytes[100] ^= 0x40;
            std::fs::write(file, &bytes).unwrap();
            bytes
        })
        .collect();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let bucket = open_with(&path, 0, log_again.clone(), kv_again.clone()).await;
        let keys: Vec<i64> = (0..20).collect();
        let error = bucket.lookup(&key_batch(&bucket, &keys), LookupBy::Key, None).await;
        assert!(matches!(error, Err(PkBucketError::Kv(KvError::Corrupt { .. }))), "{error:?}");
        assert!(!bucket.needs_rebuild(), "the changelog cannot rebuild it");
        // Every request of the bucket now fails, saying why, and nothing changes.
        let error = bucket.lookup(&key_batch(&bucket, &[0]), LookupBy::Key, None).await;
        assert!(matches!(error, Err(PkBucketError::KvUnrepairable { .. })), "{error:?}");
        let mut builder = LogBatchBuilder::new(schema(), BatchOptions::default()).unwrap();
        let bytes =
            builder.build(&rows(&[(1, Some(99), None, false)]), None, WriterStamp::NONE).unwrap();
        let error = bucket.write(&bytes, WriteColumns::All).await;
        assert!(matches!(error, Err(PkBucketError::KvUnrepairable { .. })), "{error:?}");
        bucket.close().await.unwrap();
        // The files are kept as they were, for a repair.
        for (file, bytes) in files.iter().zip(&before) {
            assert_eq!(&std::fs::read(file).unwrap(), bytes, "{} kept", file.display());
        }
    });
}
