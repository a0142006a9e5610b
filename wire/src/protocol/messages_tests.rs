//! Unit tests of the protocol messages: every message survives a frame round trip with its
//! records section aligned, and no prefix, suffix, mutation or garbage makes a decoder
//! panic, allocate for counts the input cannot hold, or accept a non-canonical encoding:
//! padding other than the zeros that align the records section, or a fetch response whose
//! buckets' `records_length` do not add up to its records section.

use std::fmt::Debug;

use proptest::prelude::*;

use super::*;
use crate::protocol::error_code::ErrorCode;

/// Proptest cases: `default` normally, scaled by `UFER_PROPTEST_MULTIPLIER` for long runs
/// (the same reading as the crate's integration tests).
fn cases(default: u32) -> u32 {
    let multiplier = std::env::var("UFER_PROPTEST_MULTIPLIER")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .unwrap_or(1);
    default * multiplier.max(1)
}

/// What a decoder made of a body: its fields encoded again, how many bytes of the body the
/// fields took (read by the fields' decoder alone), and the records length.
#[derive(Debug)]
struct Decoded {
    fields: Vec<u8>,
    fields_length: usize,
    records_length: usize,
}

/// A message type's decoder, type-erased so every type can be driven from one table.
#[derive(Clone, Copy)]
struct Codec {
    name: &'static str,
    has_records: bool,
    /// True if every accepted body is the one encoding of what it decodes to. Not so for
    /// messages holding an `ErrorBody`: an unknown error code decodes to `Internal`.
    canonical: bool,
    /// For messages whose fields describe their records section: the records length the
    /// fields at the start of an (accepted) body describe.
    described_records: Option<fn(&[u8]) -> u64>,
    decode: fn(&[u8]) -> Result<Decoded, ProtocolError>,
}

fn decode_as<B: Body>(body: &[u8]) -> Result<Decoded, ProtocolError> {
    let (message, records) = decode_body::<B>(body)?;
    let mut encoder = Encoder::default();
    message.encode(&mut encoder);
    let mut fields = Decoder::new(body);
    B::decode(&mut fields).expect("the fields of an accepted body decode");
    Ok(Decoded {
        fields: encoder.finish(),
        fields_length: fields.position(),
        records_length: records.len(),
    })
}

/// An error frame's body is decoded as the client and node decode it.
fn decode_error_body(body: &[u8]) -> Result<Decoded, ProtocolError> {
    let mut decoder = Decoder::new(body);
    let error = ErrorBody::decode(&mut decoder)?;
    decoder.finish()?;
    let mut encoder = Encoder::default();
    error.encode(&mut encoder);
    Ok(Decoded { fields: encoder.finish(), fields_length: body.len(), records_length: 0 })
}

fn codec<B: Body>(canonical: bool) -> Codec {
    Codec {
        name: std::any::type_name::<B>(),
        has_records: B::HAS_RECORDS,
        canonical,
        described_records: None,
        decode: decode_as::<B>,
    }
}

/// The sum of the buckets' `records_length` of the fetch response at the start of `body`,
/// read by the fields' decoder alone.
fn fetch_described_records(body: &[u8]) -> u64 {
    let fetched = FetchResponse::decode(&mut Decoder::new(body)).unwrap();
    fetched.buckets.iter().map(|bucket| u64::from(bucket.records_length)).sum()
}

/// Every message type, and `ErrorBody` as an error frame carries it.
fn every_codec() -> Vec<Codec> {
    vec![
        codec::<Empty>(true),
        codec::<CreateDatabaseRequest>(true),
        codec::<DropDatabaseRequest>(true),
        codec::<ListDatabasesRequest>(true),
        codec::<ListDatabasesResponse>(true),
        codec::<CreateTableRequest>(true),
        codec::<CreateTableResponse>(true),
        codec::<DropTableRequest>(true),
        codec::<ListTablesRequest>(true),
        codec::<ListTablesResponse>(true),
        codec::<DescribeTableRequest>(true),
        codec::<DescribeTableResponse>(true),
        codec::<MetadataRequest>(true),
        codec::<MetadataResponse>(true),
        codec::<InitWriterRequest>(true),
        codec::<InitWriterResponse>(true),
        codec::<ProduceRequest>(true),
        codec::<ProduceResponse>(true),
        codec::<FetchRequest>(true),
        Codec { described_records: Some(fetch_described_records), ..codec::<FetchResponse>(false) },
        codec::<ListOffsetsRequest>(true),
        codec::<ListOffsetsResponse>(false),
        codec::<UpsertRequest>(true),
        codec::<UpsertResponse>(true),
        codec::<LookupRequest>(true),
        codec::<LookupResponse>(true),
        codec::<SnapshotScanRequest>(true),
        codec::<SnapshotScanResponse>(true),
        Codec {
            name: "ErrorBody",
            has_records: false,
            canonical: false,
            described_records: None,
            decode: decode_error_body,
        },
    ]
}

/// The padding that makes the records section after `fields_length` bytes of fields (and
/// the padding byte) start at a multiple of [`RECORDS_ALIGNMENT_BYTES`] from the frame start.
fn aligning_padding(fields_length: usize) -> usize {
    (0..RECORDS_ALIGNMENT_BYTES)
        .find(|padding| {
            (FRAME_HEADER_SIZE_BYTES + fields_length + 1 + padding)
                .is_multiple_of(RECORDS_ALIGNMENT_BYTES)
        })
        .unwrap()
}

/// Checks what a decoder made of `input`: an accepted body is its fields, then (for
/// messages with a records section) the one padding that aligns the records section, all
/// zeros, and the records, as many bytes as the fields describe, if they do. A body of a
/// canonical type is exactly the encoding of what it decoded to.
fn check_decoded(codec: &Codec, input: &[u8], result: &Result<Decoded, ProtocolError>) {
    let Ok(decoded) = result else { return };
    let fields_end = decoded.fields_length;
    assert!(fields_end <= input.len(), "{}", codec.name);
    if codec.has_records {
        let padding = aligning_padding(fields_end);
        assert_eq!(
            input.len(),
            fields_end + 1 + padding + decoded.records_length,
            "{} accepted {input:?}",
            codec.name
        );
        assert_eq!(usize::from(input[fields_end]), padding, "{} accepted {input:?}", codec.name);
        assert!(
            input[fields_end + 1..][..padding].iter().all(|byte| *byte == 0),
            "{} accepted {input:?}",
            codec.name
        );
        if let Some(described_records) = codec.described_records {
            assert_eq!(
                described_records(input),
                decoded.records_length as u64,
                "{} accepted {input:?}",
                codec.name
            );
        }
    } else {
        assert_eq!(decoded.records_length, 0, "{}", codec.name);
        assert_eq!(fields_end, input.len(), "{} accepted {input:?}", codec.name);
    }
    if codec.canonical {
        assert_eq!(decoded.fields, input[..fields_end], "{} accepted {input:?}", codec.name);
    }
}

