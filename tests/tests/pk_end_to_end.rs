//! Primary-key tables on a real node over real QUIC, through the client SDK: upserts,
//! updates and deletes across buckets and shards; lookups and prefix lookups see every
//! acknowledged write; the changelog holds `+I`/`-U`/`+U`/`-D` per change; a snapshot plus
//! the changelog after its offset is exactly the table; an aggregation table sums and a
//! retried request is applied once; bad input gets typed errors; all of it survives a
//! restart (KV snapshot + changelog replay).

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use ufer_node::{start, NodeConfig};
use ufer_tests::client_runtime;
use ufer_wire::client::{
    Admin, ClientConfig, ClientError, Connection, LogScanner, Lookuper, RowKind, ScanOptions,
    SnapshotScanner, StartFrom, Table, UpsertOptions, UpsertWriter,
};
use ufer_wire::protocol::error_code::ErrorCode;
use ufer_wire::protocol::messages::{
    Acks, InitWriterRequest, ProduceRequest, TableDefinition, TablePath, UpsertRequest,
};
use ufer_wire::{BatchOptions, ChangeType, LogBatchBuilder, WriterStamp};

/// The table's rows as the test models them: id → (name, score).
type Model = BTreeMap<i64, (String, i64)>;

fn users(schema: &arrow_schema::SchemaRef, rows: &[(i64, &str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|row| row.0).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|row| row.1).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|row| row.2).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

fn keys(schema: &arrow_schema::SchemaRef, ids: &[i64]) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
}

/// The users table (`id` key, `name`, `score`) with `bucket_count` buckets and `properties`.
fn users_definition(bucket_count: u32, properties: &[(&str, &str)]) -> TableDefinition {
    TableDefinition {
        schema: "id BIGINT NOT NULL, name STRING, score BIGINT".into(),
        bucket_count,
        primary_key: vec!["id".into()],
        properties: properties
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        ..TableDefinition::default()
    }
}

async fn create(connection: &Connection, name: &str, properties: &[(&str, &str)]) -> TablePath {
    let path = TablePath::new("default", name);
    let definition = users_definition(3, properties);
    Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
    path
}

/// Every row of the table, by snapshot scan: (id → row) and the snapshot offset per bucket.
async fn scan_all(connection: &Connection, path: &TablePath) -> (Model, Vec<u64>) {
    let scanner = SnapshotScanner::new(connection, path).await.unwrap();
    let mut model = Model::new();
    let mut offsets = Vec::new();
    for snapshot in scanner.all().await.unwrap() {
        offsets.push(snapshot.log_offset);
        for rows in &snapshot.rows {
            add_rows(&mut model, rows);
        }
    }
    (model, offsets)
}

fn add_rows(model: &mut Model, rows: &RecordBatch) {
    let ids = rows.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    let names = rows.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    let scores = rows.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
    for row in 0..rows.num_rows() {
        let previous =
            model.insert(ids.value(row), (names.value(row).to_string(), scores.value(row)));
        assert!(previous.is_none(), "key {} appears twice", ids.value(row));
    }
}

/// Looks every id in `0..id_end` up (in one batch per call) and returns what was found.
async fn lookup_all(lookuper: &Lookuper, id_end: i64) -> Model {
    let ids: Vec<i64> = (0..id_end).collect();
    let found = lookuper.lookup(&keys(lookuper.key_schema(), &ids)).await.unwrap();
    let mut model = Model::new();
    add_rows(&mut model, &found.rows);
    let found_ids: Vec<i64> = model.keys().copied().collect();
    let indexes: Vec<i64> = found.key_index.iter().map(|index| *index as i64).collect();
    assert_eq!(indexes, found_ids, "key_index names the key of each row, in key order");
    model
}

