//! Lake tiering end to end: a real node tiers a lake-enabled table (every column type) to an
//! Apache Iceberg table, and pyiceberg — a reader that is not ours — reads back every row
//! with the right values and Iceberg types from the same sqlite catalog and warehouse. A
//! primary-key table's changelog arrives with its change types. Retention never deletes
//! records that are not in the lake yet.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::SchemaRef;
use ufer_node::config::LakeConfig;
use ufer_node::{start, NodeConfig};
use ufer_tests::client_runtime;
use ufer_tests::lake::{
    column, pyiceberg_python, read_lake, wait_until_tiered, write_user_history,
};
use ufer_wire::client::{Admin, AppendOptions, AppendWriter, ClientConfig, Connection};
use ufer_wire::protocol::messages::{BucketStatus, TableDefinition, TablePath};

/// Every column type a table may have.
const ALL_TYPES: &str = "id BIGINT NOT NULL, tiny TINYINT, small SMALLINT, n INT, f FLOAT, \
    d DOUBLE, price DECIMAL(10, 2), name STRING, raw BYTES, code BINARY(4), day DATE, \
    t TIME(3), ts TIMESTAMP(6), ts_ltz TIMESTAMP_LTZ(3), tags ARRAY<STRING>, \
    attrs MAP<STRING, INT>, point ROW<x DOUBLE, y DOUBLE NOT NULL>";

/// The Iceberg schema pyiceberg must see, column by column.
const EXPECTED_ICEBERG_SCHEMA: [&str; 20] = [
    "id: required long",
    "tiny: optional int",
    "small: optional int",
    "n: optional int",
    "f: optional float",
    "d: optional double",
    "price: optional decimal(10, 2)",
    "name: optional string",
    "raw: optional binary",
    "code: optional fixed[4]",
    "day: optional date",
    "t: optional time",
    "ts: optional timestamp",
    "ts_ltz: optional timestamptz",
    "tags: optional list<string>",
    "attrs: optional map<string, int>",
    "point: optional struct<24: x: optional double, 25: y: required double>",
    "__bucket: required int",
    "__offset: required long",
    "__timestamp: required timestamptz",
];