/// Record bytes of `length`, not all alike.
fn records(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 37 + 11) as u8).collect()
}

fn path() -> TablePath {
    TablePath::new("lager_ö", "fjäll_表_🦀")
}

fn definition() -> TableDefinition {
    TableDefinition {
        schema: "id INT64 NOT NULL, größe FLOAT64, name STRING".into(),
        bucket_count: 7,
        bucket_key: vec!["id".into(), "größe".into()],
        primary_key: vec!["id".into(), "name".into(), "ключ".into()],
        partition_by: Some("tag_日".into()),
        properties: vec![
            ("log.compression".into(), "zstd".into()),
            ("notiz".into(), "ünïcödé ✓".into()),
            ("retention.bytes".into(), "1073741824".into()),
        ],
    }
}

fn info() -> TableInfo {
    TableInfo {
        table_id: 0x0123_4567_89AB_CDEF,
        path: path(),
        schema_id: 0xBEEF,
        definition: definition(),
        created_at_ms: -1_722_000_000_123,
    }
}

fn bucket_status(bucket: u32) -> BucketStatus {
    BucketStatus {
        bucket,
        log_start_offset: 10 + u64::from(bucket),
        high_watermark: 1 << 40,
        log_end_offset: (1 << 40) + 3,
        size_bytes: u64::MAX - 1,
        segment_count: 0xA0B0_C0D0,
        tiered_offset: (bucket % 2 == 1).then_some(7 + u64::from(bucket)),
        damaged_offsets: if bucket == 0 { vec![(3, 9), (u64::MAX - 1, u64::MAX)] } else { vec![] },
    }
}

fn metadata_response() -> MetadataResponse {
    MetadataResponse {
        nodes: vec![
            NodeInfo {
                node_id: 1, host: "knoten-ä.example".into(), shard_ports: vec![7001, 7002]
            },
            NodeInfo { node_id: u32::MAX, host: "::1".into(), shard_ports: vec![] },
            NodeInfo { node_id: 3, host: "主机".into(), shard_ports: vec![1, u16::MAX, 3] },
        ],
        tables: vec![
            TableMetadata {
                info: info(),
                buckets: (0..3)
                    .map(|bucket| BucketLocation { bucket, node_id: bucket + 1, shard: 2 * bucket })
                    .collect(),
            },
            TableMetadata {
                info: TableInfo { table_id: 2, ..TableInfo::default() },
                buckets: vec![],
            },
        ],
    }
}

fn fetch_request(projection: Option<Vec<u32>>) -> FetchRequest {
    FetchRequest {
        table_id: u64::MAX,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1 << 20,
        projection,
        buckets: vec![
            FetchBucket { bucket: 0, offset: 0, max_bytes: 4096 },
            FetchBucket { bucket: 5, offset: u64::MAX - 7, max_bytes: u32::MAX },
            FetchBucket { bucket: 2, offset: 1 << 33, max_bytes: 1 },
        ],
    }
}

fn fetch_response() -> FetchResponse {
    FetchResponse {
        buckets: vec![
            FetchedBucket {
                bucket: 0,
                error: None,
                high_watermark: 99,
                log_start_offset: 3,
                records_length: 20,
            },
            FetchedBucket {
                bucket: 4,
                error: Some(ErrorBody::new(ErrorCode::OffsetOutOfRange, "offset 7 < start 9 ✗")),
                high_watermark: 12,
                log_start_offset: 9,
                records_length: 0,
            },
            FetchedBucket {
                bucket: u32::MAX,
                error: None,
                high_watermark: u64::MAX,
                log_start_offset: 0,
                records_length: 17,
            },
        ],
    }
}

fn list_offsets_response() -> ListOffsetsResponse {
    ListOffsetsResponse {
        offsets: vec![
            BucketOffset { bucket: 0, error: None, offset: 42 },
            BucketOffset {
                bucket: 9,
                error: Some(ErrorBody::new(ErrorCode::BucketNotFound, "bucket 9 of «t»")),
                offset: 0,
            },
            BucketOffset { bucket: 1, error: None, offset: u64::MAX },
        ],
    }
}

/// Encodes `body` in a frame, checks the header, the body and records decoded back, and
/// where the records section sits; returns the frame.
fn round_trip<B: Body + PartialEq + Debug>(
    api: ApiKey,
    flags: FrameFlags,
    body: &B,
    records: &[u8],
) -> Vec<u8> {
    let request_id = 0xDEAD_0000 | api as u32;
    let frame = encode_frame(api, flags, request_id, body, records);
    let header = FrameHeader::parse(&frame, u32::MAX).unwrap();
    assert_eq!(header.api_key.get(), api as u16);
    assert_eq!(header.api_version.get(), api.version());
    assert_eq!(header.frame_flags(), flags);
    assert_eq!(header.request_id.get(), request_id);
    assert_eq!(header.body_length.get() as usize, frame.len() - FRAME_HEADER_SIZE_BYTES);

    let (decoded, decoded_records) = decode_body::<B>(&frame[FRAME_HEADER_SIZE_BYTES..]).unwrap();
    assert_eq!(&decoded, body);
    assert_eq!(decoded_records, records);
    let records_at = frame.len() - records.len();
    if B::HAS_RECORDS {
        assert_eq!(decoded_records.as_ptr(), frame[records_at..].as_ptr(), "records are the tail");
        assert_eq!(records_at % RECORDS_ALIGNMENT_BYTES, 0, "records start aligned");
        let mut encoder = Encoder::default();
        body.encode(&mut encoder);
        let padding_at = FRAME_HEADER_SIZE_BYTES + encoder.len();
        let padding = usize::from(frame[padding_at]);
        assert!(padding < RECORDS_ALIGNMENT_BYTES);
        assert_eq!(padding_at + 1 + padding, records_at, "padding byte counts the padding");
        assert!(frame[padding_at + 1..records_at].iter().all(|byte| *byte == 0));
    }
    let head = encode_frame_head(api, flags, request_id, body, records.len());
    assert_eq!([head.as_slice(), records].concat(), frame, "head + records is the frame");
    frame
}