/// Reads the changelog of every bucket from `from` (per bucket) to its end: per key, the
/// change types in order, and the rows applied to `model`.
async fn follow_changelog(
    connection: &Connection,
    path: &TablePath,
    from: &[u64],
    model: &mut Model,
) -> BTreeMap<i64, Vec<ChangeType>> {
    let mut scanner =
        LogScanner::new(connection.clone(), path, ScanOptions::default()).await.unwrap();
    let mut probe =
        LogScanner::new(connection.clone(), path, ScanOptions::default()).await.unwrap();
    let buckets: Vec<u32> = (0..from.len() as u32).collect();
    probe.subscribe(&buckets, StartFrom::Latest).await.unwrap();
    let ends = probe.positions().clone();
    for (bucket, offset) in from.iter().enumerate() {
        scanner.subscribe(&[bucket as u32], StartFrom::Offset(*offset)).await.unwrap();
    }
    let mut changes: BTreeMap<i64, Vec<ChangeType>> = BTreeMap::new();
    while !ends.iter().all(|(bucket, end)| scanner.positions()[bucket] >= *end) {
        for scanned in scanner.poll().await.unwrap() {
            let ids = scanned.rows.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let names = scanned.rows.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            let scores = scanned.rows.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
            for row in 0..scanned.rows.num_rows() {
                let id = ids.value(row);
                let change = scanned.change_types[row];
                changes.entry(id).or_default().push(change);
                match change {
                    ChangeType::Insert | ChangeType::UpdateAfter => {
                        let value = (names.value(row).to_string(), scores.value(row));
                        let previous = model.insert(id, value);
                        assert_eq!(
                            previous.is_some(),
                            change == ChangeType::UpdateAfter,
                            "{change:?} of key {id}"
                        );
                    }
                    ChangeType::UpdateBefore => assert!(model.contains_key(&id)),
                    ChangeType::Delete => assert!(model.remove(&id).is_some(), "-D of key {id}"),
                    ChangeType::AppendOnly => panic!("a changelog holds no +A rows"),
                }
            }
        }
    }
    changes
}

/// 300 inserts, in batches that span all buckets; then updates of every third key, an
/// unchanged row (no changelog), deletes of every fifth key and of a missing one, and a key
/// updated twice in one request. Returns the table they make.
async fn write_history(writer: &UpsertWriter) -> Model {
    let schema = writer.table().schema.arrow().clone();
    let mut model = Model::new();
    for first in (0..300).step_by(50) {
        let rows: Vec<(i64, String, i64)> =
            (first..first + 50).map(|id| (id, format!("user-{id}"), id * 10)).collect();
        let refs: Vec<(i64, &str, i64)> =
            rows.iter().map(|(id, name, score)| (*id, name.as_str(), *score)).collect();
        let acks = writer.upsert(&users(&schema, &refs)).await.unwrap();
        assert_eq!(acks.iter().map(|ack| ack.changelog_record_count).sum::<u32>(), 50);
        for (id, name, score) in rows {
            model.insert(id, (name, score));
        }
    }
    let updates: Vec<(i64, &str, i64)> =
        (0..300).step_by(3).map(|id| (id, "renamed", -id)).collect();
    writer.upsert(&users(&schema, &updates)).await.unwrap();
    for (id, name, score) in &updates {
        model.insert(*id, (name.to_string(), *score));
    }
    let unchanged = writer.upsert(&users(&schema, &[(1, "user-1", 10)])).await.unwrap();
    assert_eq!(unchanged.iter().map(|ack| ack.changelog_record_count).sum::<u32>(), 0);
    let deletes: Vec<(i64, &str, i64)> =
        (0..300).step_by(5).chain([10_000]).map(|id| (id, "", 0)).collect();
    writer.delete(&users(&schema, &deletes)).await.unwrap();
    for (id, _, _) in &deletes {
        model.remove(id);
    }
    let twice = users(&schema, &[(7, "first", 1), (7, "second", 2), (8, "gone", 0)]);
    let kinds = [RowKind::Upsert, RowKind::Upsert, RowKind::Delete];
    writer.write(&twice, Some(&kinds)).await.unwrap();
    model.insert(7, ("second".into(), 2));
    model.remove(&8);
    model
}

