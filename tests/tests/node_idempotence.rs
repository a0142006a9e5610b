//! Idempotent produce over real QUIC: a batch sent again by the same writer with the same
//! sequence number is stored once and answered with its original offsets — on the same
//! node, after a node restart, and when the SDK retries because the answer was lost on the
//! network. Sequence gaps are refused; writer ids are unique under concurrency; a writer id
//! the node never gave out is refused (`UNKNOWN_WRITER`) on every shard, for produce and
//! upsert, and nothing of its batch is stored.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use ufer_node::{start, NodeConfig};
use ufer_tests::{scan::read_ids, table};
use ufer_wire::client::{
    Admin, AppendOptions, AppendWriter, ClientConfig, ClientError, Connection,
};
use ufer_wire::protocol::error_code::ErrorCode;
use ufer_wire::protocol::frame::{ApiKey, FrameFlags, FRAME_HEADER_SIZE_BYTES};
use ufer_wire::protocol::messages::{
    decode_body, encode_frame, Acks, InitWriterRequest, MetadataRequest, ProduceRequest,
    ProduceResponse, TableDefinition, TablePath, UpsertRequest,
};
use ufer_wire::{BatchOptions, LogBatchBuilder, WriterStamp};

const SCHEMA: &str = "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn create_table(
    connection: &Connection,
    path: &TablePath,
    buckets: u32,
) -> (u64, SocketAddr) {
    let definition = TableDefinition {
        schema: SCHEMA.into(),
        bucket_count: buckets,
        ..TableDefinition::default()
    };
    Admin::new(connection.clone()).create_table(path, definition, false).await.unwrap();
    let metadata = connection.table_metadata(path).await.unwrap();
    let location = &metadata.buckets[0];
    let owner = connection.shard_address(location.node_id, location.shard).await.unwrap();
    (metadata.info.table_id, owner)
}

fn stamped_batch(first_id: i64, writer_id: i64, batch_sequence: i32) -> Vec<u8> {
    let mut builder = LogBatchBuilder::new(table::schema(), BatchOptions::default()).unwrap();
    let stamp = WriterStamp { writer_id, batch_sequence };
    builder.build(&table::record_batch(first_id, 100), None, stamp).unwrap()
}

fn produce_frame(table_id: u64, batch: &[u8]) -> Vec<u8> {
    let request = ProduceRequest { table_id, bucket: 0, acks: Acks::All, timeout_ms: 10_000 };
    encode_frame(ApiKey::Produce, FrameFlags::request(), 1, &request, batch)
}

async fn produce(
    connection: &Connection,
    owner: SocketAddr,
    frame: &[u8],
) -> Result<ProduceResponse, ClientError> {
    let answer = connection.call_raw(owner, frame).await?;
    Ok(decode_body::<ProduceResponse>(&answer.as_slice()[FRAME_HEADER_SIZE_BYTES..]).unwrap().0)
}

async fn init_writer(connection: &Connection, address: SocketAddr) -> i64 {
    connection.call(address, &InitWriterRequest, &[], Duration::ZERO).await.unwrap().body.writer_id
}

/// Writer ids are unique, asked for concurrently on every shard: returns the 64 given out.
async fn unique_writer_ids(connection: &Connection, addresses: &[SocketAddr]) -> BTreeSet<i64> {
    let mut asks = Vec::new();
    for round in 0..64 {
        let connection = connection.clone();
        let address = addresses[round % addresses.len()];
        asks.push(tokio::spawn(async move { init_writer(&connection, address).await }));
    }
    let mut ids = BTreeSet::new();
    for ask in asks {
        let id = ask.await.unwrap();
        assert!(id >= 0);
        assert!(ids.insert(id), "writer id {id} handed out twice");
    }
    ids
}

