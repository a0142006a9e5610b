//! A fetch cannot make the node hold more than its limits: the answer's byte limit and each
//! bucket's are lowered to the node's `fetch_size_max_bytes` whatever the request asks (a
//! read still returns at least one whole batch), and a bucket listed twice is refused.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use ufer_node::{start, NodeConfig};
use ufer_tests::{client_runtime, table};
use ufer_wire::client::{Admin, ClientConfig, ClientError, Connection};
use ufer_wire::protocol::error_code::ErrorCode;
use ufer_wire::protocol::messages::{
    Acks, FetchBucket, FetchRequest, ProduceRequest, TableDefinition, TablePath,
};
use ufer_wire::Compression;

/// Creates `default.events` with `buckets` buckets; returns its path and id.
async fn create_events(connection: &Connection, buckets: u32) -> (TablePath, u64) {
    let path = TablePath::new("default", "events");
    let definition = TableDefinition {
        schema: table::SCHEMA_TEXT.into(),
        bucket_count: buckets,
        ..Default::default()
    };
    let table_id =
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
    (path, table_id)
}

#[test]
fn a_fetch_asking_for_everything_gets_the_node_limit_and_a_bucket_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let limit = config.fetch_size_max_bytes as usize;
    let node = start(config).unwrap();
    client_runtime().block_on(async {
        let client = ClientConfig::local(node.shard_addresses()[0], dir.path());
        let connection = Connection::new(client).unwrap();
        let (path, table_id) = create_events(&connection, 1).await;
        let location = connection.table_metadata(&path).await.unwrap().buckets[0].clone();
        let owner = connection.shard_address(location.node_id, location.shard).await.unwrap();
        // About three times the limit, in batches of about a quarter of it.
        let mut stored = 0;
        let mut batch_size = 0;
        for index in 0..12 {
            let batch = table::batch(index * 8_000, 8_000, Compression::None, None);
            batch_size = batch_size.max(batch.len());
            stored += batch.len();
            let request =
                ProduceRequest { table_id, bucket: 0, acks: Acks::All, timeout_ms: 10_000 };
            connection.call(owner, &request, &batch, Duration::ZERO).await.unwrap();
        }
        assert!(stored > 2 * limit, "{stored} bytes stored, limit {limit}");
        let everything = FetchRequest {
            table_id,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: u32::MAX,
            projection: None,
            buckets: vec![FetchBucket { bucket: 0, offset: 0, max_bytes: u32::MAX }],
        };
        let answer = connection.call(owner, &everything, &[], Duration::ZERO).await.unwrap();
        let returned = answer.body.buckets[0].records_length as usize;
        assert!(returned > 0 && returned <= limit + batch_size, "{returned} bytes, limit {limit}");

        let twice = FetchRequest {
            buckets: vec![
                FetchBucket { bucket: 0, offset: 0, max_bytes: 1024 },
                FetchBucket { bucket: 0, offset: 5, max_bytes: 1024 },
            ],
            ..everything
        };
        match connection.call(owner, &twice, &[], Duration::ZERO).await {
            Err(ClientError::Server(error)) => {
                assert_eq!(error.code, ErrorCode::InvalidRequest);
                assert!(error.message.contains("listed twice"), "{error:?}");
            }
            other => panic!("a bucket listed twice must be refused: {other:?}"),
        }
        connection.close().await;
    });
    node.shutdown().unwrap();
}

#[test]
fn a_fetch_of_buckets_on_several_shards_keeps_to_the_limit_in_total() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let limit = config.fetch_size_max_bytes as usize;
    let node = start(config).unwrap();
    client_runtime().block_on(async {
        let client = ClientConfig::local(node.shard_addresses()[0], dir.path());
        let connection = Connection::new(client).unwrap();
        let (path, table_id) = create_events(&connection, 4).await;
        let metadata = connection.table_metadata(&path).await.unwrap();
        let shards: std::collections::BTreeSet<u32> =
            metadata.buckets.iter().map(|bucket| bucket.shard).collect();
        assert_eq!(shards.len(), 2, "the buckets are on both shards");
        // Each bucket alone holds more than the limit.
        let mut batch_size = 0;
        for location in &metadata.buckets {
            let owner = connection.shard_address(location.node_id, location.shard).await.unwrap();
            for index in 0..6 {
                let batch = table::batch(index * 8_000, 8_000, Compression::None, None);
                batch_size = batch_size.max(batch.len());
                let request = ProduceRequest {
                    table_id,
                    bucket: location.bucket,
                    acks: Acks::All,
                    timeout_ms: 10_000,
                };
                connection.call(owner, &request, &batch, Duration::ZERO).await.unwrap();
            }
        }
        let everything = FetchRequest {
            table_id,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: u32::MAX,
            projection: None,
            buckets: (0..4)
                .map(|bucket| FetchBucket { bucket, offset: 0, max_bytes: u32::MAX })
                .collect(),
        };
        let first = node.shard_addresses()[0];
        let answer = connection.call(first, &everything, &[], Duration::ZERO).await.unwrap();
        let total: usize =
            answer.body.buckets.iter().map(|bucket| bucket.records_length as usize).sum();
        // Each of the two shards' parts may end with one batch past its share.
        assert!(total > 0 && total <= limit + 2 * batch_size, "{total} bytes, limit {limit}");
        connection.close().await;
    });
    node.shutdown().unwrap();
}