#[test]
fn upserts_lookups_changelog_and_snapshots_over_quic_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let node = start(config.clone()).unwrap();
    let bootstrap = node.shard_addresses()[0];
    let runtime = client_runtime();
    let path = runtime.block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        let path = create(&connection, "users", &[]).await;
        let writer = UpsertWriter::new(&connection, &path, UpsertOptions::default()).await.unwrap();
        let schema = writer.table().schema.arrow().clone();
        let mut model = write_history(&writer).await;

        let lookuper = Lookuper::new(&connection, &path, None).await.unwrap();
        assert_eq!(lookup_all(&lookuper, 300).await, model, "lookups see every acked write");
        let (scanned, snapshot_offsets) = scan_all(&connection, &path).await;
        assert_eq!(scanned, model, "the snapshot scan is the table");

        // The changelog from the start replays into the table, with the expected changes.
        let mut replayed = Model::new();
        let changes = follow_changelog(&connection, &path, &[0, 0, 0], &mut replayed).await;
        assert_eq!(replayed, model, "the changelog replayed is the table");
        use ChangeType::{Delete as D, Insert as I, UpdateAfter as UA, UpdateBefore as UB};
        assert_eq!(changes[&1], vec![I], "an unchanged upsert writes no changelog");
        assert_eq!(changes[&3], vec![I, UB, UA]);
        assert_eq!(changes[&5], vec![I, D]);
        assert_eq!(changes[&15], vec![I, UB, UA, D]);
        // Two rows of one key in one request: the second merges with the first.
        assert_eq!(changes[&7], vec![I, UB, UA, UB, UA]);
        assert_eq!(changes[&8], vec![I, D]);
        assert!(!changes.contains_key(&10_000), "deleting a missing key changes nothing");

        // Stream-table duality: the snapshot plus the changelog after its offset is the table
        // after later writes.
        writer.upsert(&users(&schema, &[(1000, "late", 1), (2, "late", 2)])).await.unwrap();
        writer.delete(&users(&schema, &[(4, "", 0)])).await.unwrap();
        model.insert(1000, ("late".into(), 1));
        model.insert(2, ("late".into(), 2));
        model.remove(&4);
        let mut rebuilt = scanned.clone();
        follow_changelog(&connection, &path, &snapshot_offsets, &mut rebuilt).await;
        assert_eq!(rebuilt, model, "snapshot + changelog after its offset = the table");

        // Prefix lookup (the bucket key is the whole key here): one row per prefix.
        let found =
            lookuper.prefix_lookup(&keys(lookuper.prefix_schema(), &[2, 4, 1000])).await.unwrap();
        assert_eq!(found.key_index, vec![0, 2]);
        connection.close().await;
        path
    });
    drop(node);

    // After a restart: recovered from the KV snapshot and the changelog after it.
    let node = start(config).unwrap();
    let bootstrap = node.shard_addresses()[1];
    runtime.block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        let (scanned, _) = scan_all(&connection, &path).await;
        let lookuper = Lookuper::new(&connection, &path, Some(&["score", "id"])).await.unwrap();
        let found = lookuper.lookup(&keys(lookuper.key_schema(), &[2, 3, 4])).await.unwrap();
        assert_eq!(found.key_index, vec![0, 1]);
        assert_eq!(found.rows.num_columns(), 2, "projected to id and score");
        let scores = found.rows.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!((scores.value(0), scores.value(1)), (2, -3));
        let mut replayed = Model::new();
        follow_changelog(&connection, &path, &[0, 0, 0], &mut replayed).await;
        assert_eq!(scanned, replayed, "after a restart the KV equals the changelog replayed");
        assert_eq!(scanned.len(), 300 - 60 - 2 + 1, "inserts - deletes - keys 4, 8 + key 1000");
        connection.close().await;
    });
}

