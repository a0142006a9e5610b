//! `ufer-bench lake`: the lake's figures, on a node in this process (it is stopped and
//! started again on the same data directory, which a child node cannot be here).
//!
//! - **Tiering throughput**: a lake table (the 20-column, 1 KiB-row table) is filled while
//!   its freshness (an hour) keeps the lake from tiering; the node is restarted, and the
//!   round every lake table gets at start tiers the backlog. Reported: MB/s of log batches
//!   (Arrow) in, over wall time and over the tiering thread's CPU time (`ufer-lake`, from
//!   `/proc`), i.e. per background core.
//! - **Freshness**: small batches produced every 100 ms (acks=all) into a table with the
//!   given freshness; per batch, the time from its acknowledgement until its shard reports
//!   it tiered (after the Iceberg commit). Percentiles over the run.
//! - **Union read**: a narrow table (5 columns) of `--union-rows` rows, 90 % tiered and 10 %
//!   only in the log; the median time of a query reading one column and of one reading all
//!   five, through `ufer_node::sql::SqlEngine` (DataFusion, as `ufer sql` runs it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use serde_json::{json, Value};
use ufer_node::config::LakeConfig;
use ufer_node::sql::{LakeLocation, SqlEngine};
use ufer_node::{NodeConfig, NodeHandle};
use ufer_wire::client::{Admin, AppendOptions, AppendWriter, ClientConfig, Connection};
use ufer_wire::protocol::messages::{BucketStatus, TableDefinition, TablePath};

use crate::error::BenchError;
use crate::rows;
use crate::workload::{create_table_as, DATABASE};

/// What `ufer-bench lake` measures.
#[derive(Clone, Debug)]
pub struct LakeParams {
    /// MB of 1 KiB rows tiered for the throughput figure.
    pub backlog_mb: u64,
    /// The freshness of the freshness figure's table (ms).
    pub freshness_ms: u64,
    /// How long the freshness figure produces.
    pub freshness_run: Duration,
    /// Rows of the union-read table.
    pub union_rows: u64,
    /// Buckets of every table.
    pub buckets: u32,
    /// Shards of the node.
    pub shards: usize,
    /// Query repetitions (the median is reported).
    pub reps: usize,
    /// Which parts to run: `tiering`, `freshness`, `union` (all when empty).
    pub parts: Vec<String>,
}

/// Runs the three measurements under `dir`.
pub fn run(params: &LakeParams, dir: &Path) -> Result<Value, BenchError> {
    let data = tempfile::Builder::new().prefix("ufer-bench-lake-").tempdir_in(dir)?;
    let mut config = NodeConfig::production();
    config.data_dir = data.path().to_path_buf();
    config.base_port = 0;
    config.shard_count = params.shards;
    config.pin_shards = false;
    config.metrics_listen = None;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let wanted =
        |part: &str| params.parts.is_empty() || params.parts.iter().any(|name| name == part);
    let mut figures = serde_json::Map::new();
    if wanted("tiering") {
        figures.insert("tiering".into(), tiering_throughput(params, &config, &runtime)?);
    }
    if wanted("freshness") {
        figures.insert("freshness".into(), freshness(params, &config, &runtime)?);
    }
    if wanted("union") {
        figures.insert("union_read".into(), union_read(params, &config, &runtime)?);
    }
    Ok(Value::Object(figures))
}

fn connect(node: &NodeHandle) -> Result<Connection, BenchError> {
    Ok(Connection::new(ClientConfig::local(node.shard_addresses()[0], node.data_dir()))?)
}

/// A freshness that keeps a table out of the lake for the run (its first round, when the
/// table appears, finds it empty): the backlog is tiered by the round at the next start.
const HOUR_MS: u64 = 3_600_000;