#[test]
fn a_resent_batch_is_stored_once_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let runtime = runtime();
    let path = TablePath::new("default", "events");
    let node = start(config.clone()).unwrap();
    let addresses = node.shard_addresses();
    let (table_id, writer_id, first, second) = runtime.block_on(async {
        let connection = Connection::new(ClientConfig::local(addresses[0], dir.path())).unwrap();
        let (table_id, owner) = create_table(&connection, &path, 1).await;

        let ids = unique_writer_ids(&connection, &addresses).await;
        let writer_id = init_writer(&connection, addresses[1 % addresses.len()]).await;
        assert!(!ids.contains(&writer_id));

        let first = produce_frame(table_id, &stamped_batch(0, writer_id, 0));
        let stored = produce(&connection, owner, &first).await.unwrap();
        assert!(!stored.duplicate);
        assert_eq!((stored.base_offset, stored.last_offset), (0, 99));
        let again = produce(&connection, owner, &first).await.unwrap();
        assert!(again.duplicate, "the same writer and sequence again is a duplicate");
        assert_eq!((again.base_offset, again.last_offset), (0, 99), "with its original offsets");
        assert_eq!(again.high_watermark, 100, "and nothing was stored");

        let second = produce_frame(table_id, &stamped_batch(100, writer_id, 1));
        let stored = produce(&connection, owner, &second).await.unwrap();
        assert_eq!((stored.base_offset, stored.last_offset, stored.duplicate), (100, 199, false));
        // The same rows from another writer are new rows: dedupe is by writer, not content.
        let other_writer = init_writer(&connection, owner).await;
        let other = produce_frame(table_id, &stamped_batch(1_000, other_writer, 0));
        assert!(!produce(&connection, owner, &other).await.unwrap().duplicate);

        let gap = produce_frame(table_id, &stamped_batch(200, writer_id, 3));
        match produce(&connection, owner, &gap).await {
            Err(ClientError::Server(error)) => {
                assert_eq!(error.code, ErrorCode::OutOfOrderSequence, "{error:?}")
            }
            other => panic!("a sequence gap must be refused, got {other:?}"),
        }
        connection.close().await;
        (table_id, writer_id, first, second)
    });
    let duplicates: u64 = node.metrics().iter().map(|shard| shard.duplicate_batches).sum();
    assert_eq!(duplicates, 1);
    node.shutdown().unwrap();

    // The writer's state survives a restart: its last batch sent again is still a duplicate.
    let node = start(config).unwrap();
    runtime.block_on(async {
        let connection =
            Connection::new(ClientConfig::local(node.shard_addresses()[0], dir.path())).unwrap();
        let owner =
            connection.table_metadata(&path).await.map(|table| table.buckets[0].shard).unwrap();
        let owner = connection.shard_address(0, owner).await.unwrap();
        let again = produce(&connection, owner, &second).await.unwrap();
        assert!(again.duplicate, "still a duplicate after the restart");
        assert_eq!((again.base_offset, again.last_offset), (100, 199));
        let next = produce_frame(table_id, &stamped_batch(300, writer_id, 2));
        let stored = produce(&connection, owner, &next).await.unwrap();
        assert!(!stored.duplicate);
        assert_eq!(stored.base_offset, 300, "after the other writer's 100 rows");
        // An older batch among the writer's recent ones is still known, with its offsets.
        let again = produce(&connection, owner, &first).await.unwrap();
        assert!(again.duplicate);
        assert_eq!((again.base_offset, again.last_offset), (0, 99));
        let rows = read_ids(&connection, &path, None, 400).await;
        assert_eq!(rows.len(), 400);
        connection.close().await;
    });
    node.shutdown().unwrap();
}

/// A UDP socket that loses every datagram it receives while `lose` is set: the node gets
/// the client's requests, the client never hears the answers.
#[derive(Debug)]
struct LossySocket {
    inner: Arc<dyn quinn::AsyncUdpSocket>,
    lose: Arc<AtomicBool>,
}

impl quinn::AsyncUdpSocket for LossySocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn quinn::UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &quinn::udp::Transmit<'_>) -> std::io::Result<()> {
        self.inner.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(_)) if self.lose.load(Ordering::SeqCst) => continue,
                other => return other,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Produces to `bucket` (on the shard at `owner`) from writer ids never given out are
/// refused, and nothing is stored; from `issued`, just given out (maybe by another shard),
/// it is taken at once.
async fn only_given_out_writers(
    connection: &Connection,
    owner: SocketAddr,
    table_id: u64,
    bucket: u32,
    issued: i64,
) {
    let request = ProduceRequest { table_id, bucket, acks: Acks::All, timeout_ms: 10_000 };
    for unknown in [issued + 1, issued + 10_000, 1 << 40] {
        let batch = stamped_batch(0, unknown, 0);
        let frame = encode_frame(ApiKey::Produce, FrameFlags::request(), 1, &request, &batch);
        match produce(connection, owner, &frame).await {
            Err(ClientError::Server(error)) => {
                assert_eq!(error.code, ErrorCode::UnknownWriter, "{error:?}");
                assert!(error.message.contains(&unknown.to_string()), "{error:?}");
            }
            other => panic!("writer {unknown} was never given out: {other:?}"),
        }
    }
    // The id that was given out is taken at once, on this shard too.
    let batch = stamped_batch(0, issued, 0);
    let frame = encode_frame(ApiKey::Produce, FrameFlags::request(), 1, &request, &batch);
    let stored = produce(connection, owner, &frame).await.unwrap();
    assert_eq!((stored.base_offset, stored.high_watermark), (0, 100), "only its rows");
}