fn server_code(result: Result<impl std::fmt::Debug, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server(error)) => error.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Tables the node refuses: an unknown merge engine, a versioned one without a version
/// column, a sum of strings; and an upsert writer on a log table.
async fn refuse_bad_definitions(connection: &Connection) {
    let admin = Admin::new(connection.clone());
    let aggregation = ("table.merge-engine", "aggregation");
    for (properties, what) in [
        (vec![("table.merge-engine", "newest")], "unknown merge engine"),
        (vec![("table.merge-engine", "versioned")], "versioned without a version column"),
        (vec![aggregation, ("fields.name.agg", "sum")], "sum of a string"),
    ] {
        let definition = users_definition(1, &properties);
        let answer = admin.create_table(&TablePath::new("default", "bad"), definition, false).await;
        assert_eq!(server_code(answer), ErrorCode::InvalidTableDefinition, "{what}");
    }
    let log_table = TablePath::new("default", "plain");
    let definition = TableDefinition {
        schema: "id BIGINT NOT NULL, name STRING, score BIGINT".into(),
        bucket_count: 1,
        ..TableDefinition::default()
    };
    admin.create_table(&log_table, definition, false).await.unwrap();
    let answer = UpsertWriter::new(connection, &log_table, UpsertOptions::default()).await;
    assert!(matches!(answer, Err(ClientError::Invalid(_))), "upsert writer on a log table");
}

/// Sends one upsert of key 1 (score 100) twice with the same writer id and sequence, and
/// checks that the second is a duplicate with the first's offset: returns the request.
async fn send_twice(connection: &Connection, table: &Table) -> UpsertRequest {
    let schema = table.schema.arrow().clone();
    let bucket = ufer_wire::bucketing::buckets_of_rows(
        &users(&schema, &[(1, "a", 100)]),
        &[0],
        table.bucket_count(),
    )
    .unwrap()[0];
    let address = table.bucket_addresses[bucket as usize];
    let mut builder = LogBatchBuilder::new(table.schema.clone(), BatchOptions::default()).unwrap();
    // A writer id the node gave out (it refuses any other).
    let catalog = connection.catalog_address().await.unwrap();
    let init = connection.call(catalog, &InitWriterRequest, &[], Duration::ZERO).await.unwrap();
    let stamp = WriterStamp { writer_id: init.body.writer_id, batch_sequence: 0 };
    let batch = builder.build(&users(&schema, &[(1, "a", 100)]), None, stamp).unwrap();
    let request = UpsertRequest {
        table_id: table.info.table_id,
        bucket,
        acks: Acks::All,
        timeout_ms: 10_000,
        target_columns: None,
    };
    let first = connection.call(address, &request, &batch, Duration::ZERO).await.unwrap();
    let retry = connection.call(address, &request, &batch, Duration::ZERO).await.unwrap();
    assert!(!first.body.duplicate && retry.body.duplicate);
    assert_eq!(retry.body.changelog_offset, first.body.changelog_offset);
    request
}