/// Rows `first..first + count` of [`ALL_TYPES`], with nulls, from JSON lines.
fn all_types_rows(schema: &SchemaRef, first: i64, count: i64) -> RecordBatch {
    let mut lines = String::new();
    for id in first..first + count {
        let name = if id % 5 == 0 { "null".to_string() } else { format!("\"name-{id}\"") };
        let tags =
            if id % 7 == 0 { "null".to_string() } else { format!("[\"a{id}\", null, \"b\"]") };
        lines.push_str(&format!(
            concat!(
                "{{\"id\":{id},\"tiny\":{tiny},\"small\":{small},\"n\":{n},\"f\":{f},\"d\":{d},",
                "\"price\":\"{price}\",\"name\":{name},\"raw\":\"{raw:x}\",\"code\":\"{code:08x}\",",
                "\"day\":\"2024-02-{day:02}\",\"t\":\"12:34:56.{ms:03}\",",
                "\"ts\":\"2024-05-01T12:00:00.{us:06}\",\"ts_ltz\":{ltz},",
                "\"tags\":{tags},\"attrs\":{{\"k{id}\":{n},\"z\":null}},\"point\":{{\"x\":{f},\"y\":{d}}}}}\n"
            ),
            id = id,
            tiny = (id % 256) - 128,
            small = (id % 65_536) - 32_768,
            n = id * 3 - 5_000,
            f = id as f32 * 0.5,
            d = id as f64 * 0.25 - 7.0,
            price = format!("{}.{:02}", id, id % 100),
            name = name,
            raw = 0xAB_0000 + id,
            code = id * 7,
            day = 1 + id % 28,
            ms = id % 1000,
            us = id % 1_000_000,
            // Epoch milliseconds: arrow-json parses zone names only with chrono-tz.
            ltz = 1_714_564_800_000 + id,
            tags = tags,
        ));
    }
    // arrow-json parses zone names ("UTC") only with chrono-tz: read TIMESTAMP_LTZ as an
    // offset zone, then label it as the table's.
    let ltz = schema.index_of("ts_ltz").unwrap();
    let mut fields: Vec<arrow_schema::Field> =
        schema.fields().iter().map(|field| field.as_ref().clone()).collect();
    fields[ltz] = fields[ltz].clone().with_data_type(arrow_schema::DataType::Timestamp(
        arrow_schema::TimeUnit::Millisecond,
        Some("+00:00".into()),
    ));
    let mut reader = arrow_json::ReaderBuilder::new(Arc::new(arrow_schema::Schema::new(fields)))
        .with_batch_size(count as usize + 1)
        .build(Cursor::new(lines.into_bytes()))
        .unwrap();
    let parsed = reader.next().unwrap().unwrap();
    let mut columns = parsed.columns().to_vec();
    let stamps = column::<arrow_array::TimestampMillisecondArray>(&parsed, "ts_ltz");
    columns[ltz] = Arc::new(stamps.clone().with_timezone("UTC"));
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

/// Sorts `batch` by its `id` column.
fn sorted_by_id(batch: &RecordBatch) -> RecordBatch {
    let ids = column::<Int64Array>(batch, "id");
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by_key(|row| ids.value(*row as usize));
    arrow_select::take::take_record_batch(batch, &UInt32Array::from(order)).unwrap()
}

/// Connects with `client`, creates `path` (database `shop`), a lake table of every type,
/// produces `rows` rows (in batches of 1 000) into it and waits until they are tiered:
/// returns them, and each bucket's status then.
async fn produce_all_types(
    client: ClientConfig,
    path: &TablePath,
    rows: i64,
) -> (RecordBatch, Vec<BucketStatus>) {
    let connection = Connection::new(client).unwrap();
    let admin = Admin::new(connection.clone());
    admin.create_database("shop", false).await.unwrap();
    let definition = TableDefinition {
        schema: ALL_TYPES.into(),
        bucket_count: 3,
        bucket_key: vec!["id".into()],
        properties: vec![
            ("lake.enabled".into(), "true".into()),
            ("lake.freshness.ms".into(), "200".into()),
        ],
        ..TableDefinition::default()
    };
    admin.create_table(path, definition, false).await.unwrap();
    let writer =
        AppendWriter::new(connection.clone(), path, AppendOptions::default()).await.unwrap();
    let schema = writer.table().schema.arrow().clone();
    let mut produced = Vec::new();
    for part in 0..rows / 1_000 {
        let batch = all_types_rows(&schema, part * 1_000, 1_000);
        writer.append(batch.clone()).await.unwrap();
        produced.push(batch);
    }
    writer.flush().await.unwrap();
    writer.close().await.unwrap();
    let buckets = wait_until_tiered(&admin, path, rows as u64, Duration::from_secs(60)).await;
    connection.close().await;
    (arrow_select::concat::concat_batches(&schema, &produced).unwrap(), buckets)
}

/// Every value as produced: each column `read` from the lake, cast back to the table's type
/// (the lake widens TINYINT/SMALLINT to int and times to microseconds), equals the rows.
fn assert_values_as_produced(read: &RecordBatch, produced: &RecordBatch) {
    for (index, field) in produced.schema().fields().iter().enumerate() {
        let lake_column = read.column_by_name(field.name()).unwrap();
        let back: ArrayRef = arrow_cast::cast(lake_column, field.data_type()).unwrap();
        let expected = produced.column(index);
        assert_eq!(back.to_data().len(), expected.len());
        for row in 0..expected.len() {
            assert_eq!(
                back.slice(row, 1).to_data(),
                expected.slice(row, 1).to_data(),
                "column {} row {row}",
                field.name()
            );
        }
    }
}

/// Each bucket's offsets are in `read` exactly once and without a gap, up to its high
/// watermark.
fn assert_each_offset_once(read: &RecordBatch, buckets: &[BucketStatus]) {
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let read_buckets = column::<arrow_array::Int32Array>(read, "__bucket");
    let read_offsets = column::<Int64Array>(read, "__offset");
    for row in 0..read.num_rows() {
        offsets.entry(read_buckets.value(row)).or_default().push(read_offsets.value(row));
    }
    for bucket in buckets {
        let mut seen = offsets.remove(&(bucket.bucket as i32)).unwrap_or_default();
        seen.sort_unstable();
        assert_eq!(seen, (0..bucket.high_watermark as i64).collect::<Vec<_>>());
    }
}

#[test]
fn pyiceberg_reads_back_every_row_and_type_of_a_tiered_table() {
    let python = pyiceberg_python();
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::test_min(dir.path().to_path_buf());
    config.log.segment_size_max_bytes = 64 * 1024;
    let node = start(config.clone()).unwrap();
    let runtime = client_runtime();
    let path = TablePath::new("shop", "orders");
    let first_round = 3_000i64;
    let client = ClientConfig::local(node.shard_addresses()[0], dir.path());
    let (produced, buckets) = runtime.block_on(produce_all_types(client, &path, first_round));

    // pyiceberg, from the same catalog and warehouse.
    let lake = LakeConfig::default();
    let data_dir = node.data_dir().to_path_buf();
    let out = dir.path().join("pyiceberg");
    let catalog_uri = format!("sqlite:///{}", data_dir.join("lake").join("catalog.db").display());
    let status = std::process::Command::new(&python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/python/read_lake.py"))
        .arg(&catalog_uri)
        .arg(lake.warehouse(&data_dir))
        .arg(&lake.catalog_name)
        .arg("shop.orders")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "pyiceberg failed to read the lake table");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    let schema: Vec<String> = report["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap().to_string())
        .collect();
    assert_eq!(schema, EXPECTED_ICEBERG_SCHEMA, "column names, order, nullability and types");
    assert_eq!(report["format_version"], 2);
    let expected_offsets: String = buckets
        .iter()
        .map(|bucket| format!("{}:{}", bucket.bucket, bucket.high_watermark))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(report["summary"]["ufer.tiered-offsets"], expected_offsets.as_str());

    let file = std::fs::File::open(out.with_extension("arrow")).unwrap();
    let reader = arrow_ipc::reader::FileReader::try_new(file, None).unwrap();
    let read_schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let read = sorted_by_id(&arrow_select::concat::concat_batches(&read_schema, &batches).unwrap());
    assert_eq!(read.num_rows() as i64, first_round, "every row once");
    assert_values_as_produced(&read, &produced);
    assert_each_offset_once(&read, &buckets);

    // Later rows arrive in a later round; iceberg-rust reads the same table.
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[1], dir.path())).unwrap();
        let admin = Admin::new(connection.clone());
        let writer =
            AppendWriter::new(connection.clone(), &path, AppendOptions::default()).await.unwrap();
        let schema = writer.table().schema.arrow().clone();
        writer.append(all_types_rows(&schema, first_round, 500)).await.unwrap();
        writer.flush().await.unwrap();
        writer.close().await.unwrap();
        wait_until_tiered(&admin, &path, first_round as u64 + 500, Duration::from_secs(60)).await;
        let lake = read_lake(&data_dir, "shop", "orders").await.unwrap();
        let mut ids = lake.ids();
        ids.sort_unstable();
        assert_eq!(ids, (0..first_round + 500).collect::<Vec<_>>());
        connection.close().await;
    });
    let metrics = node.lake_metrics().unwrap();
    assert_eq!(metrics.rows.load(std::sync::atomic::Ordering::Relaxed), first_round as u64 + 500);
    assert_eq!(metrics.errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    node.shutdown().unwrap();
}

