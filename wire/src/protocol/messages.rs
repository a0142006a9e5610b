//! The request and response messages of every API, and how frames carry them.
//!
//! Each message encodes its fields in order with the primitives of `codec`. Two messages
//! end with a *records section* — the rest of the body, raw `LogBatch` bytes — so that a
//! produce's batches are appended as they arrived and a fetch's batches are sent straight
//! from the segment files: `ProduceRequest` (the batches to append) and `FetchResponse` (the
//! batches of each bucket in order, each bucket's share given by `records_length`). The
//! fields of such a message end with `u8 padding` and that many zero bytes, so that the
//! records section starts 64-byte aligned from the start of the frame.

use crate::protocol::codec::{Decoder, Encoder, ProtocolError};
use crate::protocol::error_code::ErrorBody;
use crate::protocol::frame::{ApiKey, FrameFlags, FrameHeader, FRAME_HEADER_SIZE_BYTES};

/// The records section starts at a multiple of this many bytes from the frame start.
pub const RECORDS_ALIGNMENT_BYTES: usize = crate::header::BATCH_ALIGNMENT_BYTES;

/// A message body.
pub trait Body: Sized {
    /// True if the body ends with a records section.
    const HAS_RECORDS: bool = false;
    /// Writes the fields.
    fn encode(&self, encoder: &mut Encoder);
    /// Reads the fields (not the records section).
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError>;
    /// Checks the fields against the length of the records section (for messages whose
    /// fields describe it).
    fn check_records(&self, _records_length: usize) -> Result<(), ProtocolError> {
        Ok(())
    }
}

/// A request: its API and the response it gets.
pub trait Request: Body {
    /// The API.
    const API: ApiKey;
    /// The response body.
    type Response: Body;
}

/// Encodes a whole frame: header and body, plus `records` after the fields (for messages
/// with a records section; empty otherwise).
pub fn encode_frame<B: Body>(
    api: ApiKey,
    flags: FrameFlags,
    request_id: u32,
    body: &B,
    records: &[u8],
) -> Vec<u8> {
    let mut frame = encode_frame_head(api, flags, request_id, body, records.len());
    frame.extend_from_slice(records);
    frame
}

/// Encodes the head of a frame whose records follow separately (`records_length` bytes):
/// header and fields only. The caller sends the records after it.
///
/// # Panics
/// If a field does not fit the format (a bug of the code that built `body`; a client
/// encoding what a user typed uses [`try_encode_frame_head`]).
pub fn encode_frame_head<B: Body>(
    api: ApiKey,
    flags: FrameFlags,
    request_id: u32,
    body: &B,
    records_length: usize,
) -> Vec<u8> {
    match try_encode_frame_head(api, flags, request_id, body, records_length) {
        Ok(frame) => frame,
        Err(error) => panic!("a message this code built does not encode: {error}"),
    }
}

/// [`encode_frame_head`], or the first field that does not fit the format (a string over
/// 65 535 bytes).
pub fn try_encode_frame_head<B: Body>(
    api: ApiKey,
    flags: FrameFlags,
    request_id: u32,
    body: &B,
    records_length: usize,
) -> Result<Vec<u8>, ProtocolError> {
    assert!(
        B::HAS_RECORDS || records_length == 0,
        "only messages with a records section carry records"
    );
    let mut encoder = Encoder::new(vec![0u8; FRAME_HEADER_SIZE_BYTES]);
    body.encode(&mut encoder);
    let mut frame = encoder.try_finish()?;
    if B::HAS_RECORDS {
        // Pad so the records section starts 64-byte aligned from the frame start: a receiver
        // reading the frame into an aligned buffer decodes every batch in place.
        let padding = (RECORDS_ALIGNMENT_BYTES - (frame.len() + 1) % RECORDS_ALIGNMENT_BYTES)
            % RECORDS_ALIGNMENT_BYTES;
        frame.push(padding as u8);
        frame.resize(frame.len() + padding, 0);
    }
    let body_length = (frame.len() - FRAME_HEADER_SIZE_BYTES + records_length) as u32;
    let header = FrameHeader::new(api, flags, request_id, body_length);
    frame[..FRAME_HEADER_SIZE_BYTES].copy_from_slice(&header.to_bytes());
    Ok(frame)
}