/// A batch of `table` whose row has a null key. The builder takes a null in the NOT NULL key
/// column (IPC does not check it); the node must refuse the batch.
fn null_key_batch(table: &Table) -> Vec<u8> {
    let schema = table.schema.arrow().clone();
    let mut nullable_key = users(&schema, &[(3, "x", 1)]);
    let ids: Arc<dyn Array> = Arc::new(Int64Array::from(vec![None::<i64>]));
    nullable_key = RecordBatch::try_new_with_options(
        Arc::new(arrow_schema::Schema::new(
            schema
                .fields()
                .iter()
                .map(|field| field.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        )),
        vec![ids, nullable_key.column(1).clone(), nullable_key.column(2).clone()],
        &Default::default(),
    )
    .unwrap();
    LogBatchBuilder::new(table.schema.clone(), BatchOptions::default())
        .unwrap()
        .build(&nullable_key, None, WriterStamp::NONE)
        .unwrap()
}

#[test]
fn aggregation_retries_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    let bootstrap = node.shard_addresses()[0];
    client_runtime().block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        let path = create(
            &connection,
            "totals",
            &[("table.merge-engine", "aggregation"), ("fields.score.agg", "sum")],
        )
        .await;
        let writer = UpsertWriter::new(&connection, &path, UpsertOptions::default()).await.unwrap();
        let schema = writer.table().schema.arrow().clone();
        for _ in 0..3 {
            writer.upsert(&users(&schema, &[(1, "a", 5), (2, "b", 1)])).await.unwrap();
        }
        // A request sent twice with the same writer id and sequence is applied once.
        let table = writer.table().clone();
        let request = send_twice(&connection, &table).await;
        let bucket = request.bucket;
        let lookuper = Lookuper::new(&connection, &path, None).await.unwrap();
        let found = lookuper.lookup(&keys(lookuper.key_schema(), &[1, 2])).await.unwrap();
        let scores = found.rows.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!((scores.value(0), scores.value(1)), (115, 3), "summed, the retry once");

        // Bad input: typed errors, nothing applied.
        let null_key = null_key_batch(&table);
        let request_bucket_0 = UpsertRequest { bucket: 0, ..request.clone() };
        let answer = connection
            .call(table.bucket_addresses[0], &request_bucket_0, &null_key, Duration::ZERO)
            .await;
        let code = server_code(answer);
        assert!(
            matches!(code, ErrorCode::InvalidRow | ErrorCode::InvalidBatch),
            "null key: {code:?}"
        );
        let wrong_bucket = UpsertRequest { bucket: (bucket + 1) % 3, ..request.clone() };
        let address = table.bucket_addresses[wrong_bucket.bucket as usize];
        let unstamped = LogBatchBuilder::new(table.schema.clone(), BatchOptions::default())
            .unwrap()
            .build(&users(&schema, &[(1, "a", 100)]), None, WriterStamp::NONE)
            .unwrap();
        let answer = connection.call(address, &wrong_bucket, &unstamped, Duration::ZERO).await;
        assert_eq!(server_code(answer), ErrorCode::InvalidRow, "a row of another bucket");
        let produce = ProduceRequest {
            table_id: table.info.table_id,
            bucket,
            acks: Acks::All,
            timeout_ms: 1000,
        };
        let answer = connection.call(address, &produce, &unstamped, Duration::ZERO).await;
        assert_eq!(server_code(answer), ErrorCode::WrongTableKind, "produce to a PK table");
        let partial =
            UpsertOptions { target_columns: Some(vec!["name".into()]), ..UpsertOptions::default() };
        let partial = UpsertWriter::new(&connection, &path, partial).await.unwrap();
        let answer = partial.upsert(&users(&schema, &[(1, "z", 0)])).await;
        assert_eq!(server_code(answer), ErrorCode::InvalidRow, "a partial update without key");
        let found = lookuper.lookup(&keys(lookuper.key_schema(), &[1])).await.unwrap();
        let names = found.rows.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(names.value(0), "a", "nothing applied half-way");

        refuse_bad_definitions(&connection).await;
        connection.close().await;
    });
}

#[test]
fn a_writer_whose_last_write_changed_nothing_goes_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::test_min(dir.path().to_path_buf());
    config.base_port = ufer_tests::free_ports(2);
    let node = start(config.clone()).unwrap();
    let bootstrap = node.shard_addresses()[0];
    let runtime = client_runtime();
    let connection = runtime
        .block_on(async { Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap() });
    let (writer, schema) = runtime.block_on(async {
        let path = create(&connection, "quiet", &[]).await;
        let writer = UpsertWriter::new(&connection, &path, UpsertOptions::default()).await.unwrap();
        let schema = writer.table().schema.arrow().clone();
        writer.upsert(&users(&schema, &[(1, "a", 1)])).await.unwrap();
        // Changes nothing: its sequence is noted in memory only.
        let acks = writer.upsert(&users(&schema, &[(1, "a", 1)])).await.unwrap();
        assert_eq!(acks[0].changelog_record_count, 0);
        (writer, schema)
    });
    node.shutdown().unwrap();
    let node = start(config).unwrap();
    runtime.block_on(async {
        let acks = writer.upsert(&users(&schema, &[(1, "b", 2)])).await.unwrap();
        assert_eq!(acks[0].changelog_record_count, 2, "-U and +U after the restart");
        let lookuper = Lookuper::new(&connection, &writer.table().info.path, None).await.unwrap();
        let found = lookuper.lookup(&keys(lookuper.key_schema(), &[1])).await.unwrap();
        let names = found.rows.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(names.value(0), "b");
        connection.close().await;
    });
    node.shutdown().unwrap();
}
