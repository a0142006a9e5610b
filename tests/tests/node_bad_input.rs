//! Bad input over real QUIC: truncated and oversize frames, unknown APIs and versions,
//! garbage and mismatched batches, unknown tables and buckets. Each gets its error code on
//! its own stream; the connection and the node stay healthy, and the log holds exactly the
//! good batches. Then random frames from a property test, each of which must be answered.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use ufer_node::{start, NodeConfig, NodeHandle};
use ufer_tests::table;
use ufer_wire::client::{Admin, ClientConfig, ClientError, Connection};
use ufer_wire::header::{compute_crc, set_crc};
use ufer_wire::limits::BATCH_SIZE_MAX_BYTES;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{
    ApiKey, FrameFlags, FrameHeader, FRAME_HEADER_SIZE_BYTES, REQUEST_BODY_SIZE_MAX_BYTES,
    REQUEST_FIELDS_SIZE_MAX_BYTES,
};
use ufer_wire::protocol::messages::{
    decode_body, encode_frame, Acks, FetchBucket, FetchRequest, ListOffsetsRequest,
    MetadataRequest, OffsetQuery, ProduceRequest, ProduceResponse, TableDefinition, TablePath,
};
use ufer_wire::Compression;

/// Byte offsets of batch header fields (docs/format.md).
const BATCH_LENGTH_AT: usize = 8;
const SCHEMA_ID_AT: usize = 29;

struct Fixture {
    node: NodeHandle,
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    connection: Connection,
    /// Shard endpoint owning bucket 0 (where produces go).
    owner: SocketAddr,
    table_id: u64,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let node = start(NodeConfig::test_min(dir.path().to_path_buf())).unwrap();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (connection, owner, table_id) = runtime.block_on(async {
        let mut config = ClientConfig::local(node.shard_addresses()[0], dir.path());
        config.request_timeout = Duration::from_secs(10);
        let connection = Connection::new(config).unwrap();
        let definition = TableDefinition {
            schema: "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)".into(),
            bucket_count: 2,
            ..TableDefinition::default()
        };
        let path = TablePath::new("default", "events");
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
        let metadata = connection.table_metadata(&path).await.unwrap();
        assert_eq!(metadata.info.schema_id, table::schema().id(), "the test batches fit");
        let location = &metadata.buckets[0];
        let owner = connection.shard_address(location.node_id, location.shard).await.unwrap();
        (connection, owner, metadata.info.table_id)
    });
    Fixture { node, _dir: dir, runtime, connection, owner, table_id }
}

fn header(api: u16, version: u16, flags: u16, request_id: u32, body_length: u32) -> Vec<u8> {
    let mut header = FrameHeader::new(ApiKey::Metadata, FrameFlags(flags), request_id, 0);
    header.api_key.set(api);
    header.api_version.set(version);
    header.body_length.set(body_length);
    header.to_bytes().to_vec()
}

fn produce_frame(table_id: u64, bucket: u32, request_id: u32, records: &[u8]) -> Vec<u8> {
    let request = ProduceRequest { table_id, bucket, acks: Acks::All, timeout_ms: 10_000 };
    encode_frame(ApiKey::Produce, FrameFlags::request(), request_id, &request, records)
}