/// Encodes an error response frame for the raw API number `api_key`.
pub fn encode_error_frame(api_key: u16, request_id: u32, error: &ErrorBody) -> Vec<u8> {
    let mut encoder = Encoder::new(vec![0u8; FRAME_HEADER_SIZE_BYTES]);
    error.encode(&mut encoder);
    let mut frame = encoder.finish();
    let body_length = (frame.len() - FRAME_HEADER_SIZE_BYTES) as u32;
    // The API may be one this build does not know: echo its number as it came.
    let mut header =
        FrameHeader::new(ApiKey::CreateDatabase, FrameFlags::error(), request_id, body_length);
    header.api_key.set(api_key);
    header.api_version.set(1);
    frame[..FRAME_HEADER_SIZE_BYTES].copy_from_slice(&header.to_bytes());
    frame
}

/// Decodes a body (the bytes after a frame header); returns it with its records section
/// (empty for messages without one). The padding before a records section must be zeros
/// and must make the section start 64-byte aligned from the frame start.
pub fn decode_body<B: Body>(body: &[u8]) -> Result<(B, &[u8]), ProtocolError> {
    let mut decoder = Decoder::new(body);
    let message = B::decode(&mut decoder)?;
    if B::HAS_RECORDS {
        let padding = usize::from(decoder.u8("records padding")?);
        let invalid = |reason: String| ProtocolError::Invalid { what: "records padding", reason };
        if padding >= RECORDS_ALIGNMENT_BYTES {
            return Err(invalid(format!("{padding} bytes")));
        }
        for _ in 0..padding {
            if decoder.u8("records padding")? != 0 {
                return Err(invalid("padding bytes must be zero".into()));
            }
        }
        let records = decoder.rest();
        let records_at = FRAME_HEADER_SIZE_BYTES + body.len() - records.len();
        if !records_at.is_multiple_of(RECORDS_ALIGNMENT_BYTES) {
            return Err(invalid(format!(
                "{padding} bytes leave the records at frame offset {records_at}, not a multiple \
                 of {RECORDS_ALIGNMENT_BYTES}"
            )));
        }
        message.check_records(records.len())?;
        Ok((message, records))
    } else {
        decoder.finish()?;
        Ok((message, &[]))
    }
}

fn strings(encoder: &mut Encoder, values: &[String]) {
    encoder.list(values, |encoder, value| encoder.string(value));
}

fn read_strings(
    decoder: &mut Decoder<'_>,
    what: &'static str,
) -> Result<Vec<String>, ProtocolError> {
    decoder.list(what, 2, |decoder| decoder.string(what))
}

/// A response with no fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Empty;

impl Body for Empty {
    fn encode(&self, _: &mut Encoder) {}
    fn decode(_: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Empty)
    }
}

/// `database.table`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TablePath {
    /// Database name.
    pub database: String,
    /// Table name.
    pub table: String,
}

impl TablePath {
    /// A path.
    pub fn new(database: impl Into<String>, table: impl Into<String>) -> Self {
        Self { database: database.into(), table: table.into() }
    }

    /// Writes the fields.
    pub fn encode(&self, encoder: &mut Encoder) {
        encoder.string(&self.database);
        encoder.string(&self.table);
    }

    /// Reads the fields.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { database: decoder.string("database")?, table: decoder.string("table")? })
    }
}

impl std::fmt::Display for TablePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.database, self.table)
    }
}

macro_rules! request {
    ($request:ty, $api:ident, $response:ty) => {
        impl Request for $request {
            const API: ApiKey = ApiKey::$api;
            type Response = $response;
        }
    };
}

/// Create a database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateDatabaseRequest {
    /// Its name.
    pub name: String,
    /// Succeed if it exists.
    pub if_not_exists: bool,
}

impl Body for CreateDatabaseRequest {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.string(&self.name);
        encoder.bool(self.if_not_exists);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            name: decoder.string("database")?,
            if_not_exists: decoder.bool("if_not_exists")?,
        })
    }
}
request!(CreateDatabaseRequest, CreateDatabase, Empty);

/// Drop a database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropDatabaseRequest {
    /// Its name.
    pub name: String,
    /// Succeed if it does not exist.
    pub if_exists: bool,
    /// Drop its tables too (otherwise a database with tables is not dropped).
    pub cascade: bool,
}

impl Body for DropDatabaseRequest {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.string(&self.name);
        encoder.bool(self.if_exists);
        encoder.bool(self.cascade);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            name: decoder.string("database")?,
            if_exists: decoder.bool("if_exists")?,
            cascade: decoder.bool("cascade")?,
        })
    }
}
request!(DropDatabaseRequest, DropDatabase, Empty);

/// List databases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListDatabasesRequest;

