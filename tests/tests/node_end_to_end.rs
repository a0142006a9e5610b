//! A real node over real QUIC, driven by the client SDK: create a table, produce 100 000 rows
//! from several writers, consume them all in order per bucket with and without server-side
//! projection; the shard-aware client never makes a shard forward a request; catalog and
//! data survive a restart.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use ufer_node::{start, NodeConfig};
use ufer_tests::client_runtime;
use ufer_tests::scan::read_ids;
use ufer_wire::client::{
    Admin, AppendOptions, AppendWriter, ClientConfig, Connection, LogScanner, ScanOptions,
    StartFrom,
};
use ufer_wire::protocol::messages::{TableDefinition, TablePath};

const ROWS_PER_BATCH: i64 = 1_000;
const WRITERS: i64 = 4;
const BATCHES_PER_WRITER: i64 = 25;
const TOTAL_ROWS: i64 = ROWS_PER_BATCH * WRITERS * BATCHES_PER_WRITER;

fn rows(schema: &arrow_schema::SchemaRef, first_id: i64) -> RecordBatch {
    let ids: Vec<i64> = (first_id..first_id + ROWS_PER_BATCH).collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from(
                ids.iter().map(|id| format!("name-{id}")).collect::<Vec<_>>(),
            )),
            Arc::new(TimestampMillisecondArray::from(
                ids.iter().map(|id| id * 1_000).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// Creates `default.NAME` (id, name, ts) with `buckets` buckets and no bucket key.
async fn create_events_table(connection: &Connection, name: &str, buckets: u32) -> TablePath {
    let path = TablePath::new("default", name);
    let definition = TableDefinition {
        schema: "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)".into(),
        bucket_count: buckets,
        ..TableDefinition::default()
    };
    Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
    path
}

/// Writer `writer`'s share of the rows, appended in batches and flushed: returns how many
/// the node acknowledged as stored.
async fn write_share(connection: Connection, path: &TablePath, writer: i64) -> u64 {
    let options = AppendOptions { batch_size_bytes: 64 * 1024, ..AppendOptions::default() };
    let appender = AppendWriter::new(connection, path, options).await.unwrap();
    let schema = appender.table().schema.arrow().clone();
    let mut handles = Vec::new();
    for batch in 0..BATCHES_PER_WRITER {
        let first_id = (writer * BATCHES_PER_WRITER + batch) * ROWS_PER_BATCH;
        handles.push(appender.append(rows(&schema, first_id)).await.unwrap());
    }
    appender.flush().await.unwrap();
    let mut stored = 0;
    for handle in handles {
        for ack in handle.wait().await.unwrap() {
            stored += ack.last_offset - ack.base_offset + 1;
        }
    }
    appender.close().await.unwrap();
    stored
}

#[test]
fn produce_and_consume_over_quic_with_and_without_projection() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::test_min(dir.path().to_path_buf());
    config.log.segment_size_max_bytes = 256 * 1024;
    let node = start(config.clone()).unwrap();
    let bootstrap = node.shard_addresses()[1];
    let runtime = client_runtime();
    let path = TablePath::new("default", "events");
    runtime.block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        let admin = Admin::new(connection.clone());
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)".into(),
            bucket_count: 4,
            bucket_key: vec!["id".into()],
            ..TableDefinition::default()
        };
        admin.create_table(&path, definition, false).await.unwrap();
        assert_eq!(admin.list_tables("default").await.unwrap(), vec!["events".to_string()]);

        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let connection = connection.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move { write_share(connection, &path, writer).await }));
        }
        let mut stored = 0;
        for task in tasks {
            stored += task.await.unwrap();
        }
        assert_eq!(stored as i64, TOTAL_ROWS);

        let all = read_ids(&connection, &path, None, TOTAL_ROWS as usize).await;
        assert_eq!(all.len() as i64, TOTAL_ROWS);
        assert_eq!(all.keys().next(), Some(&0));
        let columns = Some(vec!["ts".into(), "id".into()]);
        let projected = read_ids(&connection, &path, columns, TOTAL_ROWS as usize).await;
        assert_eq!(projected, all, "the same rows at the same places, projected or not");

        let description = admin.describe_table(&path).await.unwrap();
        let high_watermarks: u64 =
            description.buckets.iter().map(|bucket| bucket.high_watermark).sum();
        assert_eq!(high_watermarks as i64, TOTAL_ROWS);
        connection.close().await;
    });
    let metrics = node.metrics();
    let forwarded: u64 = metrics.iter().map(|shard| shard.forwarded_requests).sum();
    assert_eq!(forwarded, 0, "a shard-aware client never makes a shard forward: {metrics:?}");
    assert!(
        metrics.iter().all(|shard| shard.requests > 0),
        "both shards served requests: {metrics:?}"
    );
    node.shutdown().unwrap();

    // Catalog and data survive a restart.
    let node = start(config).unwrap();
    let bootstrap = node.shard_addresses()[0];
    runtime.block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        let all = read_ids(&connection, &path, Some(vec!["id".into()]), TOTAL_ROWS as usize).await;
        assert_eq!(all.len() as i64, TOTAL_ROWS);
        connection.close().await;
    });
    node.shutdown().unwrap();
}