/// A representative encoded message.
struct Sample {
    label: &'static str,
    api: ApiKey,
    flags: FrameFlags,
    /// Fields, padding and records.
    body: Vec<u8>,
    records_length: usize,
    codec: Codec,
}

fn sample<B: Body + PartialEq + Debug>(
    label: &'static str,
    api: ApiKey,
    flags: FrameFlags,
    body: B,
    records: &[u8],
) -> Sample {
    let frame = round_trip(api, flags, &body, records);
    Sample {
        label,
        api,
        flags,
        body: frame[FRAME_HEADER_SIZE_BYTES..].to_vec(),
        records_length: records.len(),
        codec: codec_of::<B>(),
    }
}

/// `B`'s entry in [`every_codec`].
fn codec_of<B: Body>() -> Codec {
    let name = std::any::type_name::<B>();
    every_codec().into_iter().find(|codec| codec.name == name).unwrap()
}

/// Every request and response, non-default, with every enum variant and option both ways.
/// Building them checks their round trips.
#[expect(
    clippy::too_many_lines,
    reason = "a table of samples, one entry per message and variant, read as a list"
)]
fn representative_samples() -> Vec<Sample> {
    use ApiKey as A;
    let (request, response) = (FrameFlags::request(), FrameFlags::response());
    let mut samples = vec![
        sample(
            "create database",
            A::CreateDatabase,
            request,
            CreateDatabaseRequest { name: "datenbank_ü_数据".into(), if_not_exists: true },
            &[],
        ),
        sample("create database answer", A::CreateDatabase, response, Empty, &[]),
        sample(
            "drop database",
            A::DropDatabase,
            request,
            DropDatabaseRequest { name: "alt-ö".into(), if_exists: true, cascade: false },
            &[],
        ),
        sample(
            "drop database cascade",
            A::DropDatabase,
            request,
            DropDatabaseRequest { name: "x".into(), if_exists: false, cascade: true },
            &[],
        ),
        sample("drop database answer", A::DropDatabase, response, Empty, &[]),
        sample("list databases", A::ListDatabases, request, ListDatabasesRequest, &[]),
        sample(
            "list databases answer",
            A::ListDatabases,
            response,
            ListDatabasesResponse { names: vec!["a".into(), "bäume".into(), "中文".into()] },
            &[],
        ),
        sample(
            "create table",
            A::CreateTable,
            request,
            CreateTableRequest { path: path(), definition: definition(), if_not_exists: true },
            &[],
        ),
        sample(
            "create table unpartitioned",
            A::CreateTable,
            request,
            CreateTableRequest {
                path: path(),
                definition: TableDefinition { partition_by: None, ..definition() },
                if_not_exists: false,
            },
            &[],
        ),
        sample(
            "create table answer",
            A::CreateTable,
            response,
            CreateTableResponse { table_id: 0xFEDC_BA98_7654_3210 },
            &[],
        ),
        sample(
            "drop table",
            A::DropTable,
            request,
            DropTableRequest { path: path(), if_exists: true },
            &[],
        ),
        sample("drop table answer", A::DropTable, response, Empty, &[]),
        sample(
            "list tables",
            A::ListTables,
            request,
            ListTablesRequest { database: "lager_ö".into() },
            &[],
        ),
        sample(
            "list tables answer",
            A::ListTables,
            response,
            ListTablesResponse { tables: vec!["t1".into(), "tåble".into(), "表".into()] },
            &[],
        ),
        sample(
            "describe table",
            A::DescribeTable,
            request,
            DescribeTableRequest { path: path() },
            &[],
        ),
        sample(
            "describe table answer",
            A::DescribeTable,
            response,
            DescribeTableResponse { info: info(), buckets: (0..3).map(bucket_status).collect() },
            &[],
        ),
        sample(
            "metadata",
            A::Metadata,
            request,
            MetadataRequest { tables: vec![path(), TablePath::new("d", "t")] },
            &[],
        ),
        sample("metadata answer", A::Metadata, response, metadata_response(), &[]),
        sample("init writer", A::InitWriter, request, InitWriterRequest, &[]),
        sample(
            "init writer answer",
            A::InitWriter,
            response,
            InitWriterResponse { writer_id: i64::MAX - 1 },
            &[],
        ),
        sample(
            "produce answer",
            A::Produce,
            response,
            ProduceResponse {
                base_offset: 100,
                last_offset: 109,
                commit_timestamp: -5,
                high_watermark: 110,
                duplicate: true,
            },
            &[],
        ),
        sample("fetch", A::Fetch, request, fetch_request(Some(vec![0, 2, 7, u32::MAX])), &[]),
        sample("fetch all columns", A::Fetch, request, fetch_request(None), &[]),
        sample("fetch answer", A::Fetch, response, fetch_response(), &records(37)),
        sample("fetch answer empty", A::Fetch, response, FetchResponse::default(), &[]),
        sample("list offsets answer", A::ListOffsets, response, list_offsets_response(), &[]),
    ];
    for (label, acks, records_length) in
        [("produce acks none", Acks::None, 1), ("produce acks leader", Acks::Leader, 63)]
            .into_iter()
            .chain([("produce acks all", Acks::All, 129)])
    {
        let produce = ProduceRequest { table_id: 77, bucket: 3, acks, timeout_ms: 30_000 };
        samples.push(sample(label, A::Produce, request, produce, &records(records_length)));
    }
    for (label, acks, target_columns) in [
        ("upsert all columns", Acks::All, None),
        ("upsert partial", Acks::Leader, Some(vec![0, 2, 7])),
        ("upsert no columns", Acks::None, Some(vec![])),
    ] {
        let upsert = UpsertRequest { table_id: 5, bucket: 1, acks, timeout_ms: 9, target_columns };
        samples.push(sample(label, A::Upsert, request, upsert, &records(65)));
    }
    samples.push(sample(
        "upsert answer",
        A::Upsert,
        response,
        UpsertResponse {
            changelog_offset: 1 << 40,
            changelog_record_count: 3,
            high_watermark: (1 << 40) + 3,
            duplicate: true,
        },
        &[],
    ));
    for (label, prefix, projection) in
        [("lookup", false, None), ("prefix lookup", true, Some(vec![1, 3]))]
    {
        let lookup = LookupRequest { table_id: 8, bucket: 2, prefix, projection };
        samples.push(sample(label, A::Lookup, request, lookup, &records(64)));
    }
    for (label, key_index, truncated) in
        [("lookup answer", vec![0, 2, 9], false), ("lookup found nothing", vec![], true)]
    {
        let answer = LookupResponse { key_index, log_offset: 77, truncated };
        samples.push(sample(label, A::Lookup, response, answer, &records(128)));
    }
    for (label, scan_id, projection) in
        [("snapshot scan start", 0, None), ("snapshot scan next", 12, Some(vec![0]))]
    {
        let scan =
            SnapshotScanRequest { table_id: 3, bucket: 0, scan_id, max_bytes: 1 << 20, projection };
        samples.push(sample(label, A::SnapshotScan, request, scan, &[]));
    }
    samples.push(sample(
        "snapshot scan answer",
        A::SnapshotScan,
        response,
        SnapshotScanResponse { scan_id: 12, log_offset: 99, more: true },
        &records(192),
    ));
    for (label, query) in [
        ("list offsets earliest", OffsetQuery::Earliest),
        ("list offsets latest", OffsetQuery::Latest),
        ("list offsets at time", OffsetQuery::Timestamp(-5)),
    ] {
        let request_body = ListOffsetsRequest { table_id: 9, query, buckets: vec![0, 3, u32::MAX] };
        samples.push(sample(label, A::ListOffsets, request, request_body, &[]));
    }
    samples
}