#[test]
fn a_primary_key_tables_changelog_is_tiered_with_its_change_types() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let node = start(config).unwrap();
    let runtime = client_runtime();
    let path = TablePath::new("default", "users");
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let admin = Admin::new(connection.clone());
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, name STRING".into(),
            bucket_count: 1,
            primary_key: vec!["id".into()],
            properties: vec![
                ("lake.enabled".into(), "true".into()),
                ("lake.freshness.ms".into(), "100".into()),
            ],
            ..TableDefinition::default()
        };
        admin.create_table(&path, definition, false).await.unwrap();
        write_user_history(&connection, &path).await;
        wait_until_tiered(&admin, &path, 6, Duration::from_secs(60)).await;
        let lake = read_lake(node.data_dir(), "default", "users").await.unwrap();
        let mut rows = Vec::new();
        for batch in &lake.batches {
            let ids = column::<Int64Array>(batch, "id");
            let names = column::<StringArray>(batch, "name");
            let changes = column::<StringArray>(batch, "__change_type");
            let offsets = column::<Int64Array>(batch, "__offset");
            for row in 0..batch.num_rows() {
                rows.push((
                    offsets.value(row),
                    changes.value(row).to_string(),
                    ids.value(row),
                    names.value(row).to_string(),
                ));
            }
        }
        rows.sort();
        let expected: Vec<(i64, String, i64, String)> = [
            (0, "+I", 1, "ann"),
            (1, "+I", 2, "bob"),
            (2, "+I", 3, "cy"),
            (3, "-U", 2, "bob"),
            (4, "+U", 2, "bobby"),
            (5, "-D", 3, "cy"),
        ]
        .into_iter()
        .map(|(offset, change, id, name)| (offset, change.to_string(), id, name.to_string()))
        .collect();
        assert_eq!(rows, expected);
        connection.close().await;
    });
    node.shutdown().unwrap();
}