/// Creates lake table `name` (replacing one from an earlier run).
async fn create_lake_table(
    connection: &Connection,
    name: &str,
    schema: &str,
    buckets: u32,
    freshness_ms: u64,
) -> Result<TablePath, BenchError> {
    let definition = TableDefinition {
        schema: schema.into(),
        bucket_count: buckets,
        properties: vec![
            ("lake.enabled".into(), "true".into()),
            ("lake.freshness.ms".into(), freshness_ms.to_string()),
        ],
        ..TableDefinition::default()
    };
    create_table_as(connection, name, definition).await
}

/// Waits until every bucket of `path` has its durable records in the lake.
async fn wait_tiered(
    admin: &Admin,
    path: &TablePath,
    wait_max: Duration,
) -> Result<(), BenchError> {
    let started = Instant::now();
    loop {
        let buckets = admin.describe_table(path).await?.buckets;
        if buckets.iter().all(|bucket| bucket.tiered_offset == Some(bucket.high_watermark)) {
            return Ok(());
        }
        if started.elapsed() > wait_max {
            return Err(BenchError::Other(format!("{path} not tiered after {wait_max:?}")));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// CPU seconds the tiering thread (`ufer-lake`) of this process has used.
fn tiering_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let ticks_per_second = 100.0; // USER_HZ on Linux.
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // glommio names an executor's thread `<name>-<id>`.
        if !comm.trim().starts_with("ufer-lake") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the command name's closing parenthesis; utime and stime are 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|value| value.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            return (user + system) / ticks_per_second;
        }
    }
    0.0
}

