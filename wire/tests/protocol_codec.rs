//! Properties of the protocol codec: every message survives encode → frame → decode
//! unchanged; no byte string makes a frame or body decoder panic; schema text round-trips
//! for every type it can express and never panics on garbage.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use proptest::prelude::*;
use ufer_wire::protocol::codec::Decoder;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{ApiKey, FrameFlags, FrameHeader, FRAME_HEADER_SIZE_BYTES};
use ufer_wire::protocol::messages::*;
use ufer_wire::schema_text::{format_schema, parse_schema};

fn cases(default: u32) -> u32 {
    let multiplier = std::env::var("UFER_PROPTEST_MULTIPLIER")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .unwrap_or(1);
    default * multiplier.max(1)
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_ é]{0,12}"
}

fn path() -> impl Strategy<Value = TablePath> {
    (name(), name()).prop_map(|(database, table)| TablePath { database, table })
}

fn error() -> impl Strategy<Value = Option<ErrorBody>> {
    prop::option::of(
        (0..ErrorCode::ALL.len(), ".{0,30}")
            .prop_map(|(index, message)| ErrorBody::new(ErrorCode::ALL[index], message)),
    )
}

fn definition() -> impl Strategy<Value = TableDefinition> {
    (
        ".{0,60}",
        any::<u32>(),
        prop::collection::vec(name(), 0..3),
        prop::collection::vec(name(), 0..3),
        prop::option::of(name()),
        prop::collection::vec((name(), ".{0,10}"), 0..4),
    )
        .prop_map(
            |(schema, bucket_count, bucket_key, primary_key, partition_by, properties)| {
                TableDefinition {
                    schema,
                    bucket_count,
                    bucket_key,
                    primary_key,
                    partition_by,
                    properties,
                }
            },
        )
}

fn info() -> impl Strategy<Value = TableInfo> {
    (any::<u64>(), path(), any::<u16>(), definition(), any::<i64>()).prop_map(
        |(table_id, path, schema_id, definition, created_at_ms)| TableInfo {
            table_id,
            path,
            schema_id,
            definition,
            created_at_ms,
        },
    )
}

/// Encodes `body` as a frame, parses the frame back, and checks the body and records.
fn round_trip<B: Body + PartialEq + Debug>(api: ApiKey, body: &B, records: &[u8]) {
    let frame = encode_frame(api, FrameFlags::response(), 42, body, records);
    if B::HAS_RECORDS {
        assert_eq!((frame.len() - records.len()) % 64, 0, "records start aligned in the frame");
    }
    let header = FrameHeader::parse(&frame, u32::MAX).unwrap();
    assert_eq!(header.api_key.get(), api as u16);
    assert_eq!(header.request_id.get(), 42);
    assert_eq!(header.body_length.get() as usize, frame.len() - FRAME_HEADER_SIZE_BYTES);
    let (decoded, decoded_records) = decode_body::<B>(&frame[FRAME_HEADER_SIZE_BYTES..]).unwrap();
    assert_eq!(&decoded, body);
    assert_eq!(decoded_records, records);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn admin_messages_round_trip(path in path(), definition in definition(), info in info(), flag in any::<bool>(), names in prop::collection::vec(name(), 0..5)) {
        round_trip(ApiKey::CreateDatabase, &CreateDatabaseRequest { name: path.database.clone(), if_not_exists: flag }, &[]);
        round_trip(ApiKey::DropDatabase, &DropDatabaseRequest { name: path.database.clone(), if_exists: flag, cascade: !flag }, &[]);
        round_trip(ApiKey::ListDatabases, &ListDatabasesResponse { names: names.clone() }, &[]);
        round_trip(ApiKey::CreateTable, &CreateTableRequest { path: path.clone(), definition, if_not_exists: flag }, &[]);
        round_trip(ApiKey::DropTable, &DropTableRequest { path: path.clone(), if_exists: flag }, &[]);
        round_trip(ApiKey::ListTables, &ListTablesResponse { tables: names }, &[]);
        let buckets = (0..3).map(|bucket| BucketStatus { bucket, log_start_offset: 1, high_watermark: 5, log_end_offset: 6, size_bytes: 99, segment_count: 2, tiered_offset: Some(4), damaged_offsets: vec![(2, 3)] }).collect();
        round_trip(ApiKey::DescribeTable, &DescribeTableResponse { info: info.clone(), buckets }, &[]);
        let metadata = MetadataResponse {
            nodes: vec![NodeInfo { node_id: 1, host: "127.0.0.1".into(), shard_ports: vec![7001, 7002] }],
            tables: vec![TableMetadata { info, buckets: vec![BucketLocation { bucket: 0, node_id: 1, shard: 1 }] }],
        };
        round_trip(ApiKey::Metadata, &metadata, &[]);
        round_trip(ApiKey::Metadata, &MetadataRequest { tables: vec![path] }, &[]);
    }

    #[test]
    fn data_messages_round_trip(
        table_id in any::<u64>(),
        bucket in any::<u32>(),
        records in prop::collection::vec(any::<u8>(), 0..300),
        projection in prop::option::of(prop::collection::vec(any::<u32>(), 0..5)),
        error in error(),
        timestamp in any::<i64>(),
    ) {
        round_trip(ApiKey::Produce, &ProduceRequest { table_id, bucket, acks: Acks::Leader, timeout_ms: 5_000 }, &records);
        round_trip(ApiKey::Produce, &ProduceResponse { base_offset: 1, last_offset: 9, commit_timestamp: timestamp, high_watermark: 10, duplicate: true }, &[]);
        let fetch = FetchRequest { table_id, max_wait_ms: 500, min_bytes: 1, max_bytes: 1 << 20, projection, buckets: vec![FetchBucket { bucket, offset: 7, max_bytes: 4096 }] };
        round_trip(ApiKey::Fetch, &fetch, &[]);
        // A failed bucket carries no records; the records belong to a bucket that answered.
        let failed = FetchedBucket { bucket: bucket.wrapping_add(1), error: error.clone(), high_watermark: 3, log_start_offset: 0, records_length: 0 };
        let answered = FetchedBucket { bucket, error: None, high_watermark: 3, log_start_offset: 0, records_length: records.len() as u32 };
        let fetched = FetchResponse { buckets: vec![failed, answered] };
        round_trip(ApiKey::Fetch, &fetched, &records);
        for query in [OffsetQuery::Earliest, OffsetQuery::Latest, OffsetQuery::Timestamp(timestamp)] {
            round_trip(ApiKey::ListOffsets, &ListOffsetsRequest { table_id, query, buckets: vec![bucket, 0] }, &[]);
        }
        round_trip(ApiKey::ListOffsets, &ListOffsetsResponse { offsets: vec![BucketOffset { bucket, error, offset: 77 }] }, &[]);
        round_trip(ApiKey::InitWriter, &InitWriterResponse { writer_id: table_id as i64 }, &[]);
    }

    #[test]
    fn no_byte_string_makes_a_decoder_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = FrameHeader::parse(&bytes, 1 << 20);
        let _ = decode_body::<CreateDatabaseRequest>(&bytes);
        let _ = decode_body::<DropDatabaseRequest>(&bytes);
        let _ = decode_body::<ListDatabasesResponse>(&bytes);
        let _ = decode_body::<CreateTableRequest>(&bytes);
        let _ = decode_body::<CreateTableResponse>(&bytes);
        let _ = decode_body::<DropTableRequest>(&bytes);
        let _ = decode_body::<ListTablesRequest>(&bytes);
        let _ = decode_body::<ListTablesResponse>(&bytes);
        let _ = decode_body::<DescribeTableRequest>(&bytes);
        let _ = decode_body::<DescribeTableResponse>(&bytes);
        let _ = decode_body::<MetadataRequest>(&bytes);
        let _ = decode_body::<MetadataResponse>(&bytes);
        let _ = decode_body::<InitWriterResponse>(&bytes);
        let _ = decode_body::<ProduceRequest>(&bytes);
        let _ = decode_body::<ProduceResponse>(&bytes);
        let _ = decode_body::<FetchRequest>(&bytes);
        let _ = decode_body::<FetchResponse>(&bytes);
        let _ = decode_body::<ListOffsetsRequest>(&bytes);
        let _ = decode_body::<ListOffsetsResponse>(&bytes);
        let _ = ErrorBody::decode(&mut Decoder::new(&bytes));
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = parse_schema(text);
        }
    }

    #[test]
    fn schema_text_round_trips(columns in prop::collection::vec((name(), schema_type(), any::<bool>()), 1..6)) {
        let mut seen = std::collections::HashSet::new();
        let fields: Vec<Field> = columns
            .into_iter()
            .filter(|(name, _, _)| seen.insert(name.clone()))
            .map(|(name, data_type, nullable)| Field::new(name, data_type, nullable))
            .collect();
        let schema = Schema::new(fields);
        let text = format_schema(&schema).unwrap();
        prop_assert_eq!(parse_schema(&text).unwrap(), schema);
    }

    #[test]
    fn schema_text_garbage_never_panics(text in "[a-zA-Z_ <>(),`0-9]{0,80}") {
        let _ = parse_schema(&text);
    }
}