/// Lists of the smallest items each can hold, as the last field where the message allows:
/// a list's `item_size_min_bytes` larger than its real smallest item fails these.
#[expect(
    clippy::too_many_lines,
    reason = "a table of samples, one entry per list a message holds, read as a list"
)]
fn smallest_item_samples() -> Vec<Sample> {
    use ApiKey as A;
    let response = FrameFlags::response();
    let request = FrameFlags::request();
    let smallest_definition = TableDefinition {
        bucket_key: vec![String::new(); 3],
        primary_key: vec![String::new(); 3],
        properties: vec![(String::new(), String::new()); 3],
        ..TableDefinition::default()
    };
    vec![
        sample(
            "smallest database names",
            A::ListDatabases,
            response,
            ListDatabasesResponse { names: vec![String::new(); 5] },
            &[],
        ),
        sample(
            "smallest table names",
            A::ListTables,
            response,
            ListTablesResponse { tables: vec![String::new(); 5] },
            &[],
        ),
        sample(
            "smallest definition lists",
            A::CreateTable,
            request,
            CreateTableRequest {
                path: TablePath::default(),
                definition: smallest_definition,
                if_not_exists: false,
            },
            &[],
        ),
        sample(
            "smallest bucket statuses",
            A::DescribeTable,
            response,
            DescribeTableResponse {
                info: TableInfo::default(),
                buckets: vec![BucketStatus::default(); 4],
            },
            &[],
        ),
        sample(
            "smallest table paths",
            A::Metadata,
            request,
            MetadataRequest { tables: vec![TablePath::default(); 5] },
            &[],
        ),
        sample(
            "smallest nodes",
            A::Metadata,
            response,
            MetadataResponse { nodes: vec![NodeInfo::default(); 6], tables: vec![] },
            &[],
        ),
        sample(
            "smallest shard ports",
            A::Metadata,
            response,
            MetadataResponse {
                nodes: vec![NodeInfo { shard_ports: vec![0; 8], ..NodeInfo::default() }],
                tables: vec![],
            },
            &[],
        ),
        sample(
            "smallest table metadata",
            A::Metadata,
            response,
            MetadataResponse { nodes: vec![], tables: vec![TableMetadata::default(); 3] },
            &[],
        ),
        sample(
            "smallest bucket locations",
            A::Metadata,
            response,
            MetadataResponse {
                nodes: vec![],
                tables: vec![TableMetadata {
                    info: TableInfo::default(),
                    buckets: vec![BucketLocation::default(); 4],
                }],
            },
            &[],
        ),
        sample(
            "smallest projection",
            A::Fetch,
            request,
            FetchRequest { projection: Some(vec![0; 8]), ..FetchRequest::default() },
            &[],
        ),
        sample(
            "smallest fetch buckets",
            A::Fetch,
            request,
            FetchRequest { buckets: vec![FetchBucket::default(); 3], ..FetchRequest::default() },
            &[],
        ),
        // 64 of them: more bytes short than the padding (< 64 bytes) could make up for.
        sample(
            "smallest fetched buckets",
            A::Fetch,
            response,
            FetchResponse { buckets: vec![FetchedBucket::default(); 64] },
            &[],
        ),
        sample(
            "smallest offset buckets",
            A::ListOffsets,
            request,
            ListOffsetsRequest { table_id: 0, query: OffsetQuery::Earliest, buckets: vec![0; 5] },
            &[],
        ),
        sample(
            "smallest offsets",
            A::ListOffsets,
            response,
            ListOffsetsResponse { offsets: vec![BucketOffset::default(); 5] },
            &[],
        ),
    ]
}

fn error_sample() -> Sample {
    let error = ErrorBody::new(ErrorCode::TableNotFound, "table «lager_ö.fjäll» not found");
    let frame = encode_error_frame(ApiKey::DescribeTable as u16, 5, &error);
    Sample {
        label: "error",
        api: ApiKey::DescribeTable,
        flags: FrameFlags::error(),
        body: frame[FRAME_HEADER_SIZE_BYTES..].to_vec(),
        records_length: 0,
        codec: every_codec().pop().unwrap(),
    }
}

fn every_sample() -> Vec<Sample> {
    let mut samples = representative_samples();
    samples.extend(smallest_item_samples());
    samples.push(error_sample());
    samples
}

#[test]
fn every_message_round_trips_in_a_frame() {
    let samples = every_sample();
    for api in ApiKey::ALL {
        for flags in [FrameFlags::request(), FrameFlags::response()] {
            assert!(
                samples.iter().any(|sample| sample.api == api && sample.flags == flags),
                "no sample of {api:?} with {flags:?}"
            );
        }
    }
    for sample in &samples {
        let decoded = (sample.codec.decode)(&sample.body).unwrap();
        assert_eq!(decoded.records_length, sample.records_length, "{}", sample.label);
        check_decoded(&sample.codec, &sample.body, &Ok(decoded));
    }
}