impl Body for ListDatabasesRequest {
    fn encode(&self, _: &mut Encoder) {}
    fn decode(_: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self)
    }
}

/// The databases, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListDatabasesResponse {
    /// Names.
    pub names: Vec<String>,
}

impl Body for ListDatabasesResponse {
    fn encode(&self, encoder: &mut Encoder) {
        strings(encoder, &self.names);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { names: read_strings(decoder, "databases")? })
    }
}
request!(ListDatabasesRequest, ListDatabases, ListDatabasesResponse);

/// A table's definition, as created and as described.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableDefinition {
    /// Schema text (see `schema_text`).
    pub schema: String,
    /// Buckets (at least 1).
    pub bucket_count: u32,
    /// Columns whose hash picks the bucket; empty: the primary key, or round-robin.
    pub bucket_key: Vec<String>,
    /// Primary key columns; empty for a log table.
    pub primary_key: Vec<String>,
    /// Partition column, if any.
    pub partition_by: Option<String>,
    /// Table properties (`retention.bytes`, `log.compression`, …), sorted by key.
    pub properties: Vec<(String, String)>,
}

impl TableDefinition {
    /// Writes the fields.
    pub fn encode(&self, encoder: &mut Encoder) {
        encoder.string(&self.schema);
        encoder.u32(self.bucket_count);
        strings(encoder, &self.bucket_key);
        strings(encoder, &self.primary_key);
        encoder.option(self.partition_by.as_ref(), |encoder, column| encoder.string(column));
        encoder.list(&self.properties, |encoder, (key, value)| {
            encoder.string(key);
            encoder.string(value);
        });
    }

    /// Reads the fields.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            schema: decoder.string("schema")?,
            bucket_count: decoder.u32("bucket_count")?,
            bucket_key: read_strings(decoder, "bucket_key")?,
            primary_key: read_strings(decoder, "primary_key")?,
            partition_by: decoder
                .option("partition_by", |decoder| decoder.string("partition_by"))?,
            properties: decoder.list("properties", 4, |decoder| {
                Ok((decoder.string("property key")?, decoder.string("property value")?))
            })?,
        })
    }
}

/// Create a table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateTableRequest {
    /// Where.
    pub path: TablePath,
    /// What.
    pub definition: TableDefinition,
    /// Succeed if it exists.
    pub if_not_exists: bool,
}

impl Body for CreateTableRequest {
    fn encode(&self, encoder: &mut Encoder) {
        self.path.encode(encoder);
        self.definition.encode(encoder);
        encoder.bool(self.if_not_exists);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            path: TablePath::decode(decoder)?,
            definition: TableDefinition::decode(decoder)?,
            if_not_exists: decoder.bool("if_not_exists")?,
        })
    }
}

/// The created (or existing) table's id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateTableResponse {
    /// Table id.
    pub table_id: u64,
}

impl Body for CreateTableResponse {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { table_id: decoder.u64("table_id")? })
    }
}
request!(CreateTableRequest, CreateTable, CreateTableResponse);

/// Drop a table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropTableRequest {
    /// Which.
    pub path: TablePath,
    /// Succeed if it does not exist.
    pub if_exists: bool,
}

impl Body for DropTableRequest {
    fn encode(&self, encoder: &mut Encoder) {
        self.path.encode(encoder);
        encoder.bool(self.if_exists);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { path: TablePath::decode(decoder)?, if_exists: decoder.bool("if_exists")? })
    }
}
request!(DropTableRequest, DropTable, Empty);

/// List the tables of a database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListTablesRequest {
    /// The database.
    pub database: String,
}

impl Body for ListTablesRequest {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.string(&self.database);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { database: decoder.string("database")? })
    }
}

/// Table names, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListTablesResponse {
    /// Names.
    pub tables: Vec<String>,
}

impl Body for ListTablesResponse {
    fn encode(&self, encoder: &mut Encoder) {
        strings(encoder, &self.tables);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { tables: read_strings(decoder, "tables")? })
    }
}
request!(ListTablesRequest, ListTables, ListTablesResponse);

/// A table as the catalog holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    /// Table id (never reused).
    pub table_id: u64,
    /// Where.
    pub path: TablePath,
    /// Current schema id.
    pub schema_id: u16,
    /// Definition.
    pub definition: TableDefinition,
    /// Creation time, ms since the epoch.
    pub created_at_ms: i64,
}

