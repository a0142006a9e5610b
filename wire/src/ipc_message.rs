//! The Arrow IPC record-batch message inside a batch: parsing its prefix and flatbuffer
//! metadata, and checking that it has exactly the shape of a schema.
//!
//! Invariant on success of [`IpcMessage::check_layout`]: node, buffer and variadic counts
//! match the schema, every buffer lies inside the body and starts at a multiple of
//! [`BATCH_ALIGNMENT_BYTES`], and every node's counts are non-negative. That is what lets the
//! projection cut byte ranges without decoding, and what keeps Arrow's decoder (which slices
//! buffers without bounds checks of its own) from ever seeing an out-of-range buffer.

use core::ops::Range;

use arrow_ipc::{CompressionType, MessageHeader, MetadataVersion};

use crate::column_layout::{ColumnLayout, NodeSpec};
use crate::error::BatchError;
use crate::header::{Compression, BATCH_ALIGNMENT_BYTES};
use crate::limits::{
    BATCH_DECOMPRESSED_SIZE_MAX_BYTES, IPC_METADATA_DEPTH_MAX, IPC_METADATA_SIZE_MAX_BYTES,
    IPC_METADATA_TABLE_COUNT_MAX, NODE_LENGTH_MAX,
};

/// The continuation marker that opens an encapsulated IPC message.
pub const CONTINUATION_MARKER: [u8; 4] = [0xFF; 4];

/// Size of the encapsulation prefix: continuation marker and metadata length.
pub const MESSAGE_PREFIX_SIZE_BYTES: usize = 8;

/// The parts of a record-batch message's metadata, to encode new metadata from (a
/// projection, or a decompressed copy of a message).
#[derive(Debug)]
pub struct MessageParts<'a> {
    /// Rows.
    pub length: i64,
    /// Field nodes, pre-order.
    pub nodes: &'a [arrow_ipc::FieldNode],
    /// Buffers, offsets relative to the new body.
    pub buffers: &'a [arrow_ipc::Buffer],
    /// Data buffer counts of view-typed nodes.
    pub variadic: &'a [i64],
    /// Body compression, if the buffers are compressed.
    pub compression: Option<(CompressionType, arrow_ipc::BodyCompressionMethod)>,
    /// Body size in bytes.
    pub body_size: usize,
}

impl MessageParts<'_> {
    /// Encodes the flatbuffer metadata (without the encapsulation prefix).
    pub fn encode(&self) -> Vec<u8> {
        use arrow_ipc::{BodyCompressionArgs, MessageArgs, RecordBatchArgs};
        let mut builder = flatbuffers::FlatBufferBuilder::with_capacity(
            128 + 16 * (self.nodes.len() + self.buffers.len()) + 8 * self.variadic.len(),
        );
        let nodes = builder.create_vector(self.nodes);
        let buffers = builder.create_vector(self.buffers);
        let variadic = (!self.variadic.is_empty()).then(|| builder.create_vector(self.variadic));
        let compression = self.compression.map(|(codec, method)| {
            arrow_ipc::BodyCompression::create(&mut builder, &BodyCompressionArgs { codec, method })
        });
        let record_batch = arrow_ipc::RecordBatch::create(
            &mut builder,
            &RecordBatchArgs {
                length: self.length,
                nodes: Some(nodes),
                buffers: Some(buffers),
                compression,
                variadicBufferCounts: variadic,
            },
        );
        let root = arrow_ipc::Message::create(
            &mut builder,
            &MessageArgs {
                version: MetadataVersion::V5,
                header_type: MessageHeader::RecordBatch,
                header: Some(record_batch.as_union_value()),
                bodyLength: self.body_size as i64,
                custom_metadata: None,
            },
        );
        builder.finish(root, None);
        builder.finished_data().to_vec()
    }
}

/// Size of the encapsulated metadata (prefix, flatbuffer, padding) for a flatbuffer.
pub fn encapsulated_metadata_size(flatbuffer: &[u8]) -> usize {
    crate::header::align_to_batch(MESSAGE_PREFIX_SIZE_BYTES + flatbuffer.len())
}

/// Appends the encapsulation prefix, the flatbuffer and zero padding to `out`, which must
/// end aligned; afterwards the body may follow, aligned.
pub fn write_metadata(flatbuffer: &[u8], out: &mut Vec<u8>) {
    assert!(out.len().is_multiple_of(BATCH_ALIGNMENT_BYTES));
    let metadata_size = encapsulated_metadata_size(flatbuffer);
    let end = out.len() + metadata_size;
    out.extend_from_slice(&CONTINUATION_MARKER);
    out.extend_from_slice(&((metadata_size - MESSAGE_PREFIX_SIZE_BYTES) as i32).to_le_bytes());
    out.extend_from_slice(flatbuffer);
    out.resize(end, 0);
}