/// Creates `path`, with 16 KiB segments and retention (a lake table if `lake`), and
/// appends `rows` rows in 20 flushed batches, so it spans several segments.
async fn create_and_fill(connection: &Connection, path: &TablePath, lake: bool, rows: i64) {
    let mut properties = vec![
        ("segment.bytes".to_string(), "16384".to_string()),
        ("retention.bytes".to_string(), "16384".to_string()),
    ];
    if lake {
        properties.push(("lake.enabled".into(), "true".into()));
        properties.push(("lake.freshness.ms".into(), "100".into()));
    }
    let definition = TableDefinition {
        schema: "id BIGINT NOT NULL, name STRING".into(),
        bucket_count: 1,
        properties,
        ..TableDefinition::default()
    };
    Admin::new(connection.clone()).create_table(path, definition, false).await.unwrap();
    let writer =
        AppendWriter::new(connection.clone(), path, AppendOptions::default()).await.unwrap();
    let schema = writer.table().schema.arrow().clone();
    for part in 0..20 {
        let ids: Vec<i64> = (part * rows / 20..(part + 1) * rows / 20).collect();
        let names: Vec<String> = ids.iter().map(|id| format!("{id:0>40}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
        )
        .unwrap();
        writer.append(batch).await.unwrap();
        writer.flush().await.unwrap();
    }
    writer.close().await.unwrap();
}

#[test]
fn retention_keeps_what_is_not_in_the_lake_yet() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::test_min(dir.path().to_path_buf());
    config.retention_check_interval = Duration::from_millis(100);
    // A lake that cannot be reached: nothing gets tiered.
    let good_lake = config.lake.clone();
    config.lake.catalog_uri =
        Some(format!("sqlite:{}/missing/dir/catalog.db", dir.path().display()));
    let node = start(config.clone()).unwrap();
    let runtime = client_runtime();
    let lake_table = TablePath::new("default", "tiered");
    let plain_table = TablePath::new("default", "plain");
    let rows = 4_000i64;
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let admin = Admin::new(connection.clone());
        for (path, lake) in [(&lake_table, true), (&plain_table, false)] {
            create_and_fill(&connection, path, lake, rows).await;
        }
        // Retention has run several times: the plain table lost its oldest segments, the
        // lake table kept all of them.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let plain = admin.describe_table(&plain_table).await.unwrap().buckets[0].clone();
        assert!(plain.log_start_offset > 0, "retention runs: {plain:?}");
        let tiered = admin.describe_table(&lake_table).await.unwrap().buckets[0].clone();
        assert_eq!(tiered.log_start_offset, 0, "nothing tiered, nothing deleted: {tiered:?}");
        assert!(tiered.segment_count > 3, "{tiered:?}");
        connection.close().await;
    });
    assert!(node.lake_metrics().unwrap().errors.load(std::sync::atomic::Ordering::Relaxed) > 0);
    node.shutdown().unwrap();

    // With the lake back, everything is tiered first, and then retention deletes.
    config.lake = good_lake;
    let node = start(config).unwrap();
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let admin = Admin::new(connection.clone());
        wait_until_tiered(&admin, &lake_table, rows as u64, Duration::from_secs(60)).await;
        let lake = read_lake(node.data_dir(), "default", "tiered").await.unwrap();
        let mut ids = lake.ids();
        ids.sort_unstable();
        assert_eq!(
            ids,
            (0..rows).collect::<Vec<_>>(),
            "the lake has what retention may now delete"
        );
        let mut waited = 0;
        loop {
            let bucket = admin.describe_table(&lake_table).await.unwrap().buckets[0].clone();
            if bucket.log_start_offset > 0 {
                break;
            }
            waited += 1;
            assert!(waited < 500, "retention deletes tiered segments: {bucket:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        connection.close().await;
    });
    node.shutdown().unwrap();
}

#[test]
fn a_lake_table_needs_columns_iceberg_can_hold() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    client_runtime().block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let admin = Admin::new(connection.clone());
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, __offset BIGINT".into(),
            bucket_count: 1,
            properties: vec![("lake.enabled".into(), "true".into())],
            ..TableDefinition::default()
        };
        let error = admin
            .create_table(&TablePath::new("default", "bad"), definition, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("reserved"), "{error}");
        connection.close().await;
    });
    node.shutdown().unwrap();
}