impl TableInfo {
    /// Writes the fields.
    pub fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
        self.path.encode(encoder);
        encoder.u16(self.schema_id);
        self.definition.encode(encoder);
        encoder.i64(self.created_at_ms);
    }

    /// Reads the fields.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            table_id: decoder.u64("table_id")?,
            path: TablePath::decode(decoder)?,
            schema_id: decoder.u16("schema_id")?,
            definition: TableDefinition::decode(decoder)?,
            created_at_ms: decoder.i64("created_at_ms")?,
        })
    }
}

/// Describe a table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeTableRequest {
    /// Which.
    pub path: TablePath,
}

impl Body for DescribeTableRequest {
    fn encode(&self, encoder: &mut Encoder) {
        self.path.encode(encoder);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { path: TablePath::decode(decoder)? })
    }
}

/// The state of one bucket's log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketStatus {
    /// Bucket number.
    pub bucket: u32,
    /// Earliest offset.
    pub log_start_offset: u64,
    /// Offsets below it are durable and readable.
    pub high_watermark: u64,
    /// Offset of the next append.
    pub log_end_offset: u64,
    /// Bytes of batches stored.
    pub size_bytes: u64,
    /// Segments.
    pub segment_count: u32,
    /// For a lake-enabled table: records below this offset are in the lake (`None` before
    /// the first tiering round has been noted, and for other tables).
    pub tiered_offset: Option<u64>,
    /// Offsets damaged on disk but kept (valid batches follow them): `(first, end)` pairs,
    /// oldest first. Reads of them fail with `CORRUPT_DATA`; reading resumes at `end`.
    pub damaged_offsets: Vec<(u64, u64)>,
}

impl BucketStatus {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u32(self.bucket);
        encoder.u64(self.log_start_offset);
        encoder.u64(self.high_watermark);
        encoder.u64(self.log_end_offset);
        encoder.u64(self.size_bytes);
        encoder.u32(self.segment_count);
        encoder.option(self.tiered_offset.as_ref(), |encoder, offset| encoder.u64(*offset));
        encoder.list(&self.damaged_offsets, |encoder, (first, end)| {
            encoder.u64(*first);
            encoder.u64(*end);
        });
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            bucket: decoder.u32("bucket")?,
            log_start_offset: decoder.u64("log_start_offset")?,
            high_watermark: decoder.u64("high_watermark")?,
            log_end_offset: decoder.u64("log_end_offset")?,
            size_bytes: decoder.u64("size_bytes")?,
            segment_count: decoder.u32("segment_count")?,
            tiered_offset: decoder
                .option("tiered_offset", |decoder| decoder.u64("tiered_offset"))?,
            damaged_offsets: decoder.list("damaged_offsets", 16, |decoder| {
                Ok((decoder.u64("damaged_offsets")?, decoder.u64("damaged_offsets")?))
            })?,
        })
    }
}

/// A table and the state of each bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeTableResponse {
    /// The table.
    pub info: TableInfo,
    /// Every bucket, in order.
    pub buckets: Vec<BucketStatus>,
}

impl Body for DescribeTableResponse {
    fn encode(&self, encoder: &mut Encoder) {
        self.info.encode(encoder);
        encoder.list(&self.buckets, |encoder, bucket| bucket.encode(encoder));
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            info: TableInfo::decode(decoder)?,
            buckets: decoder.list("buckets", 40, BucketStatus::decode)?,
        })
    }
}
request!(DescribeTableRequest, DescribeTable, DescribeTableResponse);

/// Where tables' buckets live.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataRequest {
    /// Tables to describe; empty for every table.
    pub tables: Vec<TablePath>,
}

impl Body for MetadataRequest {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.list(&self.tables, |encoder, path| path.encode(encoder));
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { tables: decoder.list("tables", 4, TablePath::decode)? })
    }
}

/// A node and its shards' QUIC endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub node_id: u32,
    /// Host clients connect to.
    pub host: String,
    /// UDP port of each shard's endpoint, by shard number.
    pub shard_ports: Vec<u16>,
}

/// Which node and shard own a bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketLocation {
    /// Bucket number.
    pub bucket: u32,
    /// Owning node.
    pub node_id: u32,
    /// Owning shard on that node.
    pub shard: u32,
}

/// A table and where its buckets are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableMetadata {
    /// The table.
    pub info: TableInfo,
    /// Every bucket, in order.
    pub buckets: Vec<BucketLocation>,
}

/// The nodes, and the tables asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataResponse {
    /// Nodes.
    pub nodes: Vec<NodeInfo>,
    /// Tables.
    pub tables: Vec<TableMetadata>,
}

