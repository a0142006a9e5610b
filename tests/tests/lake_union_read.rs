//! SQL over ufer tables: a lake-enabled log table is its Iceberg snapshot plus the live log
//! after the tiered offsets — rows produced after the last tiering round are included, no
//! row twice — and counts and aggregates equal a direct scan of the log; projections and
//! filters give the rows they should. A primary-key table is its current rows.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use ufer_node::config::LakeConfig;
use ufer_node::sql::{LakeLocation, SqlEngine};
use ufer_node::{start, NodeConfig};
use ufer_tests::client_runtime;
use ufer_tests::lake::{column, read_lake, wait_until_tiered, write_user_history};
use ufer_wire::client::{
    Admin, AppendOptions, AppendWriter, ClientConfig, Connection, LogScanner, ScanOptions,
    StartFrom,
};
use ufer_wire::protocol::messages::{TableDefinition, TablePath};

/// Rows `first..first + count`: `id`, `kind` (one of 5), `amount` (SMALLINT, widened in
/// the lake), `note` (null every 4th).
async fn produce(connection: &Connection, path: &TablePath, first: i64, count: i64) {
    let writer =
        AppendWriter::new(connection.clone(), path, AppendOptions::default()).await.unwrap();
    let schema = writer.table().schema.arrow().clone();
    for start in (first..first + count).step_by(500) {
        let ids: Vec<i64> = (start..(start + 500).min(first + count)).collect();
        let kinds: Vec<String> = ids.iter().map(|id| format!("k{}", id % 5)).collect();
        let amounts: Vec<i16> = ids.iter().map(|id| (id % 1000) as i16 - 300).collect();
        let notes: Vec<Option<String>> =
            ids.iter().map(|id| (id % 4 != 0).then(|| format!("n{id}"))).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(kinds)),
                Arc::new(arrow_array::Int16Array::from(amounts)),
                Arc::new(StringArray::from(notes)),
            ],
        )
        .unwrap();
        writer.append(batch).await.unwrap();
        // A batch per append: one fetch of the live tail then returns several batches of a
        // bucket at once.
        writer.flush().await.unwrap();
    }
    writer.close().await.unwrap();
}

/// Every row of the log, read directly: id → (kind, amount, has note).
async fn scan_log(
    connection: &Connection,
    path: &TablePath,
    rows: usize,
) -> BTreeMap<i64, (String, i64, bool)> {
    let mut scanner =
        LogScanner::new(connection.clone(), path, ScanOptions::default()).await.unwrap();
    scanner.subscribe_all(StartFrom::Earliest).await.unwrap();
    let mut seen = BTreeMap::new();
    while seen.len() < rows {
        for scanned in scanner.poll().await.unwrap() {
            let batch = &scanned.rows;
            let ids = column::<Int64Array>(batch, "id");
            let kinds = column::<StringArray>(batch, "kind");
            let amounts = column::<arrow_array::Int16Array>(batch, "amount");
            let notes = column::<StringArray>(batch, "note");
            for row in 0..batch.num_rows() {
                let value = (
                    kinds.value(row).to_string(),
                    i64::from(amounts.value(row)),
                    notes.is_valid(row),
                );
                assert!(seen.insert(ids.value(row), value).is_none());
            }
        }
    }
    seen
}

fn int(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|batch| {
            let values = arrow_cast::cast(
                batch.column_by_name(name).unwrap(),
                &arrow_schema::DataType::Int64,
            )
            .unwrap();
            values.as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()
        })
        .collect()
}

fn strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| {
            let values = column::<StringArray>(batch, name);
            (0..values.len()).map(|row| values.value(row).to_string()).collect::<Vec<_>>()
        })
        .collect()
}

/// Aggregates per group, over the lake and the live tail, equal the `log`'s.
async fn assert_groups_as_in_the_log(engine: &SqlEngine, log: &BTreeMap<i64, (String, i64, bool)>) {
    let (_, grouped) = engine
        .query(
            "SELECT kind, count(*) AS n, sum(amount) AS total, min(amount) AS low, \
             max(id) AS last FROM default.payments GROUP BY kind ORDER BY kind",
        )
        .await
        .unwrap();
    let mut expected: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    for (id, (kind, amount, _)) in log {
        let entry = expected.entry(kind.clone()).or_insert((0, 0, i64::MAX, i64::MIN));
        entry.0 += 1;
        entry.1 += amount;
        entry.2 = entry.2.min(*amount);
        entry.3 = entry.3.max(*id);
    }
    assert_eq!(strings(&grouped, "kind"), expected.keys().cloned().collect::<Vec<_>>());
    assert_eq!(int(&grouped, "n"), expected.values().map(|value| value.0).collect::<Vec<_>>());
    assert_eq!(int(&grouped, "total"), expected.values().map(|value| value.1).collect::<Vec<_>>());
    assert_eq!(int(&grouped, "low"), expected.values().map(|value| value.2).collect::<Vec<_>>());
    assert_eq!(int(&grouped, "last"), expected.values().map(|value| value.3).collect::<Vec<_>>());
}