/// A scanner's fetches to different shards run independently: rows appended to a bucket on
/// one shard come back while the fetch to the other, quiet shard is still long-polling.
#[test]
fn a_quiet_shard_does_not_hold_back_rows_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    client_runtime().block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let path = create_events_table(&connection, "split", 2).await;
        let metadata = connection.table_metadata(&path).await.unwrap();
        assert_ne!(metadata.buckets[0].shard, metadata.buckets[1].shard, "one bucket per shard");

        // Long polls far longer than the test waits.
        let options = ScanOptions { max_wait: Duration::from_secs(60), ..ScanOptions::default() };
        let mut scanner = LogScanner::new(connection.clone(), &path, options).await.unwrap();
        scanner.subscribe_all(StartFrom::Latest).await.unwrap();
        let appender =
            AppendWriter::new(connection.clone(), &path, AppendOptions::default()).await.unwrap();
        let schema = appender.table().schema.arrow().clone();
        // Without a bucket key, the first append goes to bucket 0 only.
        let handle = appender.append(rows(&schema, 0)).await.unwrap();
        appender.flush().await.unwrap();
        assert_eq!(handle.wait().await.unwrap()[0].bucket, 0);
        let mut seen = 0;
        while seen < ROWS_PER_BATCH as usize {
            let polled = tokio::time::timeout(Duration::from_secs(20), scanner.poll())
                .await
                .expect("rows of bucket 0 arrive while bucket 1's shard long-polls")
                .unwrap();
            assert!(polled.iter().all(|scanned| scanned.bucket == 0));
            seen += polled.iter().map(|scanned| scanned.rows.num_rows()).sum::<usize>();
        }
        appender.close().await.unwrap();
        drop(scanner);
        connection.close().await;
    });
    // The node still holds the quiet shard's long poll (up to its 30 s cap): a shutdown
    // answers it at once instead of waiting it out.
    let (stopped, stopping) = std::sync::mpsc::channel();
    std::thread::spawn(move || stopped.send(node.shutdown()));
    let result = stopping
        .recv_timeout(Duration::from_secs(15))
        .expect("shutdown does not wait for long polls to run out");
    result.unwrap();
}

/// A shard that cannot start (here shard 0, whose catalog directory cannot be opened)
/// fails the node's start with its reason, rather than leaving a node up whose buckets on
/// that shard never answer.
#[test]
fn a_shard_that_cannot_start_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    // DataDir opens this probe file first; a directory in its place cannot be opened.
    std::fs::create_dir_all(dir.path().join("catalog").join(".ufer-dma-probe")).unwrap();
    match start(NodeConfig::test_min(dir.path().to_path_buf())) {
        Err(ufer_node::NodeError::Shard { shard: 0, reason }) => {
            assert!(reason.contains(".ufer-dma-probe"), "{reason}");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(node) => {
            let _ = node.shutdown();
            panic!("the node started without its catalog");
        }
    }
}