impl Body for MetadataResponse {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.list(&self.nodes, |encoder, node| {
            encoder.u32(node.node_id);
            encoder.string(&node.host);
            encoder.list(&node.shard_ports, |encoder, port| encoder.u16(*port));
        });
        encoder.list(&self.tables, |encoder, table| {
            table.info.encode(encoder);
            encoder.list(&table.buckets, |encoder, location| {
                encoder.u32(location.bucket);
                encoder.u32(location.node_id);
                encoder.u32(location.shard);
            });
        });
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        let nodes = decoder.list("nodes", 10, |decoder| {
            Ok(NodeInfo {
                node_id: decoder.u32("node_id")?,
                host: decoder.string("host")?,
                shard_ports: decoder.list("shard_ports", 2, |decoder| decoder.u16("port"))?,
            })
        })?;
        let tables = decoder.list("tables", 40, |decoder| {
            Ok(TableMetadata {
                info: TableInfo::decode(decoder)?,
                buckets: decoder.list("buckets", 12, |decoder| {
                    Ok(BucketLocation {
                        bucket: decoder.u32("bucket")?,
                        node_id: decoder.u32("node_id")?,
                        shard: decoder.u32("shard")?,
                    })
                })?,
            })
        })?;
        Ok(Self { nodes, tables })
    }
}
request!(MetadataRequest, Metadata, MetadataResponse);

/// Get an idempotent writer id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitWriterRequest;

impl Body for InitWriterRequest {
    fn encode(&self, _: &mut Encoder) {}
    fn decode(_: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self)
    }
}

/// A new writer id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitWriterResponse {
    /// Writer id (≥ 0).
    pub writer_id: i64,
}

impl Body for InitWriterResponse {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.i64(self.writer_id);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self { writer_id: decoder.i64("writer_id")? })
    }
}
request!(InitWriterRequest, InitWriter, InitWriterResponse);

/// When a produce is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Acks {
    /// Never (the client does not wait for the answer).
    None,
    /// Once the leader wrote it (not yet synced).
    Leader,
    /// Once it is durable on the in-sync replicas (fdatasync'd).
    #[default]
    All,
}

impl Acks {
    fn to_byte(self) -> u8 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => 2,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        match byte {
            0 => Ok(Acks::None),
            1 => Ok(Acks::Leader),
            2 => Ok(Acks::All),
            other => Err(ProtocolError::Invalid { what: "acks", reason: format!("value {other}") }),
        }
    }
}

/// Append a batch to a bucket. The records section holds exactly one `LogBatch`, appended
/// whole or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceRequest {
    /// Table id.
    pub table_id: u64,
    /// Bucket.
    pub bucket: u32,
    /// When to answer.
    pub acks: Acks,
    /// How long the node may take before answering with a timeout.
    pub timeout_ms: u32,
}

impl Body for ProduceRequest {
    const HAS_RECORDS: bool = true;
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
        encoder.u32(self.bucket);
        encoder.u8(self.acks.to_byte());
        encoder.u32(self.timeout_ms);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            table_id: decoder.u64("table_id")?,
            bucket: decoder.u32("bucket")?,
            acks: Acks::from_byte(decoder.u8("acks")?)?,
            timeout_ms: decoder.u32("timeout_ms")?,
        })
    }
}

/// Where the produced batches went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceResponse {
    /// First offset of the first batch.
    pub base_offset: u64,
    /// Last offset of the last batch.
    pub last_offset: u64,
    /// Commit timestamp of the last batch.
    pub commit_timestamp: i64,
    /// The bucket's high watermark after the append.
    pub high_watermark: u64,
    /// True if the batches were already stored (an idempotent retry): the offsets are the
    /// original ones.
    pub duplicate: bool,
}

impl Body for ProduceResponse {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.base_offset);
        encoder.u64(self.last_offset);
        encoder.i64(self.commit_timestamp);
        encoder.u64(self.high_watermark);
        encoder.bool(self.duplicate);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            base_offset: decoder.u64("base_offset")?,
            last_offset: decoder.u64("last_offset")?,
            commit_timestamp: decoder.i64("commit_timestamp")?,
            high_watermark: decoder.u64("high_watermark")?,
            duplicate: decoder.bool("duplicate")?,
        })
    }
}
request!(ProduceRequest, Produce, ProduceResponse);

/// One bucket of a fetch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchBucket {
    /// Bucket.
    pub bucket: u32,
    /// First offset wanted.
    pub offset: u64,
    /// Most bytes of batches for this bucket (at least one batch is returned).
    pub max_bytes: u32,
}