/// A parsed record-batch message. Borrows the metadata bytes.
#[derive(Debug)]
pub struct IpcMessage<'a> {
    /// The flatbuffer record batch (nodes, buffers, compression, length).
    pub record_batch: arrow_ipc::RecordBatch<'a>,
    /// Prefix plus padded flatbuffer: where the body starts, from the message start.
    pub metadata_size: usize,
    /// Body size in bytes.
    pub body_size: usize,
}

/// Where one top-level column's entries lie in the message's lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSpan {
    /// Indexes into the field-node list.
    pub nodes: Range<usize>,
    /// Indexes into the buffer list.
    pub buffers: Range<usize>,
    /// Indexes into `variadicBufferCounts`.
    pub variadic: Range<usize>,
}

impl<'a> IpcMessage<'a> {
    /// Parses the message that starts at `bytes[0]` and is `message_size` bytes long in
    /// total. `bytes` must hold at least the prefix and metadata; the body may be absent.
    pub fn parse(bytes: &'a [u8], message_size: usize) -> Result<Self, BatchError> {
        let metadata_size = Self::metadata_size(bytes, message_size)?;
        if bytes.len() < metadata_size {
            return Err(BatchError::Truncated {
                what: "Arrow message metadata",
                needed: metadata_size,
                available: bytes.len(),
            });
        }
        let options = flatbuffers::VerifierOptions {
            max_depth: IPC_METADATA_DEPTH_MAX,
            max_tables: IPC_METADATA_TABLE_COUNT_MAX,
            ..Default::default()
        };
        let flatbuffer = &bytes[MESSAGE_PREFIX_SIZE_BYTES..metadata_size];
        let message = arrow_ipc::root_as_message_with_opts(&options, flatbuffer)
            .map_err(|error| BatchError::BadMessage(format!("invalid flatbuffer: {error}")))?;
        if message.version() != MetadataVersion::V5 {
            return Err(BatchError::BadMessage(format!(
                "metadata version {:?}, expected V5",
                message.version()
            )));
        }
        if message.header_type() != MessageHeader::RecordBatch {
            return Err(BatchError::BadMessage(format!(
                "message header is {:?}, expected RecordBatch",
                message.header_type()
            )));
        }
        let record_batch = message
            .header_as_record_batch()
            .ok_or_else(|| BatchError::BadMessage("record batch header missing".into()))?;
        let body_size = message_size - metadata_size;
        if message.bodyLength() != body_size as i64 {
            return Err(BatchError::BadMessage(format!(
                "body length {} does not fill the batch ({body_size} bytes left)",
                message.bodyLength()
            )));
        }
        Ok(Self { record_batch, metadata_size, body_size })
    }

    /// Reads and checks the metadata size from the 8-byte prefix: the number of bytes from
    /// the message start to its body.
    pub fn metadata_size(bytes: &[u8], message_size: usize) -> Result<usize, BatchError> {
        if bytes.len() < MESSAGE_PREFIX_SIZE_BYTES || message_size < MESSAGE_PREFIX_SIZE_BYTES {
            return Err(BatchError::Truncated {
                what: "Arrow message prefix",
                needed: MESSAGE_PREFIX_SIZE_BYTES,
                available: bytes.len().min(message_size),
            });
        }
        if bytes[..4] != CONTINUATION_MARKER {
            return Err(BatchError::BadMessage("continuation marker missing".into()));
        }
        let flatbuffer_size = i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let valid = flatbuffer_size > 0 && flatbuffer_size as u32 <= IPC_METADATA_SIZE_MAX_BYTES;
        if !valid {
            return Err(BatchError::BadMessage(format!(
                "metadata length {flatbuffer_size} is out of range"
            )));
        }
        let metadata_size = MESSAGE_PREFIX_SIZE_BYTES + flatbuffer_size as usize;
        if !metadata_size.is_multiple_of(BATCH_ALIGNMENT_BYTES) {
            return Err(BatchError::BadMessage(format!(
                "metadata ends at {metadata_size}, not at a multiple of {BATCH_ALIGNMENT_BYTES}"
            )));
        }
        if metadata_size > message_size {
            return Err(BatchError::BadMessage(format!(
                "metadata ({metadata_size} bytes) is longer than the message ({message_size})"
            )));
        }
        Ok(metadata_size)
    }

