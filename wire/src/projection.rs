//! Server-side projection: cutting chosen columns out of a stored batch by rewriting only its
//! Arrow metadata, never decoding or decompressing column data.
//!
//! The projected batch is a new *head* (header, change types, padding, new IPC metadata)
//! followed by byte ranges of the original batch (the chosen columns' buffers), so the shard
//! can read just those ranges from the segment file. Output columns keep schema order.
//!
//! CRC decision: a projected batch carries the projected attribute bit and a CRC computed
//! over its own bytes ([`ProjectedBatch::seal`]), so every batch a client accepts passes the
//! same check and no "skip the CRC" path exists for corruption to hide behind. The server
//! cannot check the original CRC without reading every column; a projected read therefore
//! trusts the stored buffers it sends, while full reads and recovery check the original CRC.
//! Statistics are dropped (they serve filtering, which happens before projection).

use core::ops::Range;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use zerocopy::IntoBytes;

use crate::batch::check_header;
use crate::batch_schema::BatchSchema;
use crate::error::BatchError;
use crate::header::{
    align_to_batch, message_offset, set_crc, Attributes, BatchHeader, BATCH_HEADER_SIZE_BYTES,
    CRC_START_OFFSET,
};
use crate::ipc_message::{
    encapsulated_metadata_size, write_metadata, ColumnSpan, IpcMessage, MessageParts,
    MESSAGE_PREFIX_SIZE_BYTES,
};
use crate::limits::BATCH_SIZE_MAX_BYTES;

/// A set of columns to keep, resolved against a schema once and applied to many batches.
#[derive(Clone, Debug)]
pub struct Projection {
    source: BatchSchema,
    columns: Vec<usize>,
    projected: BatchSchema,
}

impl Projection {
    /// Keeps `columns` (indexes into `source`; sorted and deduplicated here, since a
    /// projected batch keeps schema order).
    pub fn new(source: BatchSchema, columns: &[usize]) -> Result<Self, BatchError> {
        let field_count = source.arrow().fields().len();
        let mut columns = columns.to_vec();
        columns.sort_unstable();
        columns.dedup();
        if let Some(&column) = columns.iter().find(|&&column| column >= field_count) {
            return Err(BatchError::BadProjection { column, field_count });
        }
        let projected_arrow = Arc::new(source.arrow().project(&columns)?);
        let projected = BatchSchema::new(source.id(), projected_arrow)?;
        Ok(Self { source, columns, projected })
    }

    /// The kept column indexes, ascending.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// The schema of projected batches (same schema id as the source).
    pub fn projected_schema(&self) -> &BatchSchema {
        &self.projected
    }

    /// The Arrow schema of projected batches.
    pub fn projected_arrow(&self) -> &SchemaRef {
        self.projected.arrow()
    }
}

/// A projected batch: a new head plus ranges of the original batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectedBatch {
    head: Vec<u8>,
    body_ranges: Vec<Range<usize>>,
    batch_length: usize,
    sealed: bool,
}

impl ProjectedBatch {
    /// The new bytes that open the projected batch.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Ranges of the original batch (offsets from its first byte) that follow the head, in
    /// order. Adjacent ranges are merged.
    pub fn body_ranges(&self) -> &[Range<usize>] {
        &self.body_ranges
    }

    /// Total size of the projected batch.
    pub fn len(&self) -> usize {
        self.batch_length
    }

    /// Always false: a batch has at least a header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Computes and stores the CRC, given the bytes of [`Self::body_ranges`] in order.
    ///
    /// # Panics
    /// If the chunks do not add up to the body size: a bug in the caller.
    pub fn seal<'a>(&mut self, body: impl IntoIterator<Item = &'a [u8]>) {
        let mut crc = crc32c::crc32c(&self.head[CRC_START_OFFSET..]);
        let mut body_size = 0;
        for chunk in body {
            crc = crc32c::crc32c_append(crc, chunk);
            body_size += chunk.len();
        }
        assert_eq!(self.head.len() + body_size, self.batch_length, "projected body size");
        set_crc(&mut self.head, crc);
        self.sealed = true;
    }

    /// Seals and assembles the projected batch from the whole `original` batch.
    pub fn assemble(mut self, original: &[u8]) -> Vec<u8> {
        let ranges = self.body_ranges.clone();
        self.seal(ranges.iter().map(|range| &original[range.clone()]));
        let mut out = Vec::with_capacity(self.batch_length);
        out.extend_from_slice(&self.head);
        for range in &ranges {
            out.extend_from_slice(&original[range.clone()]);
        }
        out
    }

    /// True once [`Self::seal`] has stored the CRC.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }
}

/// How many leading bytes of a batch [`project`] needs, given the first bytes of it: call
/// again with more bytes until the answer is not larger than what was given.
pub fn required_prefix_size(prefix: &[u8]) -> Result<usize, BatchError> {
    if prefix.len() < BATCH_HEADER_SIZE_BYTES {
        return Ok(BATCH_HEADER_SIZE_BYTES);
    }
    let (_, layout) = check_header(prefix)?;
    let prefix_end = layout.message + MESSAGE_PREFIX_SIZE_BYTES;
    if prefix.len() < prefix_end {
        return Ok(prefix_end);
    }
    let metadata_size =
        IpcMessage::metadata_size(&prefix[layout.message..], layout.batch_length - layout.message)?;
    Ok(layout.message + metadata_size)
}

