//! `ufer demo`: a guided tour on a throw-away node in a temporary directory.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use ufer_wire::client::{
    Admin, AppendOptions, AppendWriter, ClientConfig, Connection, LogScanner, ScanOptions,
    StartFrom,
};
use ufer_wire::protocol::messages::{TableDefinition, TablePath};

use crate::config::NodeConfig;

const DEMO_ROWS: i64 = 100_000;

pub fn run() -> Result<(), String> {
    let dir =
        tempfile::tempdir().map_err(|error| format!("making a temporary directory: {error}"))?;
    let mut config = NodeConfig::production();
    config.data_dir = dir.path().to_path_buf();
    config.base_port = 0;
    config.pin_shards = false;
    let node = crate::start(config).map_err(|error| error.to_string())?;
    let addresses = node.shard_addresses();
    println!(
        "1. Started a node in {} with {} shard(s), each with its own QUIC endpoint:",
        dir.path().display(),
        addresses.len()
    );
    for (shard, address) in addresses.iter().enumerate() {
        println!("     shard {shard}: {address}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let result = runtime.block_on(tour(addresses[0], dir.path()));
    node.shutdown().map_err(|error| error.to_string())?;
    println!("7. Stopped the node (requests finished, logs synced) and removed its directory.");
    result
}

/// The tour's error: what the client says.
fn fail(error: ufer_wire::client::ClientError) -> String {
    error.to_string()
}

async fn tour(bootstrap: std::net::SocketAddr, data_dir: &std::path::Path) -> Result<(), String> {
    let connection = Connection::new(ClientConfig::local(bootstrap, data_dir)).map_err(fail)?;
    let admin = Admin::new(connection.clone());
    let path = TablePath::new("default", "trades");
    let schema =
        "id BIGINT NOT NULL, symbol STRING, price DOUBLE, quantity BIGINT, at TIMESTAMP(3)";
    let definition = TableDefinition {
        schema: schema.into(),
        bucket_count: 4,
        bucket_key: vec!["symbol".into()],
        ..TableDefinition::default()
    };
    admin.create_table(&path, definition, false).await.map_err(fail)?;
    println!("2. Created table {path} with 4 buckets, rows placed by the hash of `symbol`:\n     {schema}");

    write_trades(&connection, &path).await?;

    let description = admin.describe_table(&path).await.map_err(fail)?;
    println!("4. Each bucket's log:");
    for bucket in &description.buckets {
        println!(
            "     bucket {}: offsets {}..{}, {} bytes",
            bucket.bucket, bucket.log_start_offset, bucket.high_watermark, bucket.size_bytes
        );
    }

    for (step, columns) in [(5, None), (6, Some(vec!["symbol".to_string(), "price".to_string()]))] {
        read_back(&connection, &path, step, columns).await?;
    }
    connection.close().await;
    Ok(())
}

/// Step 3: [`DEMO_ROWS`] trades in ten batches, waiting until all are durable.
async fn write_trades(connection: &Connection, path: &TablePath) -> Result<(), String> {
    let writer = AppendWriter::new(connection.clone(), path, AppendOptions::default())
        .await
        .map_err(fail)?;
    let arrow = writer.table().schema.arrow().clone();
    let started = Instant::now();
    let mut handles = Vec::new();
    for chunk in 0..10 {
        let ids: Vec<i64> = (chunk * DEMO_ROWS / 10..(chunk + 1) * DEMO_ROWS / 10).collect();
        let batch = trades(&arrow, &ids).map_err(|error| error.to_string())?;
        handles.push(writer.append(batch).await.map_err(fail)?);
    }
    writer.flush().await.map_err(fail)?;
    for handle in handles {
        handle.wait().await.map_err(fail)?;
    }
    writer.close().await.map_err(fail)?;
    println!(
        "3. Wrote {DEMO_ROWS} rows in {:?}, acknowledged once durable (fdatasync'd).",
        started.elapsed()
    );
    Ok(())
}

/// The trades with ids `ids`, their symbol, price, quantity and time made up from the id.
fn trades(
    arrow: &arrow_schema::SchemaRef,
    ids: &[i64],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let symbols = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI"];
    RecordBatch::try_new(
        arrow.clone(),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(
                ids.iter().map(|id| symbols[*id as usize % symbols.len()]).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                ids.iter().map(|id| 100.0 + (*id % 1000) as f64 / 10.0).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(ids.iter().map(|id| 1 + id % 50).collect::<Vec<_>>())),
            Arc::new(TimestampMillisecondArray::from(
                ids.iter().map(|id| 1_767_225_600_000 + id).collect::<Vec<_>>(),
            )),
        ],
    )
}

/// Steps 5 and 6: reads the table from the start, all `columns` or all of them, and prints
/// what crossed the network and the first rows.
async fn read_back(
    connection: &Connection,
    path: &TablePath,
    step: u32,
    columns: Option<Vec<String>>,
) -> Result<(), String> {
    let options = ScanOptions { columns: columns.clone(), ..ScanOptions::default() };
    let mut scanner = LogScanner::new(connection.clone(), path, options).await.map_err(fail)?;
    scanner.subscribe_all(StartFrom::Earliest).await.map_err(fail)?;
    let mut rows = 0usize;
    let started = Instant::now();
    let mut sample = None;
    while rows < DEMO_ROWS as usize {
        let polled = scanner.poll().await.map_err(fail)?;
        if polled.is_empty() {
            break;
        }
        for scanned in polled {
            rows += scanned.rows.num_rows();
            sample.get_or_insert_with(|| scanned.rows.slice(0, 3));
        }
    }
    let bytes = scanner.fetched_bytes();
    match columns {
        None => println!("{step}. Read all {rows} rows back ({bytes} bytes of batches crossed the network) in {:?}. The first rows:", started.elapsed()),
        Some(columns) => println!(
            "{step}. Read only {} with the projection done on the node: {rows} rows, only {bytes} bytes of batches, in {:?}:",
            columns.join(", "),
            started.elapsed()
        ),
    }
    if let Some(sample) = sample {
        let table = arrow_cast::pretty::pretty_format_batches(&[sample])
            .map_err(|error| error.to_string())?;
        println!("{table}");
    }
    Ok(())
}