fn schema_type() -> impl Strategy<Value = DataType> {
    let leaf = prop_oneof![
        Just(DataType::Boolean),
        Just(DataType::Int8),
        Just(DataType::Int16),
        Just(DataType::Int32),
        Just(DataType::Int64),
        Just(DataType::Float32),
        Just(DataType::Float64),
        (1u8..=38)
            .prop_flat_map(|precision| (Just(precision), 0..=precision as i8))
            .prop_map(|(p, s)| DataType::Decimal128(p, s)),
        Just(DataType::Utf8),
        Just(DataType::Binary),
        (1i32..64).prop_map(DataType::FixedSizeBinary),
        Just(DataType::Date32),
        Just(DataType::Time32(TimeUnit::Second)),
        Just(DataType::Time32(TimeUnit::Millisecond)),
        Just(DataType::Time64(TimeUnit::Microsecond)),
        Just(DataType::Time64(TimeUnit::Nanosecond)),
        Just(DataType::Timestamp(TimeUnit::Millisecond, None)),
        Just(DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
    ];
    leaf.prop_recursive(3, 10, 3, |inner| {
        prop_oneof![
            (inner.clone(), any::<bool>()).prop_map(|(item, nullable)| DataType::List(
                std::sync::Arc::new(Field::new("item", item, nullable))
            )),
            (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(key, value, nullable)| {
                let key = match key {
                    DataType::List(_) | DataType::Struct(_) | DataType::Map(_, _) => DataType::Utf8,
                    other => other,
                };
                let entries = Fields::from(vec![
                    Field::new("key", key, false),
                    Field::new("value", value, nullable),
                ]);
                DataType::Map(
                    std::sync::Arc::new(Field::new("entries", DataType::Struct(entries), false)),
                    false,
                )
            }),
            prop::collection::vec((inner, any::<bool>()), 1..3).prop_map(|children| {
                let fields: Fields = children
                    .into_iter()
                    .enumerate()
                    .map(|(index, (data_type, nullable))| {
                        Field::new(format!("f{index}"), data_type, nullable)
                    })
                    .collect();
                DataType::Struct(fields)
            }),
        ]
    })
}
