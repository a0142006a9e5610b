//! A node killed during tiering — before the data files are written, after they are written
//! but before the commit, after the commit, and at random moments — loses and duplicates no
//! row of the lake: after a restart the Iceberg table holds every acknowledged row exactly
//! once, each bucket's offsets without a gap. Files of a round that was never committed stay
//! unreferenced.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use ufer_tests::client_runtime;
use ufer_tests::lake::{parquet_files_on_disk, read_lake, wait_until_tiered, LakeRead};
use ufer_tests::rng::Rng;
use ufer_tests::scan::read_ids;
use ufer_tests::{free_ports, iterations};
use ufer_wire::client::{Admin, AppendOptions, AppendWriter, ClientConfig, Connection};
use ufer_wire::protocol::messages::{TableDefinition, TablePath};

const NODE: &str = env!("CARGO_BIN_EXE_ufer_lake_node");

/// One test at a time: a test's node is down between a kill and its restart, and another
/// test looking for free ports could take its ports meanwhile.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A node child, killed when dropped (also when a test fails).
struct NodeChild(Child);

impl Drop for NodeChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the node child and waits for its `READY`. After a SIGKILL the kernel releases
/// the killed node's UDP ports only once it has torn down its io_uring instances, a moment
/// later: a start that finds them still bound is tried again.
fn start_node(dir: &Path, port: u16, crash_point: Option<&str>) -> NodeChild {
    let started = Instant::now();
    loop {
        let mut command = Command::new(NODE);
        command.arg(dir).arg(port.to_string()).stdout(Stdio::piped()).stderr(Stdio::null());
        match crash_point {
            Some(point) => command.env("UFER_LAKE_CRASH_POINT", point),
            None => command.env_remove("UFER_LAKE_CRASH_POINT"),
        };
        let mut child = NodeChild(command.spawn().unwrap());
        let mut line = String::new();
        BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line.trim() == "READY" {
            return child;
        }
        drop(child);
        assert!(started.elapsed() < Duration::from_secs(30), "the node did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How long a request waits for the node. The node aborts while rows are being produced:
/// with the SDK's default of 30 s, each of a writer's six attempts (and each lookup of the
/// buckets between them) waited that long for the dead node, minutes per crash.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to the node with data in `data` (whose certificate it trusts).
fn connect(data: &Path, port: u16) -> Connection {
    let mut config = ClientConfig::local(format!("127.0.0.1:{port}").parse().unwrap(), data);
    config.request_timeout = REQUEST_TIMEOUT;
    Connection::new(config).unwrap()
}

async fn create_table(connection: &Connection, path: &TablePath) {
    let definition = TableDefinition {
        schema: "id BIGINT NOT NULL, name STRING".into(),
        bucket_count: 2,
        bucket_key: vec!["id".into()],
        properties: vec![
            ("lake.enabled".into(), "true".into()),
            ("lake.freshness.ms".into(), "100".into()),
        ],
        ..TableDefinition::default()
    };
    Admin::new(connection.clone()).create_table(path, definition, true).await.unwrap();
}

/// Appends rows `first..first + count` in batches of 250, one at a time; returns the ids
/// acknowledged before the first failure (the node may abort while they are written).
async fn produce(connection: &Connection, path: &TablePath, first: i64, count: i64) -> Vec<i64> {
    let Ok(writer) = AppendWriter::new(connection.clone(), path, AppendOptions::default()).await
    else {
        return Vec::new();
    };
    let schema = writer.table().schema.arrow().clone();
    let mut acknowledged = Vec::new();
    for start in (first..first + count).step_by(250) {
        let ids: Vec<i64> = (start..(start + 250).min(first + count)).collect();
        let names: Vec<String> = ids.iter().map(|id| format!("row-{id}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(ids.clone())), Arc::new(StringArray::from(names))],
        )
        .unwrap();
        let Ok(handle) = writer.append(batch).await else { break };
        if writer.flush().await.is_err() || handle.wait().await.is_err() {
            break;
        }
        acknowledged.extend(ids);
    }
    acknowledged
}

/// Waits until the table is tiered and checks that the lake holds exactly the log: every
/// row once, at the bucket and offset the log has it; every acknowledged row among them.
async fn assert_lake_equals_log(
    connection: &Connection,
    data: &Path,
    path: &TablePath,
    acknowledged: &[i64],
) -> LakeRead {
    let admin = Admin::new(connection.clone());
    let buckets =
        wait_until_tiered(&admin, path, acknowledged.len() as u64, Duration::from_secs(60)).await;
    let durable: u64 = buckets.iter().map(|bucket| bucket.high_watermark).sum();
    let log = read_ids(connection, path, None, durable as usize).await;
    assert_eq!(log.len() as u64, durable);
    let lake = read_lake(data, "default", "events").await.unwrap();
    assert_eq!(lake.row_count() as u64, durable, "no row twice, none missing");
    let lake_places = lake.places();
    let log_places: BTreeMap<i64, (u32, u64)> =
        log.iter().map(|(id, place)| (*id, (place.bucket, place.offset))).collect();
    assert_eq!(lake_places, log_places, "the lake holds the log, row for row");
    for id in acknowledged {
        assert!(log_places.contains_key(id), "acknowledged row {id} is durable");
    }
    for bucket in &buckets {
        assert_eq!(lake.offsets.get(&bucket.bucket).copied(), Some(bucket.high_watermark));
    }
    lake
}

fn wait_for_exit(child: &mut NodeChild, wait_max: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < wait_max, "the node did not stop at its crash point");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn crash_at(point: &str) {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_ports(2);
    let path = TablePath::new("default", "events");
    let runtime = client_runtime();
    let mut node = start_node(&data, port, Some(point));
    let mut acknowledged = runtime.block_on(async {
        let connection = connect(&data, port);
        create_table(&connection, &path).await;
        produce(&connection, &path, 0, 2_000).await
    });
    let status = wait_for_exit(&mut node, Duration::from_secs(60));
    assert_eq!(status.signal(), Some(libc::SIGABRT), "stopped at {point}: {status:?}");
    let files_at_crash = parquet_files_on_disk(&data, "default", "events");
    let lake_at_crash = runtime.block_on(read_lake(&data, "default", "events"));
    match point {
        "before-write" => assert!(files_at_crash.is_empty(), "{files_at_crash:?}"),
        "after-write" => {
            assert!(!files_at_crash.is_empty(), "the round wrote its files");
            assert_eq!(lake_at_crash.as_ref().map_or(0, LakeRead::row_count), 0, "not committed");
        }
        _ => assert!(lake_at_crash.as_ref().unwrap().row_count() > 0, "committed"),
    }

    let node = start_node(&data, port, None);
    runtime.block_on(async {
        let connection = connect(&data, port);
        let after = produce(&connection, &path, 100_000, 1_000).await;
        assert_eq!(after.len(), 1_000);
        acknowledged.extend(after);
        let lake = assert_lake_equals_log(&connection, &data, &path, &acknowledged).await;
        if point == "after-write" {
            // The uncommitted round's files are still there, and nothing refers to them.
            for file in &files_at_crash {
                let name = file.file_name().unwrap().to_str().unwrap();
                assert!(!lake.data_files.iter().any(|path| path.ends_with(name)), "{name}");
            }
        }
        connection.close().await;
    });
    drop(node);
}

#[test]
fn a_crash_before_the_files_are_written_loses_nothing() {
    crash_at("before-write");
}

#[test]
fn a_crash_between_writing_and_committing_loses_and_duplicates_nothing() {
    crash_at("after-write");
}

#[test]
fn a_crash_right_after_the_commit_duplicates_nothing() {
    crash_at("after-commit");
}

#[test]
fn kills_at_random_moments_of_tiering_lose_and_duplicate_nothing() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_ports(2);
    let path = TablePath::new("default", "events");
    let runtime = client_runtime();
    let mut rng = Rng::new(0x1A4E);
    let mut acknowledged = Vec::new();
    for round in 0..iterations(6) as i64 {
        let node = start_node(&data, port, None);
        runtime.block_on(async {
            let connection = connect(&data, port);
            create_table(&connection, &path).await;
            acknowledged.extend(produce(&connection, &path, round * 1_000, 1_000).await);
        });
        // Rounds start every 100 ms: the kill lands anywhere in one.
        std::thread::sleep(Duration::from_millis(rng.in_range(0..400)));
        drop(node);
    }
    let node = start_node(&data, port, None);
    runtime.block_on(async {
        let connection = connect(&data, port);
        assert_eq!(acknowledged.len() as u64, 1_000 * iterations(6));
        assert_lake_equals_log(&connection, &data, &path, &acknowledged).await;
        connection.close().await;
    });
    drop(node);
}