/// A stopped node has released its UDP ports, even with clients still connected: a node
/// restarted in the same process (embedded use, tests) binds them again at once.
#[test]
fn a_stopped_node_has_released_its_ports() {
    let runtime = client_runtime();
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
        let addresses = node.shard_addresses();
        let _guard = runtime.enter();
        let connection = Connection::new(ClientConfig::local(addresses[0], dir.path())).unwrap();
        runtime.block_on(async {
            for address in &addresses {
                let request = ufer_wire::protocol::messages::MetadataRequest { tables: Vec::new() };
                connection.call(*address, &request, &[], Duration::ZERO).await.unwrap();
            }
        });
        node.shutdown().unwrap();
        for address in &addresses {
            if let Err(error) = std::net::UdpSocket::bind(address) {
                panic!("round {round}: {address} still bound after the node stopped: {error}");
            }
        }
        drop(connection);
    }
}

/// A writer that seals every append (batch size 1 byte) but is given appends faster than
/// one request each can carry sends what piled up during a request as one batch: fewer
/// batches than appends reach the node, and every append's offsets still hold its rows.
#[test]
fn appends_sealed_while_a_batch_is_in_flight_go_out_together() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    client_runtime().block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let path = create_events_table(&connection, "merged", 1).await;
        let options = AppendOptions {
            batch_size_bytes: 1,
            acks: ufer_wire::protocol::messages::Acks::All,
            ..AppendOptions::default()
        };
        let writer = AppendWriter::new(connection.clone(), &path, options).await.unwrap();
        let schema = writer.table().schema.arrow().clone();
        let appends = 300i64;
        let mut handles = Vec::new();
        for append in 0..appends {
            let ids: Vec<i64> = (append * 3..append * 3 + 3).collect();
            let rows = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(StringArray::from(vec!["x"; 3])),
                    Arc::new(TimestampMillisecondArray::from(ids)),
                ],
            )
            .unwrap();
            handles.push(writer.append(rows).await.unwrap());
        }
        let mut acks = Vec::new();
        for handle in handles {
            acks.push(handle.wait().await.unwrap()[0]);
        }
        writer.close().await.unwrap();
        // Each append's three rows got consecutive offsets, in append order.
        for (append, ack) in acks.iter().enumerate() {
            assert_eq!(ack.base_offset, append as u64 * 3, "{ack:?}");
            assert_eq!(ack.last_offset, append as u64 * 3 + 2, "{ack:?}");
        }
        // And the rows are where the acknowledgements said: id n at offset n.
        let places = read_ids(&connection, &path, None, appends as usize * 3).await;
        assert_eq!(places.len(), appends as usize * 3);
        assert!(places.iter().all(|(id, place)| place.offset == *id as u64 && place.bucket == 0));
        let batches: u64 = node.metrics().iter().map(|shard| shard.produced_batches).sum();
        assert!(batches < appends as u64 / 2, "{batches} batches for {appends} appends");

        // With merging off, every sealed append is a batch of its own.
        let options = AppendOptions {
            batch_size_bytes: 1,
            merged_batch_size_max_bytes: 0,
            ..AppendOptions::default()
        };
        let writer = AppendWriter::new(connection.clone(), &path, options).await.unwrap();
        let mut handles = Vec::new();
        for append in 0..50 {
            handles.push(writer.append(rows(&schema, append * 1_000)).await.unwrap());
        }
        for handle in handles {
            handle.wait().await.unwrap();
        }
        writer.close().await.unwrap();
        let after: u64 = node.metrics().iter().map(|shard| shard.produced_batches).sum();
        assert_eq!(after - batches, 50);
        connection.close().await;
    });
    node.shutdown().unwrap();
}