/// Read batches from buckets of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchRequest {
    /// Table id.
    pub table_id: u64,
    /// Longest the node may wait for `min_bytes` to arrive.
    pub max_wait_ms: u32,
    /// Answer as soon as this many bytes are ready (0: answer at once).
    pub min_bytes: u32,
    /// Most bytes of batches in the whole response.
    pub max_bytes: u32,
    /// Columns to keep (schema indexes, ascending); `None` for all.
    pub projection: Option<Vec<u32>>,
    /// The buckets.
    pub buckets: Vec<FetchBucket>,
}

impl Body for FetchRequest {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
        encoder.u32(self.max_wait_ms);
        encoder.u32(self.min_bytes);
        encoder.u32(self.max_bytes);
        encoder.option(self.projection.as_ref(), |encoder, columns| {
            encoder.list(columns, |encoder, column| encoder.u32(*column))
        });
        encoder.list(&self.buckets, |encoder, bucket| {
            encoder.u32(bucket.bucket);
            encoder.u64(bucket.offset);
            encoder.u32(bucket.max_bytes);
        });
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            table_id: decoder.u64("table_id")?,
            max_wait_ms: decoder.u32("max_wait_ms")?,
            min_bytes: decoder.u32("min_bytes")?,
            max_bytes: decoder.u32("max_bytes")?,
            projection: decoder.option("projection", |decoder| {
                decoder.list("projection", 4, |decoder| decoder.u32("column"))
            })?,
            buckets: decoder.list("buckets", 16, |decoder| {
                Ok(FetchBucket {
                    bucket: decoder.u32("bucket")?,
                    offset: decoder.u64("offset")?,
                    max_bytes: decoder.u32("max_bytes")?,
                })
            })?,
        })
    }
}

/// What a fetch found in one bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchedBucket {
    /// Bucket.
    pub bucket: u32,
    /// Why this bucket has no records, if it failed.
    pub error: Option<ErrorBody>,
    /// High watermark when read.
    pub high_watermark: u64,
    /// Earliest offset.
    pub log_start_offset: u64,
    /// Bytes of this bucket's batches in the records section.
    pub records_length: u32,
}

/// The buckets' batches; the records section holds them in bucket order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchResponse {
    /// Per bucket, in request order.
    pub buckets: Vec<FetchedBucket>,
}

impl Body for FetchResponse {
    const HAS_RECORDS: bool = true;
    fn encode(&self, encoder: &mut Encoder) {
        encoder.list(&self.buckets, |encoder, bucket| {
            encoder.u32(bucket.bucket);
            encoder.option(bucket.error.as_ref(), |encoder, error| error.encode(encoder));
            encoder.u64(bucket.high_watermark);
            encoder.u64(bucket.log_start_offset);
            encoder.u32(bucket.records_length);
        });
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            buckets: decoder.list("buckets", 25, |decoder| {
                Ok(FetchedBucket {
                    bucket: decoder.u32("bucket")?,
                    error: decoder.option("error", ErrorBody::decode)?,
                    high_watermark: decoder.u64("high_watermark")?,
                    log_start_offset: decoder.u64("log_start_offset")?,
                    records_length: decoder.u32("records_length")?,
                })
            })?,
        })
    }
    fn check_records(&self, records_length: usize) -> Result<(), ProtocolError> {
        let described: u64 =
            self.buckets.iter().map(|bucket| u64::from(bucket.records_length)).sum();
        if let Some(failed) =
            self.buckets.iter().find(|b| b.error.is_some() && b.records_length != 0)
        {
            return Err(ProtocolError::Invalid {
                what: "records_length",
                reason: format!(
                    "bucket {} failed yet describes {} bytes of records",
                    failed.bucket, failed.records_length
                ),
            });
        }
        if described != records_length as u64 {
            return Err(ProtocolError::Invalid {
                what: "records_length",
                reason: format!(
                    "the buckets describe {described} bytes of records; the section holds \
                     {records_length}"
                ),
            });
        }
        Ok(())
    }
}
request!(FetchRequest, Fetch, FetchResponse);

/// What offset to look up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetQuery {
    /// The earliest offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// The first offset committed at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// Look up offsets in buckets of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    /// Table id.
    pub table_id: u64,
    /// What to look up.
    pub query: OffsetQuery,
    /// Buckets.
    pub buckets: Vec<u32>,
}