#[test]
fn error_frames_round_trip_for_every_code_and_echo_the_api_number() {
    for code in ErrorCode::ALL {
        for api_key in [ApiKey::CreateDatabase as u16, ApiKey::Fetch as u16, 0, 999, u16::MAX] {
            let error = ErrorBody::new(code, format!("{code}: «ü» 表 {api_key}"));
            let frame = encode_error_frame(api_key, 0xC0FFEE, &error);
            let header = FrameHeader::parse(&frame, u32::MAX).unwrap();
            assert_eq!(header.api_key.get(), api_key);
            assert_eq!(header.api_version.get(), 1);
            assert_eq!(header.frame_flags(), FrameFlags::error());
            assert!(header.frame_flags().is_response() && header.frame_flags().is_error());
            assert_eq!(header.request_id.get(), 0xC0FFEE);
            assert_eq!(header.body_length.get() as usize, frame.len() - FRAME_HEADER_SIZE_BYTES);
            let mut decoder = Decoder::new(&frame[FRAME_HEADER_SIZE_BYTES..]);
            assert_eq!(ErrorBody::decode(&mut decoder).unwrap(), error);
            decoder.finish().unwrap();
        }
    }
}

#[test]
fn every_strict_prefix_of_the_fields_is_truncated() {
    for sample in every_sample() {
        let fields_end = if sample.codec.has_records {
            sample.body.len() - sample.records_length
        } else {
            sample.body.len()
        };
        for end in 0..fields_end {
            let result = (sample.codec.decode)(&sample.body[..end]);
            assert!(
                matches!(result, Err(ProtocolError::Truncated { .. })),
                "{} cut to {end} of {fields_end} bytes: {result:?}",
                sample.label
            );
        }
        // With a records section, a cut after the padding shortens the records: a fetch
        // response's buckets then describe more records than are left; a produce's records
        // are only shorter.
        for end in fields_end..sample.body.len() {
            let result = (sample.codec.decode)(&sample.body[..end]);
            if sample.codec.described_records.is_some() {
                assert!(
                    matches!(result, Err(ProtocolError::Invalid { what: "records_length", .. })),
                    "{} cut to {end} bytes: {result:?}",
                    sample.label
                );
            } else {
                assert_eq!(result.unwrap().records_length, end - fields_end, "{}", sample.label);
            }
        }
        let whole = (sample.codec.decode)(&sample.body).unwrap();
        assert_eq!(whole.records_length, sample.records_length, "{}", sample.label);
    }
}

#[test]
fn bytes_after_the_fields_are_trailing_or_records() {
    for sample in every_sample() {
        for extra in [&[0u8][..], &[0xFF; 7], &records(65)] {
            let body = [sample.body.as_slice(), extra].concat();
            let result = (sample.codec.decode)(&body);
            if sample.codec.described_records.is_some() {
                // More records than a fetch response's buckets describe.
                assert!(
                    matches!(result, Err(ProtocolError::Invalid { what: "records_length", .. })),
                    "{} with {} more bytes: {result:?}",
                    sample.label,
                    extra.len()
                );
            } else if sample.codec.has_records {
                let decoded = result.unwrap();
                assert_eq!(decoded.records_length, sample.records_length + extra.len());
            } else {
                assert_eq!(
                    result.unwrap_err(),
                    ProtocolError::TrailingBytes(extra.len()),
                    "{}",
                    sample.label
                );
            }
        }
    }
}

/// Fields of `body`, then `padding` as the padding byte, `padding_bytes`, and `records`.
fn padded_body<B: Body>(body: &B, padding: u8, padding_bytes: &[u8], records: &[u8]) -> Vec<u8> {
    let mut encoder = Encoder::default();
    body.encode(&mut encoder);
    encoder.u8(padding);
    encoder.raw(padding_bytes);
    encoder.raw(records);
    encoder.finish()
}

/// The length of `body`'s fields.
fn fields_length<B: Body>(body: &B) -> usize {
    let mut encoder = Encoder::default();
    body.encode(&mut encoder);
    encoder.len()
}

/// A fetch response of a failed bucket whose error message is `message_length` bytes long
/// and a bucket whose records are `records_length` (so its fields take 58 +
/// `message_length` bytes).
fn fetch_with_message(message_length: usize, records_length: u32) -> FetchResponse {
    FetchResponse {
        buckets: vec![
            FetchedBucket {
                bucket: 3,
                error: Some(ErrorBody::new(
                    ErrorCode::OffsetOutOfRange,
                    "x".repeat(message_length),
                )),
                high_watermark: 8,
                log_start_offset: 2,
                records_length: 0,
            },
            FetchedBucket {
                bucket: 4,
                error: None,
                high_watermark: 9,
                log_start_offset: 0,
                records_length,
            },
        ],
    }
}

/// A message with a records section: its fields, records of the length the fields
/// describe (if they do), and the body `encode_frame` gives it.
struct PaddingCase {
    label: String,
    fields: Vec<u8>,
    records: Vec<u8>,
    encoded: Vec<u8>,
    codec: Codec,
}

impl PaddingCase {
    fn new<B: Body>(
        label: String,
        api: ApiKey,
        flags: FrameFlags,
        body: &B,
        records: &[u8],
    ) -> Self {
        let mut encoder = Encoder::default();
        body.encode(&mut encoder);
        let frame = encode_frame(api, flags, 1, body, records);
        PaddingCase {
            label,
            fields: encoder.finish(),
            records: records.to_vec(),
            encoded: frame[FRAME_HEADER_SIZE_BYTES..].to_vec(),
            codec: codec_of::<B>(),
        }
    }

    /// The fields, `padding` as the padding byte, `padding_bytes`, and the records.
    fn body(&self, padding: usize, padding_bytes: &[u8]) -> Vec<u8> {
        [&self.fields[..], &[padding as u8], padding_bytes, &self.records].concat()
    }

    fn decode(&self, body: &[u8]) -> Result<Decoded, ProtocolError> {
        (self.codec.decode)(body)
    }
}