#[test]
fn a_writer_id_the_node_never_gave_out_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    let addresses = node.shard_addresses();
    runtime().block_on(async {
        let connection = Connection::new(ClientConfig::local(addresses[0], dir.path())).unwrap();
        // Buckets on both shards, so the owner of some bucket is not the shard (0) that
        // hands out writer ids.
        let path = TablePath::new("default", "events");
        let definition = TableDefinition {
            schema: SCHEMA.into(),
            bucket_count: 8,
            ..TableDefinition::default()
        };
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
        let metadata = connection.table_metadata(&path).await.unwrap();
        let table_id = metadata.info.table_id;
        let mut owners = BTreeSet::new();
        for location in &metadata.buckets {
            if owners.insert(location.shard) {
                let owner = connection.shard_address(location.node_id, location.shard).await;
                let owner = owner.unwrap();
                let issued = init_writer(&connection, addresses[0]).await;
                only_given_out_writers(&connection, owner, table_id, location.bucket, issued).await;
            }
        }
        assert_eq!(owners.len(), 2, "the table has buckets on both shards");

        // The same for an upsert to a primary-key table.
        let users = TablePath::new("default", "users");
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, v BIGINT".into(),
            bucket_count: 1,
            primary_key: vec!["id".into()],
            ..TableDefinition::default()
        };
        let table_id =
            Admin::new(connection.clone()).create_table(&users, definition, false).await.unwrap();
        let location = connection.table_metadata(&users).await.unwrap().buckets[0].clone();
        let owner = connection.shard_address(location.node_id, location.shard).await.unwrap();
        let issued = init_writer(&connection, addresses[0]).await;
        let upsert = |writer_id: i64| {
            let request = UpsertRequest {
                table_id,
                bucket: 0,
                acks: Acks::All,
                timeout_ms: 10_000,
                target_columns: None,
            };
            let stamp = WriterStamp { writer_id, batch_sequence: 0 };
            let batch = ufer_tests::pk::write_batch_of(1, 1, stamp);
            encode_frame(ApiKey::Upsert, FrameFlags::request(), 1, &request, &batch)
        };
        match connection.call_raw(owner, &upsert(issued + 1)).await {
            Err(ClientError::Server(error)) => assert_eq!(error.code, ErrorCode::UnknownWriter),
            other => panic!("an upsert from an unknown writer must be refused: {other:?}"),
        }
        connection.call_raw(owner, &upsert(issued)).await.unwrap();
        connection.close().await;
    });
    node.shutdown().unwrap();
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_sdk_retries_a_produce_whose_answer_was_lost_and_it_is_stored_once() {
    const ROWS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    let runtime = runtime();
    let path = TablePath::new("default", "events");
    let lose = Arc::new(AtomicBool::new(false));
    let (connection, appender) = runtime.block_on(async {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let inner = quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket).unwrap();
        let socket = Arc::new(LossySocket { inner, lose: lose.clone() });
        let mut config = ClientConfig::local(node.shard_addresses()[0], dir.path());
        config.request_timeout = Duration::from_millis(300);
        let connection = Connection::with_socket(config, socket).unwrap();
        let (_, owner) = create_table(&connection, &path, 1).await;
        // Connect to the owning shard now: a handshake cannot complete while answers are lost.
        let metadata = MetadataRequest { tables: Vec::new() };
        connection.call(owner, &metadata, &[], Duration::ZERO).await.unwrap();
        let options = AppendOptions {
            retries: 20,
            retry_backoff: Duration::from_millis(20),
            ..AppendOptions::default()
        };
        let appender = AppendWriter::new(connection.clone(), &path, options).await.unwrap();
        (connection, appender)
    });

    let appender = Arc::new(appender);
    lose.store(true, Ordering::SeqCst);
    let sending = appender.clone();
    let sent = runtime.spawn(async move {
        let schema = sending.table().schema.arrow().clone();
        // Small enough (~3 KiB) to leave in the first flight without acknowledgements.
        let rows = table::record_batch(0, ROWS);
        let rows = RecordBatch::try_new(schema, rows.columns().to_vec()).unwrap();
        let handle = sending.append(rows).await.unwrap();
        sending.flush().await.unwrap();
        handle.wait().await
    });
    // The node stores the batch; its answer is lost; the SDK gives up waiting and sends the
    // batch again. Then the network heals.
    wait_for("the first attempt being stored", || {
        node.metrics().iter().map(|shard| shard.produced_batches).sum::<u64>() == 1
    });
    wait_for("the SDK retrying", || appender.retry_count() >= 1);
    lose.store(false, Ordering::SeqCst);
    let acks = runtime.block_on(sent).unwrap().unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].base_offset, acks[0].last_offset),
        (0, ROWS as u64 - 1),
        "original offsets"
    );
    let metrics = node.metrics();
    assert_eq!(metrics.iter().map(|shard| shard.produced_batches).sum::<u64>(), 1, "{metrics:?}");
    assert!(
        metrics.iter().map(|shard| shard.duplicate_batches).sum::<u64>() >= 1,
        "the node saw the retry and answered it from what it had stored: {metrics:?}"
    );
    let appender = Arc::try_unwrap(appender).unwrap();
    runtime.block_on(appender.close()).unwrap();

    runtime.block_on(async {
        let rows = read_ids(&connection, &path, None, ROWS).await;
        assert_eq!(rows.len(), ROWS);
        let last = rows.values().map(|place| place.offset).max();
        assert_eq!(last, Some(ROWS as u64 - 1), "stored once");
        connection.close().await;
    });
    node.shutdown().unwrap();
}