/// Sends `frame` and returns the error the node answered with (failing on anything else).
async fn refused(connection: &Connection, address: SocketAddr, frame: &[u8]) -> ErrorBody {
    match connection.call_raw(address, frame).await {
        Err(ClientError::Server(error)) => error,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

async fn expect_code(
    connection: &Connection,
    address: SocketAddr,
    frame: &[u8],
    code: ErrorCode,
    says: &str,
) {
    let error = refused(connection, address, frame).await;
    assert_eq!(error.code, code, "{error:?}");
    assert!(
        error.message.to_lowercase().contains(&says.to_lowercase()),
        "message {:?} should say {says:?}",
        error.message
    );
}

async fn produce_ok(connection: &Connection, fixture_owner: SocketAddr, frame: &[u8]) -> u64 {
    let answer = connection.call_raw(fixture_owner, frame).await.unwrap();
    let (response, _) =
        decode_body::<ProduceResponse>(&answer.as_slice()[FRAME_HEADER_SIZE_BYTES..]).unwrap();
    response.last_offset - response.base_offset + 1
}

#[test]
fn malformed_frames_and_requests_get_typed_errors_and_the_node_stays_healthy() {
    let fixture = fixture();
    let (connection, owner, table_id) = (&fixture.connection, fixture.owner, fixture.table_id);
    fixture.runtime.block_on(async {
        // A good produce first: the log must hold it and nothing else at the end.
        let good = table::batch(0, 100, Compression::None, None);
        assert_eq!(produce_ok(connection, owner, &produce_frame(table_id, 0, 1, &good)).await, 100);

        refuse_bad_frames(connection, owner).await;
        refuse_bad_bodies(connection, owner).await;
        refuse_bad_batches(connection, owner, table_id, &good).await;
        refuse_misaddressed_batches(connection, owner, table_id, &good).await;
        refuse_reads_of_what_does_not_exist(connection, owner, table_id).await;

        // The same connection still works, and the log holds exactly the good batches.
        let next = table::batch(100, 50, Compression::Lz4Frame, None);
        assert_eq!(produce_ok(connection, owner, &produce_frame(table_id, 0, 40, &next)).await, 50);
        let path = TablePath::new("default", "events");
        let description = Admin::new(connection.clone()).describe_table(&path).await.unwrap();
        assert_eq!(description.buckets[0].high_watermark, 150);
        assert_eq!(description.buckets[1].high_watermark, 0);
    });
    let metrics = fixture.node.metrics();
    let connections: u64 = metrics.iter().map(|shard| shard.connections).sum();
    let errors: u64 = metrics.iter().map(|shard| shard.error_responses).sum();
    assert!(connections <= 2, "one connection per shard endpoint, never re-made: {metrics:?}");
    assert!(errors >= 20, "every refusal is counted: {metrics:?}");
    fixture.runtime.block_on(fixture.connection.close());
    fixture.node.shutdown().unwrap();
}

/// Frames: short, truncated, over the size limits (one of them actually sent), unknown APIs
/// and versions, bad flags.
async fn refuse_bad_frames(connection: &Connection, owner: SocketAddr) {
    let short = &header(8, 1, 0, 5, 0)[..10];
    expect_code(connection, owner, short, ErrorCode::MalformedRequest, "frame header").await;
    let mut truncated = header(8, 1, 0, 6, 100);
    truncated.extend_from_slice(&[0u8; 20]);
    expect_code(connection, owner, &truncated, ErrorCode::MalformedRequest, "100-byte body").await;
    let huge = header(10, 1, 0, 7, u32::MAX);
    expect_code(connection, owner, &huge, ErrorCode::FrameTooLarge, "over the limit").await;
    // Over the limit and actually sending: the node stops reading and still answers.
    let mut flood = header(10, 1, 0, 8, REQUEST_BODY_SIZE_MAX_BYTES + 1);
    // More than the stream flow-control window (16 MiB): the write blocks, then is stopped.
    flood.resize(flood.len() + 24 * 1024 * 1024, 0xAB);
    expect_code(connection, owner, &flood, ErrorCode::FrameTooLarge, "over the limit").await;
    // Requests without records have a far smaller limit than produce.
    let big_metadata = header(8, 1, 0, 9, REQUEST_FIELDS_SIZE_MAX_BYTES + 1);
    expect_code(connection, owner, &big_metadata, ErrorCode::FrameTooLarge, "over the limit").await;
    let unknown_api = header(999, 1, 0, 9, 0);
    let error = refused(connection, owner, &unknown_api).await;
    assert_eq!(error.code, ErrorCode::UnsupportedApi, "{error:?}");
    let answer = connection.call_raw(owner, &header(0, 1, 0, 10, 0)).await;
    assert!(
        matches!(answer, Err(ClientError::Server(ref e)) if e.code == ErrorCode::UnsupportedApi)
    );
    expect_code(
        connection,
        owner,
        &header(8, 2, 0, 11, 0),
        ErrorCode::UnsupportedVersion,
        "version 2",
    )
    .await;
    expect_code(
        connection,
        owner,
        &header(8, 1, 0x80, 12, 0),
        ErrorCode::MalformedRequest,
        "flags",
    )
    .await;
    let response_as_request = header(8, 1, FrameFlags::RESPONSE, 13, 0);
    expect_code(connection, owner, &response_as_request, ErrorCode::MalformedRequest, "response")
        .await;
}

/// Message bodies: bytes left after the message, a list count no body could hold.
async fn refuse_bad_bodies(connection: &Connection, owner: SocketAddr) {
    let mut trailing = encode_frame(
        ApiKey::Metadata,
        FrameFlags::request(),
        14,
        &MetadataRequest { tables: Vec::new() },
        &[],
    );
    trailing.extend_from_slice(b"junk");
    let length = (trailing.len() - FRAME_HEADER_SIZE_BYTES) as u32;
    trailing[12..16].copy_from_slice(&length.to_le_bytes());
    expect_code(connection, owner, &trailing, ErrorCode::MalformedRequest, "left after").await;
    let mut hostile_count = header(8, 1, 0, 15, 4);
    hostile_count.extend_from_slice(&u32::MAX.to_le_bytes());
    expect_code(connection, owner, &hostile_count, ErrorCode::MalformedRequest, "").await;
}

/// Batches: garbage, a flipped bit, another schema, over the size limit. `good` is a batch
/// the table takes.
async fn refuse_bad_batches(
    connection: &Connection,
    owner: SocketAddr,
    table_id: u64,
    good: &[u8],
) {
    expect_code(
        connection,
        owner,
        &produce_frame(table_id, 0, 20, &[0x5Au8; 256]),
        ErrorCode::InvalidBatch,
        "",
    )
    .await;
    let mut flipped = good.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    expect_code(
        connection,
        owner,
        &produce_frame(table_id, 0, 21, &flipped),
        ErrorCode::InvalidBatch,
        "crc",
    )
    .await;
    let mut wrong_schema = good.to_vec();
    wrong_schema[SCHEMA_ID_AT..SCHEMA_ID_AT + 2].copy_from_slice(&7u16.to_le_bytes());
    let crc = compute_crc(&wrong_schema);
    set_crc(&mut wrong_schema, crc);
    expect_code(
        connection,
        owner,
        &produce_frame(table_id, 0, 22, &wrong_schema),
        ErrorCode::SchemaMismatch,
        "schema",
    )
    .await;
    let mut oversize = good.to_vec();
    let announced = BATCH_SIZE_MAX_BYTES + 64;
    oversize[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&announced.to_le_bytes());
    let crc = compute_crc(&oversize);
    set_crc(&mut oversize, crc);
    expect_code(
        connection,
        owner,
        &produce_frame(table_id, 0, 23, &oversize),
        ErrorCode::BatchTooLarge,
        "limit",
    )
    .await;
}

/// Batches sent wrong: two in one request, none, to a table or bucket that does not
/// exist. `good` is a batch the table takes.
async fn refuse_misaddressed_batches(
    connection: &Connection,
    owner: SocketAddr,
    table_id: u64,
    good: &[u8],
) {
    let mut two = good.to_vec();
    two.extend_from_slice(good);
    expect_code(
        connection,
        owner,
        &produce_frame(table_id, 0, 24, &two),
        ErrorCode::InvalidRequest,
        "exactly one batch",
    )
    .await;
    expect_code(
        connection,
        owner,
        &produce_frame(table_id, 0, 25, &[]),
        ErrorCode::InvalidRequest,
        "must carry",
    )
    .await;
    expect_code(
        connection,
        owner,
        &produce_frame(table_id + 100, 0, 26, good),
        ErrorCode::TableNotFound,
        "",
    )
    .await;
    expect_code(
        connection,
        owner,
        &produce_frame(table_id, 2, 27, good),
        ErrorCode::BucketNotFound,
        "2 buckets",
    )
    .await;
}

/// Reads of things that do not exist: a table, a column.
async fn refuse_reads_of_what_does_not_exist(
    connection: &Connection,
    owner: SocketAddr,
    table_id: u64,
) {
    let fetch = FetchRequest {
        table_id: table_id + 100,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        projection: None,
        buckets: vec![FetchBucket { bucket: 0, offset: 0, max_bytes: 1 << 20 }],
    };
    let frame = encode_frame(ApiKey::Fetch, FrameFlags::request(), 30, &fetch, &[]);
    expect_code(connection, owner, &frame, ErrorCode::TableNotFound, "").await;
    let fetch = FetchRequest { table_id, projection: Some(vec![9]), ..fetch };
    let frame = encode_frame(ApiKey::Fetch, FrameFlags::request(), 31, &fetch, &[]);
    expect_code(connection, owner, &frame, ErrorCode::InvalidRequest, "").await;
    let offsets = ListOffsetsRequest {
        table_id: table_id + 100,
        query: OffsetQuery::Latest,
        buckets: vec![0],
    };
    let frame = encode_frame(ApiKey::ListOffsets, FrameFlags::request(), 32, &offsets, &[]);
    expect_code(connection, owner, &frame, ErrorCode::TableNotFound, "").await;
}

/// Every frame gets an answer: a response for the API asked, or a decodable error that is
/// not an internal one.
fn check_answer(frame: &[u8], answer: &Result<arrow_buffer::Buffer, ClientError>) {
    match answer {
        Ok(bytes) => {
            let header = FrameHeader::parse(bytes.as_slice(), u32::MAX).unwrap();
            assert!(header.frame_flags().is_response() && !header.frame_flags().is_error());
            assert_eq!(&bytes.as_slice()[..2], &frame[..2], "the answer is for the API asked");
        }
        Err(ClientError::Server(error)) => {
            assert_ne!(error.code, ErrorCode::Internal, "{error:?} for {frame:02x?}");
        }
        Err(other) => panic!("no answer for frame {frame:02x?}: {other}"),
    }
}

fn arbitrary_frame(table_id: u64) -> impl Strategy<Value = Vec<u8>> {
    let random = proptest::collection::vec(any::<u8>(), 0..200);
    let framed = (
        0u16..14,
        0u16..3,
        prop_oneof![Just(0u16), 0u16..4],
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..300),
        prop_oneof![Just(0i32), -8i32..8],
    )
        .prop_map(|(api, version, flags, request_id, body, length_skew)| {
            let length = (body.len() as i64 + i64::from(length_skew)).max(0) as u32;
            let mut frame = header(api, version, flags, request_id, length);
            frame.extend_from_slice(&body);
            frame
        });
    // Well-formed produce and fetch headers with a random body after the table id, so the
    // bytes reach batch validation and projection, not only the frame checks.
    let produce = (proptest::collection::vec(any::<u8>(), 0..400), any::<u8>()).prop_map(
        move |(mut tail, padding)| {
            let request = ProduceRequest { table_id, bucket: 0, acks: Acks::All, timeout_ms: 10 };
            let mut frame = encode_frame(ApiKey::Produce, FrameFlags::request(), 1, &request, &[]);
            let at = frame.len() - 1;
            frame[at] = padding % 70;
            frame.append(&mut tail);
            let length = (frame.len() - FRAME_HEADER_SIZE_BYTES) as u32;
            frame[12..16].copy_from_slice(&length.to_le_bytes());
            frame
        },
    );
    prop_oneof![random, framed, produce]
}

#[test]
fn random_frames_are_all_answered_and_the_node_keeps_serving() {
    let fixture = fixture();
    let (connection, owner, table_id) = (&fixture.connection, fixture.owner, fixture.table_id);
    let cases = ufer_tests::iterations(256) as u32;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&arbitrary_frame(table_id), |frame| {
        let answer = fixture.runtime.block_on(connection.call_raw(owner, &frame));
        check_answer(&frame, &answer);
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    fixture.runtime.block_on(async {
        // Still healthy: a real produce is stored and metadata answers.
        let good = table::batch(0, 10, Compression::None, None);
        assert_eq!(produce_ok(connection, owner, &produce_frame(table_id, 0, 1, &good)).await, 10);
        let metadata = connection.metadata(true).await.unwrap();
        assert!(metadata.tables.iter().any(|table| table.info.table_id == table_id));
        connection.close().await;
    });
    let metrics = fixture.node.metrics();
    let connections: u64 = metrics.iter().map(|shard| shard.connections).sum();
    assert!(connections <= 2, "random frames never cost a connection: {metrics:?}");
    fixture.node.shutdown().unwrap();
}