impl Body for ListOffsetsRequest {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
        match self.query {
            OffsetQuery::Earliest => encoder.u8(0),
            OffsetQuery::Latest => encoder.u8(1),
            OffsetQuery::Timestamp(timestamp) => {
                encoder.u8(2);
                encoder.i64(timestamp);
            }
        }
        encoder.list(&self.buckets, |encoder, bucket| encoder.u32(*bucket));
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        let table_id = decoder.u64("table_id")?;
        let query = match decoder.u8("offset query")? {
            0 => OffsetQuery::Earliest,
            1 => OffsetQuery::Latest,
            2 => OffsetQuery::Timestamp(decoder.i64("timestamp")?),
            other => {
                return Err(ProtocolError::Invalid {
                    what: "offset query",
                    reason: format!("kind {other}"),
                })
            }
        };
        Ok(Self {
            table_id,
            query,
            buckets: decoder.list("buckets", 4, |decoder| decoder.u32("bucket"))?,
        })
    }
}

/// One bucket's offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketOffset {
    /// Bucket.
    pub bucket: u32,
    /// Why there is no offset, if it failed.
    pub error: Option<ErrorBody>,
    /// The offset.
    pub offset: u64,
}

/// Offsets, in request order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    /// Per bucket.
    pub offsets: Vec<BucketOffset>,
}

impl Body for ListOffsetsResponse {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.list(&self.offsets, |encoder, offset| {
            encoder.u32(offset.bucket);
            encoder.option(offset.error.as_ref(), |encoder, error| error.encode(encoder));
            encoder.u64(offset.offset);
        });
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            offsets: decoder.list("offsets", 13, |decoder| {
                Ok(BucketOffset {
                    bucket: decoder.u32("bucket")?,
                    error: decoder.option("error", ErrorBody::decode)?,
                    offset: decoder.u64("offset")?,
                })
            })?,
        })
    }
}
request!(ListOffsetsRequest, ListOffsets, ListOffsetsResponse);

fn projection_field(encoder: &mut Encoder, projection: &Option<Vec<u32>>) {
    encoder.option(projection.as_ref(), |encoder, columns| {
        encoder.list(columns, |encoder, column| encoder.u32(*column))
    });
}

fn read_projection(
    decoder: &mut Decoder<'_>,
    what: &'static str,
) -> Result<Option<Vec<u32>>, ProtocolError> {
    decoder.option(what, |decoder| decoder.list(what, 4, |decoder| decoder.u32("column")))
}

/// Upsert and delete rows of one bucket of a primary-key table. The records section holds
/// exactly one `LogBatch` of the table's schema. Its change types, if it has them, say what
/// each row does: `+I`/`+U` upsert, `-D` delete (the row needs only its key); without change
/// types every row is an upsert. A writer id and sequence in the batch make the request
/// idempotent, as for produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpsertRequest {
    /// Table id.
    pub table_id: u64,
    /// Bucket.
    pub bucket: u32,
    /// When to answer.
    pub acks: Acks,
    /// How long the node may take before answering with a timeout.
    pub timeout_ms: u32,
    /// Partial update: the columns (schema indexes, ascending) this request writes; the
    /// others keep their stored values. Must include the primary key. `None`: all columns.
    pub target_columns: Option<Vec<u32>>,
}

impl Body for UpsertRequest {
    const HAS_RECORDS: bool = true;
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
        encoder.u32(self.bucket);
        encoder.u8(self.acks.to_byte());
        encoder.u32(self.timeout_ms);
        projection_field(encoder, &self.target_columns);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            table_id: decoder.u64("table_id")?,
            bucket: decoder.u32("bucket")?,
            acks: Acks::from_byte(decoder.u8("acks")?)?,
            timeout_ms: decoder.u32("timeout_ms")?,
            target_columns: read_projection(decoder, "target_columns")?,
        })
    }
}

/// What an upsert changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpsertResponse {
    /// Offset of the first changelog record it appended (the log end offset when it
    /// changed nothing).
    pub changelog_offset: u64,
    /// Changelog records appended: 0 when no row changed (an equal row, a delete of a
    /// missing key, rows a merge engine ignores).
    pub changelog_record_count: u32,
    /// The bucket's high watermark after the write.
    pub high_watermark: u64,
    /// True if the request was applied already (an idempotent retry).
    pub duplicate: bool,
}

impl Body for UpsertResponse {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.changelog_offset);
        encoder.u32(self.changelog_record_count);
        encoder.u64(self.high_watermark);
        encoder.bool(self.duplicate);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            changelog_offset: decoder.u64("changelog_offset")?,
            changelog_record_count: decoder.u32("changelog_record_count")?,
            high_watermark: decoder.u64("high_watermark")?,
            duplicate: decoder.bool("duplicate")?,
        })
    }
}
request!(UpsertRequest, Upsert, UpsertResponse);

