//! An AppendWriter bounds what it holds by bytes: while the node does not answer (here it
//! is stopped with SIGSTOP), `append` goes on taking rows until the unsent bytes reach the
//! writer's limit, then waits; when the node answers again, everything is stored.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use common::{send_signal, serve, Served};
use ufer_wire::client::{Admin, AppendOptions, AppendWriter, ClientConfig, Connection};
use ufer_wire::protocol::messages::{Acks, TableDefinition, TablePath};

/// Rows per append, and the Arrow memory of one append's rows (measured below).
const ROWS_PER_APPEND: i64 = 20;
/// Appends that fit in the writer's limit: far more than a count-bounded queue would take.
const APPENDS_IN_LIMIT: usize = 40;

fn rows(schema: &arrow_schema::SchemaRef, first_id: i64) -> RecordBatch {
    let ids: Vec<i64> = (first_id..first_id + ROWS_PER_APPEND).collect();
    let names: Vec<String> = ids.iter().map(|id| format!("row-{id:06}")).collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(names))],
    )
    .unwrap()
}

#[test]
fn appends_wait_once_the_unsent_bytes_reach_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let Served { child: node, address, .. } = serve(dir.path());
    // A failing assertion must not leave the node stopped (and its ports held) for good.
    let mut node = Resumed(node);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut config = ClientConfig::local(address.parse().unwrap(), dir.path());
        // Long enough that nothing times out while the node is stopped.
        config.request_timeout = Duration::from_secs(60);
        let connection = Connection::new(config).unwrap();
        let path = TablePath::new("default", "held");
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, name STRING".into(),
            bucket_count: 1,
            ..TableDefinition::default()
        };
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
        let probe = AppendWriter::new(connection.clone(), &path, AppendOptions::default());
        let schema = probe.await.unwrap().table().schema.arrow().clone();
        let append_bytes = rows(&schema, 0).get_array_memory_size();
        let options = AppendOptions {
            batch_size_bytes: 1,
            acks: Acks::All,
            unsent_bytes_max: append_bytes * APPENDS_IN_LIMIT,
            ..AppendOptions::default()
        };
        let writer = AppendWriter::new(connection.clone(), &path, options).await.unwrap();

        send_signal(node.0.id(), "-STOP");
        let mut handles = Vec::new();
        for append in 0..APPENDS_IN_LIMIT as i64 {
            let appended = tokio::time::timeout(
                Duration::from_secs(10),
                writer.append(rows(&schema, append * ROWS_PER_APPEND)),
            )
            .await
            .unwrap_or_else(|_| panic!("append {append} waited within the limit"));
            handles.push(appended.unwrap());
        }
        // The limit is reached: the next append waits for an answer that cannot come.
        let next = writer.append(rows(&schema, APPENDS_IN_LIMIT as i64 * ROWS_PER_APPEND));
        let mut next = Box::pin(next);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), &mut next).await.is_err(),
            "an append beyond the limit did not wait"
        );

        send_signal(node.0.id(), "-CONT");
        handles.push(next.await.unwrap());
        let mut stored = 0;
        for handle in handles {
            let acks = handle.wait().await.unwrap();
            stored += acks.iter().map(|ack| ack.last_offset - ack.base_offset + 1).sum::<u64>();
        }
        assert_eq!(stored, (APPENDS_IN_LIMIT as u64 + 1) * ROWS_PER_APPEND as u64);
        writer.close().await.unwrap();
        connection.close().await;
    });
    send_signal(node.0.id(), "-TERM");
    assert!(node.0.wait().unwrap().success());
}

/// The node child, resumed and killed if the test ends early.
struct Resumed(std::process::Child);

impl Drop for Resumed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = std::process::Command::new("kill")
                .arg("-CONT")
                .arg(self.0.id().to_string())
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