    /// The body compression named by the metadata.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        let Some(body_compression) = self.record_batch.compression() else {
            return Ok(Compression::None);
        };
        if body_compression.method() != arrow_ipc::BodyCompressionMethod::BUFFER {
            return Err(BatchError::BadMessage("unknown body compression method".into()));
        }
        match body_compression.codec() {
            CompressionType::LZ4_FRAME => Ok(Compression::Lz4Frame),
            CompressionType::ZSTD => Ok(Compression::Zstd),
            other => Err(BatchError::BadMessage(format!("unknown compression codec {other:?}"))),
        }
    }

    /// Checks that the message has exactly the shape of a schema with column `layouts` and
    /// `record_count` rows; tells `each_column` where each column's entries lie. Allocates
    /// nothing (this runs for every appended batch).
    pub fn check_layout(
        &self,
        layouts: &[ColumnLayout],
        record_count: u32,
        mut each_column: impl FnMut(ColumnSpan),
    ) -> Result<(), BatchError> {
        let mismatch = |what: String| Err(BatchError::SchemaMismatch(what));
        let record_batch = &self.record_batch;
        if record_batch.length() != i64::from(record_count) {
            return mismatch(format!(
                "message has {} rows, header says {record_count}",
                record_batch.length()
            ));
        }
        let nodes = record_batch
            .nodes()
            .ok_or_else(|| BatchError::BadMessage("field node list missing".into()))?;
        let buffers = record_batch
            .buffers()
            .ok_or_else(|| BatchError::BadMessage("buffer list missing".into()))?;
        let variadic = record_batch.variadicBufferCounts();
        let variadic_len = variadic.map_or(0, |counts| counts.len());

        let (mut node_at, mut buffer_at, mut variadic_at) = (0usize, 0usize, 0usize);
        for (column, layout) in layouts.iter().enumerate() {
            let variadic_end = variadic_at + layout.view_count;
            if variadic_end > variadic_len {
                return mismatch(format!("column {column} lacks variadic buffer counts"));
            }
            let mut buffer_count = layout.fixed_buffer_count as u64;
            for index in variadic_at..variadic_end {
                let count = variadic.map_or(0, |counts| counts.get(index));
                if count < 0 || count as u64 > buffers.len() as u64 {
                    return mismatch(format!("variadic buffer count {count} is out of range"));
                }
                buffer_count += count as u64;
            }
            let buffer_end = buffer_at as u64 + buffer_count;
            let node_end = node_at + layout.node_count;
            if node_end > nodes.len() || buffer_end > buffers.len() as u64 {
                return mismatch(format!(
                    "column {column} needs more field nodes or buffers than the message has"
                ));
            }
            let top = nodes.get(node_at);
            if top.length() != i64::from(record_count) {
                return mismatch(format!(
                    "column {column} has {} rows, the batch {record_count}",
                    top.length()
                ));
            }
            each_column(ColumnSpan {
                nodes: node_at..node_end,
                buffers: buffer_at..buffer_end as usize,
                variadic: variadic_at..variadic_end,
            });
            (node_at, buffer_at, variadic_at) = (node_end, buffer_end as usize, variadic_end);
        }
        if node_at != nodes.len() || buffer_at != buffers.len() || variadic_at != variadic_len {
            return mismatch(format!(
                "message has {} nodes, {} buffers, {} variadic counts; schema needs {node_at}, \
                 {buffer_at}, {variadic_at}",
                nodes.len(),
                buffers.len(),
                variadic_len
            ));
        }
        for node in nodes.iter() {
            check_node(node)?;
        }
        for buffer in buffers.iter() {
            self.check_buffer(buffer)?;
        }
        Ok(())
    }

    /// Checks what needs the body: that compressed buffers name sane decompressed sizes,
    /// together at most [`BATCH_DECOMPRESSED_SIZE_MAX_BYTES`] (so a batch cannot make a
    /// reader allocate more), and that every node with nulls has a validity bitmap with a bit
    /// per value (Arrow's decoder slices it unchecked and would panic). `body` is the message
    /// body; the message must already have passed [`Self::check_layout`] against the schema
    /// whose nodes are `node_specs`.
    pub fn check_body(&self, node_specs: &[NodeSpec], body: &[u8]) -> Result<(), BatchError> {
        let (Some(nodes), Some(buffers)) = (self.record_batch.nodes(), self.record_batch.buffers())
        else {
            return Err(BatchError::BadMessage("field nodes or buffers missing".into()));
        };
        let compressed = self.record_batch.compression().is_some();
        if compressed {
            let mut total: u64 = 0;
            for buffer in buffers.iter() {
                total = total.saturating_add(decoded_size(body, buffer, true)?);
            }
            if total > BATCH_DECOMPRESSED_SIZE_MAX_BYTES {
                return Err(BatchError::BadMessage(format!(
                    "buffers decompress to {total} bytes, over the limit of \
                     {BATCH_DECOMPRESSED_SIZE_MAX_BYTES}"
                )));
            }
        }
        // Node, buffer and variadic counts were matched to the schema by `check_layout`.
        assert_eq!(nodes.len(), node_specs.len(), "check_layout ran first");
        let variadic = self.record_batch.variadicBufferCounts();
        let (mut buffer_at, mut variadic_at) = (0usize, 0usize);
        for (index, spec) in node_specs.iter().enumerate() {
            let node = nodes.get(index);
            let mut buffer_count = spec.own_buffer_count;
            if spec.is_view {
                buffer_count += variadic.map_or(0, |counts| counts.get(variadic_at)) as usize;
                variadic_at += 1;
            }
            if spec.has_validity && node.null_count() > 0 {
                let validity = buffers.get(buffer_at);
                let bits = decoded_size(body, validity, compressed)?.saturating_mul(8);
                if bits < node.length() as u64 {
                    return Err(BatchError::BadMessage(format!(
                        "validity bitmap of {:?} has {bits} bits for {} values",
                        spec.name,
                        node.length()
                    )));
                }
            }
            // Arrow views fixed-width buffers as typed slices and panics on a ragged length.
            if let Some(width) = spec.fixed_width_bytes {
                let buffer = buffers.get(buffer_at + usize::from(spec.has_validity));
                let size = decoded_size(body, buffer, compressed)?;
                if size % width as u64 != 0 {
                    return Err(BatchError::BadMessage(format!(
                        "buffer of {:?} has {size} bytes, not a multiple of {width}",
                        spec.name
                    )));
                }
            }
            buffer_at += buffer_count;
        }
        Ok(())
    }

    fn check_buffer(&self, buffer: &arrow_ipc::Buffer) -> Result<(), BatchError> {
        let (offset, length) = (buffer.offset(), buffer.length());
        let in_body = offset >= 0
            && length >= 0
            && offset.checked_add(length).is_some_and(|end| end as u64 <= self.body_size as u64);
        if !in_body {
            return Err(BatchError::BadMessage(format!(
                "buffer at {offset} of {length} bytes lies outside the {}-byte body",
                self.body_size
            )));
        }
        if !(offset as u64).is_multiple_of(BATCH_ALIGNMENT_BYTES as u64) {
            return Err(BatchError::BadMessage(format!(
                "buffer at {offset} is not aligned to {BATCH_ALIGNMENT_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// A field node's length is at most [`NODE_LENGTH_MAX`] and its null count at most its length.
fn check_node(node: &arrow_ipc::FieldNode) -> Result<(), BatchError> {
    let valid = (0..=NODE_LENGTH_MAX as i64).contains(&node.length())
        && (0..=node.length()).contains(&node.null_count());
    if !valid {
        return Err(BatchError::BadMessage(format!(
            "field node with length {} and null count {}",
            node.length(),
            node.null_count()
        )));
    }
    Ok(())
}

/// Size of `buffer` once decompressed. Its range in `body` was checked by `check_layout`.
fn decoded_size(
    body: &[u8],
    buffer: &arrow_ipc::Buffer,
    compressed: bool,
) -> Result<u64, BatchError> {
    let (offset, length) = (buffer.offset() as usize, buffer.length() as usize);
    if !compressed || length == 0 {
        return Ok(length as u64);
    }
    let prefix = body.get(offset..offset + 8).filter(|_| length >= 8);
    let Some(prefix) = prefix else {
        return Err(BatchError::BadMessage(format!(
            "compressed buffer at {offset} of {length} bytes has no length prefix"
        )));
    };
    let mut declared = [0u8; 8];
    declared.copy_from_slice(prefix);
    match i64::from_le_bytes(declared) {
        -1 => Ok(length as u64 - 8),
        size if size >= 0 => Ok(size as u64),
        size => Err(BatchError::BadMessage(format!("decompressed size {size}"))),
    }
}