/// Projects the batch whose first bytes are `prefix` (at least [`required_prefix_size`]).
pub fn project(prefix: &[u8], projection: &Projection) -> Result<ProjectedBatch, BatchError> {
    let (header, layout) = check_header(prefix)?;
    let needed = required_prefix_size(prefix)?;
    if prefix.len() < needed {
        return Err(BatchError::Truncated {
            what: "batch metadata",
            needed,
            available: prefix.len(),
        });
    }
    if header.schema_id.get() != projection.source.id() {
        return Err(BatchError::SchemaMismatch(format!(
            "batch has schema id {}, projection is for {}",
            header.schema_id.get(),
            projection.source.id()
        )));
    }
    let message =
        IpcMessage::parse(&prefix[layout.message..], layout.batch_length - layout.message)?;
    let compression = message.compression()?;
    if Some(compression) != Attributes(header.attributes).compression() {
        return Err(BatchError::BadHeader {
            field: "attributes",
            reason: "compression differs from the Arrow message's".into(),
        });
    }
    let mut spans = Vec::with_capacity(projection.source.layouts().len());
    message.check_layout(projection.source.layouts(), header.record_count.get(), |span| {
        spans.push(span)
    })?;
    let body_at = layout.message + message.metadata_size;
    let record_batch = &message.record_batch;
    let selected =
        select_columns(record_batch, &spans, &projection.columns, body_at, layout.batch_length)?;

    let compression = record_batch.compression().map(|body| (body.codec(), body.method()));
    let flatbuffer = MessageParts {
        length: record_batch.length(),
        nodes: &selected.nodes,
        buffers: &selected.buffers,
        variadic: &selected.variadic,
        compression,
        body_size: selected.body_size,
    }
    .encode();
    let change_types = Attributes(header.attributes)
        .has_change_types()
        .then(|| &prefix[layout.change_types..layout.change_types + layout.record_count]);
    let head = projected_head(header, change_types, &flatbuffer, selected.body_size);
    // New metadata may be a few bytes longer than the writer's, so a projection of (nearly)
    // every column can be one alignment unit longer than the original.
    let batch_length = head.len() + selected.body_size;
    if batch_length > BATCH_SIZE_MAX_BYTES as usize {
        return Err(BatchError::BadLength {
            length: batch_length as u64,
            reason: "the projected batch would be over the batch size limit",
        });
    }
    Ok(ProjectedBatch { head, body_ranges: selected.body_ranges, batch_length, sealed: false })
}

/// The chosen columns' entries of a batch's metadata, buffer offsets rebased on the
/// projected body, and the ranges of the original batch that make up that body.
struct SelectedColumns {
    nodes: Vec<arrow_ipc::FieldNode>,
    buffers: Vec<arrow_ipc::Buffer>,
    variadic: Vec<i64>,
    body_ranges: Vec<Range<usize>>,
    body_size: usize,
}

/// Picks `columns` out of `record_batch`, whose column `c` lies at `spans[c]` and whose body
/// starts at `body_at` of a batch `batch_length` bytes long.
fn select_columns(
    record_batch: &arrow_ipc::RecordBatch<'_>,
    spans: &[ColumnSpan],
    columns: &[usize],
    body_at: usize,
    batch_length: usize,
) -> Result<SelectedColumns, BatchError> {
    let (Some(all_nodes), Some(all_buffers)) = (record_batch.nodes(), record_batch.buffers())
    else {
        return Err(BatchError::BadMessage("field nodes or buffers missing".into()));
    };
    let all_variadic = record_batch.variadicBufferCounts();

    let mut nodes = Vec::new();
    let mut buffers = Vec::new();
    let mut variadic = Vec::new();
    let mut body_ranges: Vec<Range<usize>> = Vec::new();
    let mut body_size = 0usize;
    for &column in columns {
        let span = &spans[column];
        nodes.extend(span.nodes.clone().map(|index| *all_nodes.get(index)));
        if let Some(counts) = all_variadic {
            variadic.extend(span.variadic.clone().map(|index| counts.get(index)));
        }
        for index in span.buffers.clone() {
            let buffer = all_buffers.get(index);
            let (offset, length) = (buffer.offset() as usize, buffer.length() as usize);
            buffers.push(arrow_ipc::Buffer::new(body_size as i64, length as i64));
            // Buffers start at aligned offsets, so the padding up to the next alignment
            // belongs to this buffer and the body size stays aligned.
            let padded = align_to_batch(length);
            let range = body_at + offset..body_at + offset + padded;
            assert!(range.end <= batch_length, "checked by check_layout");
            match body_ranges.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ if padded > 0 => body_ranges.push(range),
                _ => {}
            }
            body_size += padded;
        }
    }
    Ok(SelectedColumns { nodes, buffers, variadic, body_ranges, body_size })
}

fn projected_head(
    original: &BatchHeader,
    change_types: Option<&[u8]>,
    flatbuffer: &[u8],
    body_size: usize,
) -> Vec<u8> {
    let change_type_count = change_types.map_or(0, <[u8]>::len);
    let message_at = message_offset(0, change_type_count);
    let metadata_size = encapsulated_metadata_size(flatbuffer);
    let head_size = message_at + metadata_size;
    let mut header = *original;
    header.batch_length.set((head_size + body_size) as u32);
    header.statistics_length.set(0);
    header.attributes = Attributes(original.attributes).with_projected().0;
    header.crc.set(0);

    let mut head = Vec::with_capacity(head_size);
    head.extend_from_slice(header.as_bytes());
    if let Some(change_types) = change_types {
        head.extend_from_slice(change_types);
    }
    head.resize(message_at, 0);
    write_metadata(flatbuffer, &mut head);
    assert_eq!(head.len(), head_size);
    head
}

/// Projects a whole in-memory batch: [`project`], then [`ProjectedBatch::assemble`].
pub fn project_batch(batch: &[u8], projection: &Projection) -> Result<Vec<u8>, BatchError> {
    Ok(project(batch, projection)?.assemble(batch))
}