#[test]
fn sql_sees_the_lake_and_the_live_tail_once_and_agrees_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let path = TablePath::new("default", "payments");
    let runtime = client_runtime();
    let tiered_rows = 5_000i64;
    let live_rows = 1_234i64;

    // Rows produced, then tiered by the round that runs when the node starts again; the
    // freshness (an hour) keeps later rows out of the lake.
    let node = start(config.clone()).unwrap();
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, kind STRING, amount SMALLINT, note STRING".into(),
            bucket_count: 3,
            bucket_key: vec!["id".into()],
            properties: vec![
                ("lake.enabled".into(), "true".into()),
                ("lake.freshness.ms".into(), "3600000".into()),
            ],
            ..TableDefinition::default()
        };
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
        produce(&connection, &path, 0, tiered_rows).await;
        connection.close().await;
    });
    node.shutdown().unwrap();
    let node = start(config.clone()).unwrap();
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[1], dir.path())).unwrap();
        let admin = Admin::new(connection.clone());
        wait_until_tiered(&admin, &path, tiered_rows as u64, Duration::from_secs(60)).await;
        produce(&connection, &path, tiered_rows, live_rows).await;
        let buckets = admin.describe_table(&path).await.unwrap().buckets;
        let tiered: u64 = buckets.iter().map(|bucket| bucket.tiered_offset.unwrap()).sum();
        let durable: u64 = buckets.iter().map(|bucket| bucket.high_watermark).sum();
        assert_eq!((tiered, durable), (tiered_rows as u64, (tiered_rows + live_rows) as u64));
        let lake = read_lake(node.data_dir(), "default", "payments").await.unwrap();
        assert_eq!(lake.row_count() as i64, tiered_rows, "the rest is only in the log");

        let engine = SqlEngine::new(
            connection.clone(),
            LakeLocation::of_node(&LakeConfig::default(), node.data_dir()),
        );
        let log = scan_log(&connection, &path, (tiered_rows + live_rows) as usize).await;

        // Counts: every row once.
        let (_, counted) = engine
            .query("SELECT count(*) AS n, count(DISTINCT id) AS ids, count(note) AS notes FROM payments")
            .await
            .unwrap();
        let notes = log.values().filter(|(_, _, note)| *note).count() as i64;
        assert_eq!(int(&counted, "n"), vec![tiered_rows + live_rows]);
        assert_eq!(int(&counted, "ids"), vec![tiered_rows + live_rows]);
        assert_eq!(int(&counted, "notes"), vec![notes]);

        assert_groups_as_in_the_log(&engine, &log).await;

        // A projection with a filter that spans both sides.
        let (schema, filtered) = engine
            .query("SELECT id FROM payments WHERE id % 97 = 3 AND amount > 0 ORDER BY id")
            .await
            .unwrap();
        assert_eq!(schema.fields().len(), 1);
        let wanted: Vec<i64> = log
            .iter()
            .filter(|(id, (_, amount, _))| *id % 97 == 3 && *amount > 0)
            .map(|(id, _)| *id)
            .collect();
        assert!(wanted.iter().any(|id| *id >= tiered_rows) && wanted.iter().any(|id| *id < tiered_rows));
        assert_eq!(int(&filtered, "id"), wanted);

        // Unknown tables and bad SQL are errors, not panics.
        assert!(engine.query("SELECT * FROM nowhere").await.unwrap_err().to_string().contains("nowhere"));
        assert!(engine.query("SELEC 1").await.is_err());
        connection.close().await;
    });
    node.shutdown().unwrap();
}

#[test]
fn sql_on_a_primary_key_table_sees_its_current_rows() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    let path = TablePath::new("default", "users");
    client_runtime().block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, name STRING".into(),
            bucket_count: 2,
            primary_key: vec!["id".into()],
            ..TableDefinition::default()
        };
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
        write_user_history(&connection, &path).await;
        let engine = SqlEngine::new(
            connection.clone(),
            LakeLocation::of_node(&LakeConfig::default(), node.data_dir()),
        );
        let (_, rows) = engine.query("SELECT id, name FROM users ORDER BY id").await.unwrap();
        assert_eq!(int(&rows, "id"), vec![1, 2]);
        assert_eq!(strings(&rows, "name"), vec!["ann".to_string(), "bobby".to_string()]);
        connection.close().await;
    });
    node.shutdown().unwrap();
}
