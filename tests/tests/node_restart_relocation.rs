//! Metadata refresh: a writer and a scanner made before a node restart keep working after
//! it, when the restarted node has fewer shards, so some buckets now live behind other
//! endpoints and one endpoint the clients knew is gone. They find out where the buckets are
//! from the node again, without being made anew.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use ufer_node::{start, NodeConfig};
use ufer_wire::client::{
    Admin, AppendOptions, AppendWriter, ClientConfig, Connection, LogScanner, ScanOptions,
    StartFrom,
};
use ufer_wire::protocol::messages::{Acks, TableDefinition, TablePath};

const BUCKETS: u32 = 6;
const ROWS_PER_ROUND: i64 = 600;

fn config(dir: &std::path::Path, base_port: u16, shards: usize) -> NodeConfig {
    let mut config = NodeConfig::test_min(dir.to_path_buf());
    config.base_port = base_port;
    config.shard_count = shards;
    config
}

fn rows(schema: &arrow_schema::SchemaRef, first: i64, count: i64) -> RecordBatch {
    let ids: Vec<i64> = (first..first + count).collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from(
                ids.iter().map(|id| format!("row {id}")).collect::<Vec<_>>(),
            )),
            Arc::new(TimestampMillisecondArray::from(ids.clone())),
        ],
    )
    .unwrap()
}

/// Polls until `want` rows arrived; returns the ids seen per bucket, in order.
async fn read(scanner: &mut LogScanner, want: usize, seen: &mut BTreeMap<u32, Vec<i64>>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut total: usize = seen.values().map(Vec::len).sum();
    while total < want {
        assert!(tokio::time::Instant::now() < deadline, "only {total} of {want} rows came back");
        // Errors while a shard is unreachable are expected; the scanner relocates.
        let Ok(polled) = scanner.poll().await else { continue };
        for scanned in polled {
            let ids = scanned.rows.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            seen.entry(scanned.bucket).or_default().extend(ids.values());
            total += ids.len();
        }
    }
}

#[test]
fn a_writer_and_a_scanner_follow_their_buckets_across_a_restart_with_fewer_shards() {
    let dir = tempfile::tempdir().unwrap();
    let base_port = ufer_tests::free_ports(3);
    let node = start(config(dir.path(), base_port, 3)).unwrap();
    let bootstrap: SocketAddr = format!("127.0.0.1:{base_port}").parse().unwrap();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let node = runtime.block_on(async move {
        let mut client_config = ClientConfig::local(bootstrap, dir.path());
        // A shard that is gone does not answer at all: notice it quickly.
        client_config.request_timeout = Duration::from_secs(2);
        let connection = Connection::new(client_config).unwrap();
        let path = TablePath::new("default", "moving");
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)".into(),
            bucket_count: BUCKETS,
            bucket_key: vec!["id".into()],
            ..TableDefinition::default()
        };
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
        let before = connection.table_metadata(&path).await.unwrap();
        assert!(
            before.buckets.iter().any(|bucket| bucket.shard == 2),
            "some bucket lives on the shard that goes away"
        );
        let options = AppendOptions { acks: Acks::All, retries: 8, ..AppendOptions::default() };
        let writer = AppendWriter::new(connection.clone(), &path, options).await.unwrap();
        let schema = writer.table().schema.arrow().clone();
        let mut scanner = LogScanner::new(
            connection.clone(),
            &path,
            ScanOptions { max_wait: Duration::from_millis(200), ..ScanOptions::default() },
        )
        .await
        .unwrap();
        scanner.subscribe_all(StartFrom::Earliest).await.unwrap();

        writer.append(rows(&schema, 0, ROWS_PER_ROUND)).await.unwrap().wait().await.unwrap();
        let mut seen = BTreeMap::new();
        read(&mut scanner, ROWS_PER_ROUND as usize, &mut seen).await;
        let retries_before = writer.retry_count();

        // The node comes back with two shards on the same first ports: the third is gone.
        node.shutdown().unwrap();
        let node = start(config(dir.path(), base_port, 2)).unwrap();
        connection.invalidate_metadata().await;
        let after = connection.table_metadata(&path).await.unwrap();
        assert!(after.buckets.iter().all(|bucket| bucket.shard < 2));

        writer
            .append(rows(&schema, ROWS_PER_ROUND, ROWS_PER_ROUND))
            .await
            .unwrap()
            .wait()
            .await
            .expect("the writer found the buckets' new shards");
        assert!(writer.retry_count() > retries_before, "the old endpoints failed first");
        read(&mut scanner, 2 * ROWS_PER_ROUND as usize, &mut seen).await;

        // Every row once, in order within its bucket.
        let mut all: Vec<i64> = seen.values().flatten().copied().collect();
        for ids in seen.values() {
            assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "in order per bucket");
        }
        all.sort_unstable();
        assert_eq!(all, (0..2 * ROWS_PER_ROUND).collect::<Vec<_>>());
        writer.close().await.unwrap();
        connection.close().await;
        node
    });
    node.shutdown().unwrap();
}