/// A produce, and fetch responses whose fields end at every offset modulo 64, so that every
/// aligning padding from 0 to 63 comes up.
fn padding_cases() -> Vec<PaddingCase> {
    let records = records(5);
    let produce = ProduceRequest { table_id: 1, bucket: 2, acks: Acks::None, timeout_ms: 3 };
    let mut cases = vec![PaddingCase::new(
        "produce".into(),
        ApiKey::Produce,
        FrameFlags::request(),
        &produce,
        &records,
    )];
    for message_length in 0..RECORDS_ALIGNMENT_BYTES {
        let fetch = fetch_with_message(message_length, records.len() as u32);
        let label = format!("fetch of {} bytes of fields", fields_length(&fetch));
        cases.push(PaddingCase::new(
            label,
            ApiKey::Fetch,
            FrameFlags::response(),
            &fetch,
            &records,
        ));
    }
    let paddings: std::collections::BTreeSet<usize> =
        cases.iter().map(|case| aligning_padding(case.fields.len())).collect();
    assert_eq!(paddings.len(), RECORDS_ALIGNMENT_BYTES, "every padding comes up");
    cases
}

#[test]
fn the_padding_that_aligns_the_records_is_accepted() {
    for case in padding_cases() {
        let padding = aligning_padding(case.fields.len());
        let body = case.body(padding, &vec![0; padding]);
        assert_eq!(body, case.encoded, "{}: the encoder writes that padding", case.label);
        let decoded = case.decode(&body).unwrap();
        assert_eq!(decoded.fields, case.fields, "{}", case.label);
        assert_eq!(decoded.records_length, case.records.len(), "{}", case.label);
        check_decoded(&case.codec, &body, &Ok(decoded));
    }
}

#[test]
fn padding_that_misaligns_the_records_is_refused() {
    for case in padding_cases() {
        let aligning = aligning_padding(case.fields.len());
        // As many zero bytes as announced follow, and the records are as described: only the
        // alignment is wrong.
        for padding in (0..RECORDS_ALIGNMENT_BYTES).filter(|padding| *padding != aligning) {
            let result = case.decode(&case.body(padding, &vec![0; padding]));
            assert!(
                matches!(result, Err(ProtocolError::Invalid { what: "records padding", .. })),
                "{}: padding {padding} instead of {aligning}: {result:?}",
                case.label
            );
        }
    }
}

#[test]
fn non_zero_padding_bytes_are_refused() {
    let mut tried = 0;
    for case in padding_cases() {
        let padding = aligning_padding(case.fields.len());
        for at in 0..padding {
            for value in [0x01, 0x80, 0xFF] {
                let mut padding_bytes = vec![0; padding];
                padding_bytes[at] = value;
                let result = case.decode(&case.body(padding, &padding_bytes));
                assert!(
                    matches!(result, Err(ProtocolError::Invalid { what: "records padding", .. })),
                    "{}: padding byte {at} of {padding} set to {value}: {result:?}",
                    case.label
                );
                tried += 1;
            }
        }
    }
    assert!(tried > 0);
}

#[test]
fn padding_announced_but_missing_is_truncated() {
    for case in padding_cases() {
        // No padding byte at all.
        let result = case.decode(&case.fields);
        assert!(
            matches!(result, Err(ProtocolError::Truncated { what: "records padding", .. })),
            "{}: {result:?}",
            case.label
        );
        // Fewer padding bytes than announced, and nothing after them.
        let padding = aligning_padding(case.fields.len());
        for given in 0..padding {
            let body = [&case.fields[..], &[padding as u8], &vec![0; given]].concat();
            let result = case.decode(&body);
            assert!(
                matches!(result, Err(ProtocolError::Truncated { what: "records padding", .. })),
                "{}: {given} of {padding} padding bytes: {result:?}",
                case.label
            );
        }
    }
}

#[test]
fn padding_of_64_bytes_or_more_is_refused() {
    for case in padding_cases() {
        let aligning = aligning_padding(case.fields.len());
        // The aligning padding plus a multiple of 64 would align the records too.
        let too_large = [64, 65, 127, 128, 255].into_iter().chain(
            (1..4)
                .map(|times| aligning + times * RECORDS_ALIGNMENT_BYTES)
                .filter(|padding| *padding <= 255),
        );
        for padding in too_large {
            // As many zero bytes as announced follow: only the announced count is wrong.
            let result = case.decode(&case.body(padding, &vec![0; padding]));
            assert!(
                matches!(result, Err(ProtocolError::Invalid { what: "records padding", .. })),
                "{}: padding {padding}: {result:?}",
                case.label
            );
        }
    }
}

/// A fetch response of one bucket per `records_lengths`, padded to align its records.
fn fetch_body(records_lengths: &[u32], records: &[u8]) -> Vec<u8> {
    let fetched = FetchResponse {
        buckets: records_lengths
            .iter()
            .enumerate()
            .map(|(bucket, &records_length)| FetchedBucket {
                bucket: bucket as u32,
                records_length,
                ..FetchedBucket::default()
            })
            .collect(),
    };
    let padding = aligning_padding(fields_length(&fetched));
    padded_body(&fetched, padding as u8, &vec![0; padding], records)
}

fn assert_records_length_refused(body: &[u8], label: &str) {
    let result = decode_body::<FetchResponse>(body);
    assert!(
        matches!(result, Err(ProtocolError::Invalid { what: "records_length", .. })),
        "{label}: {result:?}"
    );
}

