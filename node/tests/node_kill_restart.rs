//! acks=all survives a SIGKILL: `ufer serve` runs as a child process while writers append
//! with acks=all through the SDK; the node is killed at a random moment, restarted on the
//! same data directory, and every acknowledged row is read back (by `ufer consume`), each
//! exactly once. Repeated over several kill rounds on the same data.
//!
//! A process kill loses what the process held, not what the kernel held: this shows that
//! an acknowledgement is only sent for data already written to the file system and that
//! recovery finds it. Power loss is the crash test's job at the log level
//! (`tests/tests/log_crash_recovery.rs` kills an appender that reports only fdatasync'd
//! batches).

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use common::{ok, serve, ufer, Served};
use ufer_wire::client::{Admin, AppendOptions, AppendWriter, ClientConfig, Connection};
use ufer_wire::protocol::messages::{Acks, TableDefinition, TablePath};

const WRITERS: usize = 4;
const ROWS_PER_APPEND: i64 = 200;

fn rounds() -> u64 {
    let multiplier = std::env::var("UFER_TEST_MULTIPLIER")
        .ok()
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(1);
    3 * multiplier.max(1)
}

/// A small deterministic generator (xorshift64*), seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

fn rows(schema: &arrow_schema::SchemaRef, first_id: i64) -> RecordBatch {
    let ids: Vec<i64> = (first_id..first_id + ROWS_PER_APPEND).collect();
    let names: Vec<String> = ids.iter().map(|id| format!("row-{id}")).collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

/// Appends until an append fails (the node is gone); records the ids of acknowledged rows.
async fn write_until_failure(
    connection: Connection,
    path: TablePath,
    next_id: Arc<AtomicI64>,
    acknowledged: Arc<Mutex<BTreeSet<i64>>>,
) {
    let options = AppendOptions {
        acks: Acks::All,
        linger: Duration::from_millis(1),
        retries: 0,
        ..AppendOptions::default()
    };
    let Ok(appender) = AppendWriter::new(connection, &path, options).await else { return };
    let schema = appender.table().schema.arrow().clone();
    loop {
        let first_id = next_id.fetch_add(ROWS_PER_APPEND, Ordering::Relaxed);
        let Ok(handle) = appender.append(rows(&schema, first_id)).await else { return };
        if appender.flush().await.is_err() {
            return;
        }
        match handle.wait().await {
            Ok(_) => acknowledged.lock().unwrap().extend(first_id..first_id + ROWS_PER_APPEND),
            Err(_) => return,
        }
    }
}

/// Every id in the table, by `ufer consume --format csv --columns id`; fails on a repeat.
fn ids_in_table(data_dir: &std::path::Path, server: &str) -> BTreeSet<i64> {
    let output = ok(&ufer(
        data_dir,
        server,
        &["consume", "events", "--columns", "id", "--format", "csv"],
        None,
    ));
    let mut ids = BTreeSet::new();
    for line in output.lines().skip(1) {
        let id: i64 = line.trim().parse().unwrap();
        assert!(ids.insert(id), "row {id} stored twice");
    }
    ids
}

#[test]
fn every_acknowledged_row_survives_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let path = TablePath::new("default", "events");
    let next_id = Arc::new(AtomicI64::new(0));
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut created = false;

    for round in 0..rounds() {
        let Served { child: mut node, address: server, .. } = serve(dir.path());
        let mut config = ClientConfig::local(server.parse().unwrap(), dir.path());
        config.request_timeout = Duration::from_secs(2);
        runtime.block_on(async {
            let connection = Connection::new(config).unwrap();
            if !created {
                let definition = TableDefinition {
                    schema: "id BIGINT NOT NULL, name STRING".into(),
                    bucket_count: 4,
                    bucket_key: vec!["id".into()],
                    ..TableDefinition::default()
                };
                Admin::new(connection.clone())
                    .create_table(&path, definition, false)
                    .await
                    .unwrap();
                created = true;
            }
            let writers: Vec<_> = (0..WRITERS)
                .map(|_| {
                    tokio::spawn(write_until_failure(
                        connection.clone(),
                        path.clone(),
                        next_id.clone(),
                        acknowledged.clone(),
                    ))
                })
                .collect();
            // Let the writers get going, then kill the node mid-stream.
            tokio::time::sleep(Duration::from_millis(300 + rng.below(700))).await;
            let before = acknowledged.lock().unwrap().len();
            node.kill().unwrap();
            for writer in writers {
                writer.await.unwrap();
            }
            println!("round {round}: {before} rows acknowledged before the kill");
            connection.close().await;
        });
        node.wait().unwrap();
    }

    // Restart and read everything back.
    let Served { child: mut node, address: server, .. } = serve(dir.path());
    let stored = ids_in_table(dir.path(), &server);
    let acknowledged = acknowledged.lock().unwrap();
    assert!(!acknowledged.is_empty(), "the writers got acknowledgements");
    let missing: Vec<_> = acknowledged.difference(&stored).take(10).collect();
    assert!(
        missing.is_empty(),
        "acknowledged rows lost (seed {seed}): {missing:?} of {} acknowledged, {} stored",
        acknowledged.len(),
        stored.len()
    );
    // Rows whose acknowledgement was lost with the node may be stored; nothing else may.
    let issued = next_id.load(Ordering::Relaxed);
    assert!(stored.iter().all(|id| (0..issued).contains(id)));
    node.kill().unwrap();
    node.wait().unwrap();
}