/// Look up rows of one bucket by primary key, or by a prefix of it. The records section
/// holds one `LogBatch` (schema id of the table) whose columns are the key columns, in key
/// order: all of the primary key for a point lookup, the bucket key for a prefix lookup.
/// Lookups see only durable writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupRequest {
    /// Table id.
    pub table_id: u64,
    /// Bucket.
    pub bucket: u32,
    /// True for a prefix lookup: every row whose key starts with the given columns.
    pub prefix: bool,
    /// Columns to return (schema indexes, ascending); `None` for all.
    pub projection: Option<Vec<u32>>,
}

impl Body for LookupRequest {
    const HAS_RECORDS: bool = true;
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
        encoder.u32(self.bucket);
        encoder.bool(self.prefix);
        projection_field(encoder, &self.projection);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            table_id: decoder.u64("table_id")?,
            bucket: decoder.u32("bucket")?,
            prefix: decoder.bool("prefix")?,
            projection: read_projection(decoder, "projection")?,
        })
    }
}

/// The rows found. The records section holds one `LogBatch` of the found rows (none when
/// nothing was found); `key_index` says for each of its rows which request key found it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupResponse {
    /// Per returned row, the index of its key in the request (ascending).
    pub key_index: Vec<u32>,
    /// The log offset the answer is consistent with: every change before it is seen.
    pub log_offset: u64,
    /// True if a prefix lookup found more rows than one answer may hold.
    pub truncated: bool,
}

impl Body for LookupResponse {
    const HAS_RECORDS: bool = true;
    fn encode(&self, encoder: &mut Encoder) {
        encoder.list(&self.key_index, |encoder, index| encoder.u32(*index));
        encoder.u64(self.log_offset);
        encoder.bool(self.truncated);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            key_index: decoder.list("key_index", 4, |decoder| decoder.u32("key index"))?,
            log_offset: decoder.u64("log_offset")?,
            truncated: decoder.bool("truncated")?,
        })
    }
}
request!(LookupRequest, Lookup, LookupResponse);

/// Read the current state of one bucket of a primary-key table as of one log offset, in
/// parts: the first request (`scan_id` 0) takes a consistent snapshot; the next ones
/// continue it with the `scan_id` they were given until `more` is false. A reader that then
/// follows the changelog from the answer's `log_offset` sees every later change once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotScanRequest {
    /// Table id.
    pub table_id: u64,
    /// Bucket.
    pub bucket: u32,
    /// 0 to start a scan; otherwise the id an earlier answer gave.
    pub scan_id: u64,
    /// Most bytes of rows in this answer (at least one row is returned).
    pub max_bytes: u32,
    /// Columns to return (schema indexes, ascending); `None` for all.
    pub projection: Option<Vec<u32>>,
}

impl Body for SnapshotScanRequest {
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.table_id);
        encoder.u32(self.bucket);
        encoder.u64(self.scan_id);
        encoder.u32(self.max_bytes);
        projection_field(encoder, &self.projection);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            table_id: decoder.u64("table_id")?,
            bucket: decoder.u32("bucket")?,
            scan_id: decoder.u64("scan_id")?,
            max_bytes: decoder.u32("max_bytes")?,
            projection: read_projection(decoder, "projection")?,
        })
    }
}

/// A part of a snapshot scan; the records section holds one `LogBatch` of rows in key order
/// (none when the bucket is empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotScanResponse {
    /// The scan, to continue it.
    pub scan_id: u64,
    /// The changelog offset the snapshot is consistent with: it holds every change before
    /// it and none after.
    pub log_offset: u64,
    /// True if more parts follow.
    pub more: bool,
}

impl Body for SnapshotScanResponse {
    const HAS_RECORDS: bool = true;
    fn encode(&self, encoder: &mut Encoder) {
        encoder.u64(self.scan_id);
        encoder.u64(self.log_offset);
        encoder.bool(self.more);
    }
    fn decode(decoder: &mut Decoder<'_>) -> Result<Self, ProtocolError> {
        Ok(Self {
            scan_id: decoder.u64("scan_id")?,
            log_offset: decoder.u64("log_offset")?,
            more: decoder.bool("more")?,
        })
    }
}
request!(SnapshotScanRequest, SnapshotScan, SnapshotScanResponse);

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