fn tiering_throughput(
    params: &LakeParams,
    config: &NodeConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Value, BenchError> {
    let schema = rows::arrow_schema()?;
    let node = ufer_node::start(config.clone())?;
    let rows_total = params.backlog_mb * 1_000_000 / rows::ROW_SIZE_BYTES as u64;
    let path = runtime.block_on(async {
        let connection = connect(&node)?;
        let path = create_lake_table(
            &connection,
            "lake_backlog",
            &rows::schema_text(),
            params.buckets,
            HOUR_MS,
        )
        .await?;
        let writer = AppendWriter::new(connection.clone(), &path, AppendOptions::default()).await?;
        let batch_rows = 1_000u64;
        let mut sent = 0;
        while sent < rows_total {
            let count = batch_rows.min(rows_total - sent);
            writer
                .append(rows::batch(&schema, sent as i64, count as usize, rows::now_us())?)
                .await?;
            sent += count;
        }
        writer.flush().await?;
        writer.close().await?;
        connection.close().await;
        Ok::<_, BenchError>(path)
    })?;
    node.shutdown()?;
    // The round at start tiers the backlog.
    let started = Instant::now();
    let node = ufer_node::start(config.clone())?;
    runtime.block_on(async {
        let connection = connect(&node)?;
        wait_tiered(&Admin::new(connection.clone()), &path, Duration::from_secs(3_600)).await?;
        connection.close().await;
        Ok::<_, BenchError>(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = tiering_cpu_seconds();
    let metrics = node.lake_metrics().ok_or_else(|| BenchError::Other("no lake".into()))?;
    let bytes = metrics.batch_bytes.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let files = metrics.files.load(std::sync::atomic::Ordering::Relaxed);
    let parquet_bytes = directory_bytes(&config.data_dir.join("lake").join("warehouse"));
    node.shutdown()?;
    let mb = bytes / 1e6;
    println!(
        "tiering: {mb:.0} MB of log batches ({rows_total} rows of 1 KiB) in {seconds:.2} s = {:.0} MB/s; tiering thread CPU {cpu:.2} s = {:.0} MB/s per core; {files} files, {:.0} MB of Parquet (zstd)",
        mb / seconds,
        if cpu > 0.0 { mb / cpu } else { 0.0 },
        parquet_bytes as f64 / 1e6,
    );
    Ok(json!({
        "batch_mb": mb, "rows": rows_total, "seconds": seconds, "mb_per_s": mb / seconds,
        "cpu_seconds": cpu, "mb_per_cpu_second": if cpu > 0.0 { mb / cpu } else { 0.0 },
        "files": files, "parquet_mb": parquet_bytes as f64 / 1e6,
    }))
}

fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

fn freshness(
    params: &LakeParams,
    config: &NodeConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Value, BenchError> {
    let schema = rows::arrow_schema()?;
    let node = ufer_node::start(config.clone())?;
    let delays = runtime.block_on(visibility_delays(params, &node, &schema))?;
    node.shutdown()?;
    let mut ms: Vec<f64> = delays.iter().map(|delay| delay.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |quantile: f64| {
        ms.get(((ms.len() as f64 - 1.0) * quantile).round() as usize).copied().unwrap_or(0.0)
    };
    println!(
        "freshness at lake.freshness.ms={}: acknowledged → visible in the lake p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} batches)",
        params.freshness_ms,
        at(0.5),
        at(0.99),
        at(1.0),
        ms.len()
    );
    Ok(
        json!({ "freshness_ms": params.freshness_ms, "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0), "batches": ms.len() }),
    )
}

/// Produces a batch of 10 rows every 100 ms for `params.freshness_run` into a new lake table
/// on `node`, and returns, per batch, the time from its acknowledgement until its shard
/// reports it tiered.
async fn visibility_delays(
    params: &LakeParams,
    node: &NodeHandle,
    schema: &arrow_schema::SchemaRef,
) -> Result<Vec<Duration>, BenchError> {
    let connection = connect(node)?;
    let path = create_lake_table(
        &connection,
        "lake_fresh",
        &rows::schema_text(),
        params.buckets,
        params.freshness_ms,
    )
    .await?;
    let admin = Admin::new(connection.clone());
    let writer = AppendWriter::new(connection.clone(), &path, AppendOptions::default()).await?;
    // (bucket, last offset, acknowledged at) of every batch not yet seen tiered.
    let mut waiting: Vec<(u32, u64, Instant)> = Vec::new();
    let mut delays: Vec<Duration> = Vec::new();
    let started = Instant::now();
    let mut next_send = Instant::now();
    let mut id = 0i64;
    while started.elapsed() < params.freshness_run || !waiting.is_empty() {
        if started.elapsed() < params.freshness_run && Instant::now() >= next_send {
            let handle = writer.append(rows::batch(schema, id, 10, rows::now_us())?).await?;
            writer.flush().await?;
            for ack in handle.wait().await? {
                waiting.push((ack.bucket, ack.last_offset, Instant::now()));
            }
            id += 10;
            next_send += Duration::from_millis(100);
        }
        let buckets = admin.describe_table(&path).await?.buckets;
        take_tiered(&mut waiting, &buckets, &mut delays);
        if started.elapsed()
            > params.freshness_run
                + Duration::from_millis(params.freshness_ms) * 4
                + Duration::from_secs(30)
        {
            return Err(BenchError::Other("batches never became visible in the lake".into()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.close().await?;
    connection.close().await;
    Ok(delays)
}

/// Removes from `waiting` every batch `buckets` report tiered, adding to `delays` the time
/// since its acknowledgement.
fn take_tiered(
    waiting: &mut Vec<(u32, u64, Instant)>,
    buckets: &[BucketStatus],
    delays: &mut Vec<Duration>,
) {
    let now = Instant::now();
    waiting.retain(|(bucket, last, acked)| {
        let tiered = buckets
            .iter()
            .find(|status| status.bucket == *bucket)
            .and_then(|status| status.tiered_offset)
            .unwrap_or(0);
        if tiered > *last {
            delays.push(now - *acked);
            false
        } else {
            true
        }
    });
}

/// The union-read table: `id, kind, amount, ts, note`.
fn narrow_batch(
    schema: &arrow_schema::SchemaRef,
    first: i64,
    count: usize,
) -> Result<RecordBatch, BenchError> {
    let ids: Vec<i64> = (first..first + count as i64).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from_iter_values(ids.iter().map(|id| format!("kind-{}", id % 16)))),
        Arc::new(Float64Array::from_iter_values(ids.iter().map(|id| (*id % 1000) as f64 * 0.01))),
        Arc::new(TimestampMillisecondArray::from_iter_values(
            ids.iter().map(|id| 1_700_000_000_000 + id),
        )),
        Arc::new(StringArray::from_iter_values(ids.iter().map(|id| format!("note {id:012}")))),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn union_read(
    params: &LakeParams,
    config: &NodeConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Value, BenchError> {
    let tiered_rows = params.union_rows * 9 / 10;
    let node = ufer_node::start(config.clone())?;
    let path = runtime.block_on(async {
        let connection = connect(&node)?;
        let schema = "id BIGINT NOT NULL, kind STRING, amount DOUBLE, ts TIMESTAMP(3), note STRING";
        let path =
            create_lake_table(&connection, "lake_union", schema, params.buckets, HOUR_MS).await?;
        fill(&connection, &path, 0, tiered_rows).await?;
        connection.close().await;
        Ok::<_, BenchError>(path)
    })?;
    node.shutdown()?;
    let node = ufer_node::start(config.clone())?;
    let result = runtime.block_on(async {
        let connection = connect(&node)?;
        wait_tiered(&Admin::new(connection.clone()), &path, Duration::from_secs(3_600)).await?;
        fill(&connection, &path, tiered_rows, params.union_rows - tiered_rows).await?;
        let engine = SqlEngine::new(connection.clone(), LakeLocation::of_node(&LakeConfig::default(), node.data_dir()));
        let queries = [
            ("one column", format!("SELECT count(*), sum(amount) FROM {DATABASE}.lake_union")),
            ("all columns", format!("SELECT count(*), max(id), max(kind), sum(amount), max(ts), max(note) FROM {DATABASE}.lake_union")),
        ];
        let mut figures = serde_json::Map::new();
        for (name, query) in &queries {
            let mut seconds = Vec::new();
            for _ in 0..params.reps.max(1) {
                let started = Instant::now();
                let (_, batches) = engine.query(query).await.map_err(|error| BenchError::Other(error.to_string()))?;
                seconds.push(started.elapsed().as_secs_f64());
                let counted = batches.first().and_then(|batch| batch.column(0).as_any().downcast_ref::<Int64Array>().map(|counts| counts.value(0)));
                if counted != Some(params.union_rows as i64) {
                    return Err(BenchError::Other(format!("{name}: counted {counted:?} rows, not {}", params.union_rows)));
                }
            }
            seconds.sort_by(f64::total_cmp);
            let median = seconds[seconds.len() / 2];
            println!(
                "union read of {} rows ({} in the lake, {} live), {name}: median {:.2} s ({:.1} M rows/s) of {:?}",
                params.union_rows, tiered_rows, params.union_rows - tiered_rows, median,
                params.union_rows as f64 / median / 1e6,
                seconds.iter().map(|value| format!("{value:.2}")).collect::<Vec<_>>()
            );
            figures.insert(name.to_string(), json!({ "median_s": median, "runs_s": seconds }));
        }
        connection.close().await;
        Ok::<_, BenchError>(Value::Object(figures))
    })?;
    node.shutdown()?;
    Ok(json!({ "rows": params.union_rows, "tiered_rows": tiered_rows, "queries": result }))
}

async fn fill(
    connection: &Connection,
    path: &TablePath,
    first: u64,
    count: u64,
) -> Result<(), BenchError> {
    let writer = AppendWriter::new(connection.clone(), path, AppendOptions::default()).await?;
    let schema = writer.table().schema.arrow().clone();
    let mut sent = 0u64;
    while sent < count {
        let rows = 10_000u64.min(count - sent);
        writer.append(narrow_batch(&schema, (first + sent) as i64, rows as usize)?).await?;
        sent += rows;
    }
    writer.flush().await?;
    writer.close().await?;
    Ok(())
}