#[test]
fn fetch_records_lengths_must_add_up_to_the_records_section() {
    // A failed bucket describing records is refused even when the total adds up.
    let failed = FetchResponse {
        buckets: vec![FetchedBucket {
            bucket: 1,
            error: Some(ErrorBody::new(ErrorCode::Timeout, "late")),
            records_length: 3,
            ..FetchedBucket::default()
        }],
    };
    let frame = encode_frame(ApiKey::Fetch, FrameFlags::response(), 1, &failed, &[1, 2, 3]);
    assert_records_length_refused(&frame[FRAME_HEADER_SIZE_BYTES..], "failed bucket with records");

    // One bucket announcing 100 bytes of records, aligning padding, and no records.
    let hostile: Vec<u8> = [
        &[1, 0, 0, 0][..],
        &[0; 4],
        &[0],
        &[5, 0, 0, 0, 0, 0, 0, 0],
        &[0; 8],
        &[100, 0, 0, 0],
        &[18],
        &[0; 18],
    ]
    .concat();
    assert_records_length_refused(&hostile, "the hostile body");
    // Only its records_length is wrong: announcing no records, it is accepted.
    let records_length_at = 4 + 4 + 1 + 8 + 8;
    let mut honest = hostile.clone();
    honest[records_length_at] = 0;
    let (decoded, decoded_records) = decode_body::<FetchResponse>(&honest).unwrap();
    assert_eq!(decoded.buckets.len(), 1);
    assert_eq!((decoded.buckets[0].high_watermark, decoded_records), (5, &[][..]));

    let fetched = fetch_response();
    let described: usize =
        fetched.buckets.iter().map(|bucket| bucket.records_length as usize).sum();
    assert_eq!(described, 37);
    let padding = aligning_padding(fields_length(&fetched));
    for length in [0, 1, described - 1, described + 1, 2 * described, described + 64] {
        let body = padded_body(&fetched, padding as u8, &vec![0; padding], &records(length));
        assert_records_length_refused(&body, &format!("{length} bytes of records for {described}"));
    }
    let body = padded_body(&fetched, padding as u8, &vec![0; padding], &records(described));
    let (decoded, decoded_records) = decode_body::<FetchResponse>(&body).unwrap();
    assert_eq!((decoded, decoded_records), (fetched, &records(described)[..]));

    // Sums past u32::MAX: added in u32 they would wrap to the records' length.
    for (records_lengths, length) in [
        (&[u32::MAX, 1][..], 0),
        (&[u32::MAX, 6], 5),
        (&[u32::MAX, u32::MAX, 2], 0),
        (&[u32::MAX, u32::MAX, u32::MAX, u32::MAX, 4], 0),
        (&[1, u32::MAX, u32::MAX, u32::MAX, u32::MAX, 4], 1),
    ] {
        let label = format!("{records_lengths:?} for {length} bytes");
        assert_records_length_refused(&fetch_body(records_lengths, &records(length)), &label);
    }
    // Far more than any records section holds.
    assert_records_length_refused(&fetch_body(&[u32::MAX; 8], &records(8)), "8 × u32::MAX");
    // Several buckets' shares add up.
    let body = fetch_body(&[3, 0, 4], &records(7));
    assert_eq!(decode_body::<FetchResponse>(&body).unwrap().1, records(7));
}

#[test]
fn invalid_enum_bytes_tags_and_strings_are_refused() {
    let produce = ProduceRequest { table_id: 1, bucket: 2, acks: Acks::All, timeout_ms: 3 };
    let body = padded_body(&produce, 0, &[], &[]);
    let acks_at = 8 + 4;
    assert_eq!(body[acks_at], 2);
    for acks in 3..=u8::MAX {
        let mut bad = body.clone();
        bad[acks_at] = acks;
        assert!(matches!(
            decode_body::<ProduceRequest>(&bad),
            Err(ProtocolError::Invalid { what: "acks", .. })
        ));
    }

    let list_offsets =
        ListOffsetsRequest { table_id: 1, query: OffsetQuery::Latest, buckets: vec![4] };
    let mut encoder = Encoder::default();
    list_offsets.encode(&mut encoder);
    let body = encoder.finish();
    let kind_at = 8;
    assert_eq!(body[kind_at], 1);
    for kind in 3..=u8::MAX {
        let mut bad = body.clone();
        bad[kind_at] = kind;
        assert!(matches!(
            decode_body::<ListOffsetsRequest>(&bad),
            Err(ProtocolError::Invalid { what: "offset query", .. })
        ));
    }

    let mut encoder = Encoder::default();
    CreateDatabaseRequest { name: "d".into(), if_not_exists: true }.encode(&mut encoder);
    let mut bad = encoder.finish();
    *bad.last_mut().unwrap() = 2;
    assert!(matches!(
        decode_body::<CreateDatabaseRequest>(&bad),
        Err(ProtocolError::Invalid { what: "if_not_exists", .. })
    ));
    bad[2] = 0xFF;
    assert_eq!(
        decode_body::<CreateDatabaseRequest>(&bad).unwrap_err(),
        ProtocolError::BadUtf8 { what: "database" }
    );

    let mut encoder = Encoder::default();
    fetch_request(None).encode(&mut encoder);
    let mut bad = encoder.finish();
    let projection_tag_at = 8 + 3 * 4;
    assert_eq!(bad[projection_tag_at], 0);
    bad[projection_tag_at] = 2;
    assert!(matches!(
        decode_body::<FetchRequest>(&bad),
        Err(ProtocolError::Invalid { what: "projection", .. })
    ));
}

/// Decodes the fields written by `prefix`, then a list count of `u32::MAX`, then 100 zero
/// bytes: the count must be refused as truncated before anything is allocated for it.
fn assert_hostile_count_refused(
    codec: Codec,
    what: &'static str,
    prefix: impl FnOnce(&mut Encoder),
) {
    let mut encoder = Encoder::default();
    prefix(&mut encoder);
    encoder.u32(u32::MAX);
    encoder.raw(&[0; 100]);
    let body = encoder.finish();
    let result = (codec.decode)(&body);
    assert!(
        matches!(
            result,
            Err(ProtocolError::Truncated { what: got, needed, available })
                if got == what && needed > available && available <= 100
        ),
        "{} list {what}: {result:?}",
        codec.name
    );
}

