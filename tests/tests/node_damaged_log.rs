//! A bit flipped in the middle of a bucket's active segment, between node runs: the node
//! keeps every acknowledged batch after the damage (nothing is cut), reports the damaged
//! offsets in `describe` and in its metrics, answers a fetch of them with `CORRUPT_DATA`
//! saying where reading resumes, serves every batch before and after them, and appends
//! where the log ended.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ufer_node::{start, NodeConfig};
use ufer_tests::client_runtime;
use ufer_tests::table::{record_batch, SCHEMA_TEXT};
use ufer_wire::client::{
    Admin, AppendOptions, AppendWriter, ClientConfig, Connection, LogScanner, ScanOptions,
    StartFrom,
};
use ufer_wire::protocol::error_code::ErrorCode;
use ufer_wire::protocol::messages::{FetchBucket, FetchRequest, TableDefinition, TablePath};
use ufer_wire::LogBatch;

const BATCHES: i64 = 12;
const ROWS_PER_BATCH: i64 = 10;

/// Batches of a segment file: position, length, base offset.
fn batches_in(file: &std::path::Path) -> Vec<(usize, usize, u64)> {
    let bytes = std::fs::read(file).unwrap();
    let (mut at, mut batches) = (0, Vec::new());
    while let Ok(batch) = LogBatch::parse(&bytes[at..]) {
        batches.push((at, batch.len(), batch.base_offset()));
        at += batch.len();
    }
    batches
}

/// Connects with `client`, creates the one-bucket table `path` and appends [`BATCHES`]
/// batches to it, each acknowledged before the next is sent: returns the table id.
async fn create_and_fill(client: ClientConfig, path: &TablePath) -> u64 {
    let connection = Connection::new(client).unwrap();
    let definition =
        TableDefinition { schema: SCHEMA_TEXT.into(), bucket_count: 1, ..Default::default() };
    let table_id =
        Admin::new(connection.clone()).create_table(path, definition, false).await.unwrap();
    let writer =
        AppendWriter::new(connection.clone(), path, AppendOptions::default()).await.unwrap();
    for batch in 0..BATCHES {
        let rows = record_batch(batch * ROWS_PER_BATCH, ROWS_PER_BATCH as usize);
        writer.append(rows).await.unwrap().wait().await.unwrap();
    }
    writer.close().await.unwrap();
    connection.close().await;
    table_id
}

/// The active (last) segment file of the bucket in `bucket_dir`.
fn active_segment(bucket_dir: &std::path::Path) -> std::path::PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(bucket_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    segments.sort();
    segments.pop().unwrap()
}

#[test]
fn a_damaged_batch_in_the_middle_of_a_bucket_is_reported_and_nothing_after_it_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::test_min(dir.path().to_path_buf());
    // Every batch in one (active) segment.
    config.log.segment_size_max_bytes = 1 << 20;
    let path = TablePath::new("default", "events");
    let runtime = client_runtime();
    let node = start(config.clone()).unwrap();
    let client = ClientConfig::local(node.shard_addresses()[0], dir.path());
    let table_id = runtime.block_on(create_and_fill(client, &path));
    node.shutdown().unwrap();

    let bucket_dir = dir.path().join("tables").join(table_id.to_string()).join("0");
    let active = active_segment(&bucket_dir);
    let batches = batches_in(&active);
    assert!(batches.len() >= 3, "need a batch in the middle: {batches:?}");
    let (position, length, damaged_from) = batches[1];
    let resumes_at = batches[2].2;
    let mut bytes = std::fs::read(&active).unwrap();
    bytes[position + length - 50] ^= 0x10;
    std::fs::write(&active, bytes).unwrap();
    let total = (BATCHES * ROWS_PER_BATCH) as u64;

    let node = start(config).unwrap();
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let description = Admin::new(connection.clone()).describe_table(&path).await.unwrap();
        let bucket = &description.buckets[0];
        assert_eq!(bucket.high_watermark, total, "nothing after the damage was cut");
        assert_eq!(bucket.damaged_offsets, vec![(damaged_from, resumes_at)]);

        let metadata = connection.table_metadata(&path).await.unwrap();
        let location = &metadata.buckets[0];
        let owner = connection.shard_address(location.node_id, location.shard).await.unwrap();
        let fetch = |offset: u64| FetchRequest {
            table_id,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            projection: None,
            buckets: vec![FetchBucket { bucket: 0, offset, max_bytes: 1 << 20 }],
        };
        let answer =
            connection.call(owner, &fetch(damaged_from), &[], Duration::ZERO).await.unwrap();
        let error = answer.body.buckets[0].error.clone().expect("the damaged offsets fail");
        assert_eq!(error.code, ErrorCode::CorruptData, "{error:?}");
        assert!(error.message.contains(&format!("resumes at offset {resumes_at}")), "{error:?}");

        // Everything after the damage reads, and the log goes on where it ended.
        let options = ScanOptions::default();
        let mut scanner = LogScanner::new(connection.clone(), &path, options).await.unwrap();
        scanner.subscribe(&[0], StartFrom::Offset(resumes_at)).await.unwrap();
        let mut rows = 0u64;
        while rows < total - resumes_at {
            for polled in scanner.poll().await.unwrap() {
                rows += polled.rows.num_rows() as u64;
            }
        }
        assert_eq!(rows, total - resumes_at);
        let writer =
            AppendWriter::new(connection.clone(), &path, AppendOptions::default()).await.unwrap();
        let acks = writer.append(record_batch(10_000, 5)).await.unwrap().wait().await.unwrap();
        assert_eq!(acks[0].base_offset, total);
        writer.close().await.unwrap();
        connection.close().await;
    });
    let damaged: u64 = node.metrics().iter().map(|shard| shard.damaged_ranges).sum();
    assert_eq!(damaged, 1);
    node.shutdown().unwrap();
}