#[test]
fn list_counts_larger_than_the_body_are_refused_before_allocating() {
    let none = |_: &mut Encoder| {};
    assert_hostile_count_refused(codec_of::<ListDatabasesResponse>(), "databases", none);
    assert_hostile_count_refused(codec_of::<ListTablesResponse>(), "tables", none);
    assert_hostile_count_refused(codec_of::<MetadataRequest>(), "tables", none);
    assert_hostile_count_refused(codec_of::<FetchResponse>(), "buckets", none);
    assert_hostile_count_refused(codec_of::<ListOffsetsResponse>(), "offsets", none);

    let table_head = |encoder: &mut Encoder| {
        path().encode(encoder);
        encoder.string("schema");
        encoder.u32(7);
    };
    let create_table = codec_of::<CreateTableRequest>();
    assert_hostile_count_refused(create_table, "bucket_key", table_head);
    assert_hostile_count_refused(create_table, "primary_key", |encoder| {
        table_head(encoder);
        encoder.u32(0);
    });
    assert_hostile_count_refused(create_table, "properties", |encoder| {
        table_head(encoder);
        encoder.u32(0);
        encoder.u32(0);
        encoder.u8(0);
    });
    assert_hostile_count_refused(codec_of::<DescribeTableResponse>(), "buckets", |encoder| {
        info().encode(encoder);
    });

    let metadata = codec_of::<MetadataResponse>();
    assert_hostile_count_refused(metadata, "nodes", none);
    assert_hostile_count_refused(metadata, "shard_ports", |encoder| {
        encoder.u32(1);
        encoder.u32(1);
        encoder.string("host");
    });
    assert_hostile_count_refused(metadata, "tables", |encoder| encoder.u32(0));
    assert_hostile_count_refused(metadata, "buckets", |encoder| {
        encoder.u32(0);
        encoder.u32(1);
        info().encode(encoder);
    });

    let fetch_head = |encoder: &mut Encoder| {
        encoder.u64(1);
        encoder.u32(2);
        encoder.u32(3);
        encoder.u32(4);
    };
    let fetch = codec_of::<FetchRequest>();
    assert_hostile_count_refused(fetch, "projection", |encoder| {
        fetch_head(encoder);
        encoder.u8(1);
    });
    assert_hostile_count_refused(fetch, "buckets", |encoder| {
        fetch_head(encoder);
        encoder.u8(0);
    });
    assert_hostile_count_refused(codec_of::<ListOffsetsRequest>(), "buckets", |encoder| {
        encoder.u64(1);
        encoder.u8(0);
    });
}

/// Every byte of every sample set to the values most likely to matter: tags and booleans
/// out of range, counts and lengths made small, large or off by one. (The proptest below
/// tries the other values.)
#[test]
fn every_single_byte_change_is_an_error_or_a_canonical_message() {
    for sample in every_sample() {
        for at in 0..sample.body.len() {
            let original = sample.body[at];
            let off_by_one = [original.wrapping_add(1), original.wrapping_sub(1)];
            for value in
                [0x00, 0x01, 0x02, 0x03, 0x3F, 0x40, 0x7F, 0x80, 0xFF].into_iter().chain(off_by_one)
            {
                let mut changed = sample.body.clone();
                changed[at] = value;
                let result = (sample.codec.decode)(&changed);
                check_decoded(&sample.codec, &changed, &result);
            }
        }
    }
}

#[test]
#[should_panic(expected = "only messages with a records section carry records")]
fn records_for_a_message_without_a_records_section_are_a_caller_bug() {
    let body = CreateDatabaseRequest { name: "d".into(), if_not_exists: false };
    encode_frame(ApiKey::CreateDatabase, FrameFlags::request(), 1, &body, &[1]);
}

#[test]
fn table_paths_display_as_database_dot_table() {
    assert_eq!(path().to_string(), "lager_ö.fjäll_表_🦀");
    assert_eq!(TablePath::new("d", "t"), TablePath { database: "d".into(), table: "t".into() });
}

fn error_strategy() -> impl Strategy<Value = Option<ErrorBody>> {
    prop::option::of(
        (0..ErrorCode::ALL.len(), ".{0,40}")
            .prop_map(|(index, message)| ErrorBody::new(ErrorCode::ALL[index], message)),
    )
}

fn fetched_bucket_strategy(
    records_length: impl Strategy<Value = u32>,
) -> impl Strategy<Value = FetchedBucket> {
    (any::<u32>(), error_strategy(), any::<u64>(), any::<u64>(), records_length).prop_map(
        |(bucket, error, high_watermark, log_start_offset, records_length)| FetchedBucket {
            bucket,
            // A failed bucket has no records.
            records_length: if error.is_some() { 0 } else { records_length },
            error,
            high_watermark,
            log_start_offset,
        },
    )
}

/// A fetch response and records of the length its buckets describe.
fn fetch_with_records() -> impl Strategy<Value = (FetchResponse, Vec<u8>)> {
    prop::collection::vec(fetched_bucket_strategy(0..64u32), 0..20).prop_flat_map(|buckets| {
        let described: usize = buckets.iter().map(|bucket| bucket.records_length as usize).sum();
        (Just(FetchResponse { buckets }), prop::collection::vec(any::<u8>(), described))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn produce_records_start_aligned(
        table_id in any::<u64>(),
        bucket in any::<u32>(),
        acks in prop_oneof![Just(Acks::None), Just(Acks::Leader), Just(Acks::All)],
        timeout_ms in any::<u32>(),
        records in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let produce = ProduceRequest { table_id, bucket, acks, timeout_ms };
        round_trip(ApiKey::Produce, FrameFlags::request(), &produce, &records);
    }

    #[test]
    fn fetch_records_start_aligned((fetched, records) in fetch_with_records()) {
        round_trip(ApiKey::Fetch, FrameFlags::response(), &fetched, &records);
    }

    #[test]
    fn fetch_records_are_accepted_only_as_long_as_described(
        buckets in prop::collection::vec(
            fetched_bucket_strategy(prop_oneof![0..4u32, any::<u32>()]),
            0..8,
        ),
        records in prop::collection::vec(any::<u8>(), 0..24),
    ) {
        let described: u64 = buckets.iter().map(|bucket| u64::from(bucket.records_length)).sum();
        let fetched = FetchResponse { buckets };
        let frame = encode_frame(ApiKey::Fetch, FrameFlags::response(), 1, &fetched, &records);
        let result = decode_body::<FetchResponse>(&frame[FRAME_HEADER_SIZE_BYTES..]);
        if described == records.len() as u64 {
            let (decoded, decoded_records) = result.unwrap();
            prop_assert_eq!(decoded, fetched);
            prop_assert_eq!(decoded_records, &records[..]);
        } else {
            prop_assert!(
                matches!(result, Err(ProtocolError::Invalid { what: "records_length", .. })),
                "{} described, {} given: {:?}", described, records.len(), result
            );
        }
    }

    #[test]
    fn no_byte_string_makes_a_decoder_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for codec in every_codec() {
            let result = (codec.decode)(&bytes);
            check_decoded(&codec, &bytes, &result);
        }
    }

    #[test]
    fn one_changed_byte_never_makes_a_decoder_panic(
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        for sample in every_sample() {
            let mut changed = sample.body.clone();
            if changed.is_empty() {
                continue;
            }
            let at = at.index(changed.len());
            changed[at] = value;
            let result = (sample.codec.decode)(&changed);
            check_decoded(&sample.codec, &changed, &result);
        }
    }
}
