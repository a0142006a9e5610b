//! `LogBatch`: a validated view of one batch's bytes, and the header checks every reader of
//! batches (client, shard append, log recovery) goes through.
//!
//! [`LogBatch::parse`] checks everything that can be checked without a schema: magic,
//! length (bounds, alignment), header fields, the CRC, the statistics block and the change
//! types. [`LogBatch::check_schema`] adds the Arrow message's structure against a schema,
//! reading only its metadata. Neither decodes column data.

use core::ops::Range;

use zerocopy::FromBytes;

use crate::batch_schema::BatchSchema;
use crate::change_type::ChangeType;
use crate::error::BatchError;
use crate::header::{
    compute_crc, message_offset, Attributes, BatchHeader, BATCH_ALIGNMENT_BYTES,
    BATCH_HEADER_SIZE_BYTES, BATCH_MAGIC_V1, NO_BATCH_SEQUENCE, NO_WRITER_ID,
};
use crate::ipc_message::{IpcMessage, MESSAGE_PREFIX_SIZE_BYTES};
use crate::limits::{BATCH_RECORD_COUNT_MAX, BATCH_SIZE_MAX_BYTES, STATISTICS_SIZE_MAX_BYTES};
use crate::statistics::{self, ColumnStatistics};

/// A batch whose header, CRC, statistics and change types have been checked.
#[derive(Clone, Copy, Debug)]
pub struct LogBatch<'a> {
    bytes: &'a [u8],
    header: &'a BatchHeader,
    message_at: usize,
}

/// Where the parts of a batch lie, derived from a header that passed [`check_header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLayout {
    /// Total size of the batch.
    pub batch_length: usize,
    /// Offset of the statistics block.
    pub statistics: usize,
    /// Offset of the change-type vector.
    pub change_types: usize,
    /// Records in the batch (and change types, if present).
    pub record_count: usize,
    /// Offset of the Arrow message.
    pub message: usize,
}

/// Reads the header at the start of `bytes` and checks it on its own (no CRC, no bounds
/// against `bytes` beyond the header itself). The log scan uses this to find batch
/// boundaries; everything else calls [`LogBatch::parse`].
pub fn check_header(bytes: &[u8]) -> Result<(&BatchHeader, BatchLayout), BatchError> {
    let Ok((header, _)) = BatchHeader::ref_from_prefix(bytes) else {
        return Err(BatchError::Truncated {
            what: "batch header",
            needed: BATCH_HEADER_SIZE_BYTES,
            available: bytes.len(),
        });
    };
    if header.magic != BATCH_MAGIC_V1 {
        return Err(BatchError::BadMagic { found: header.magic, expected: BATCH_MAGIC_V1 });
    }
    let bad_header = |field: &'static str, reason: String| BatchError::BadHeader { field, reason };
    let attributes = Attributes(header.attributes);
    if !attributes.is_valid() {
        return Err(bad_header("attributes", format!("{:#010b} has unknown bits", attributes.0)));
    }
    let record_count = header.record_count.get();
    if record_count > BATCH_RECORD_COUNT_MAX {
        return Err(bad_header(
            "record_count",
            format!("{record_count} is over the limit of {BATCH_RECORD_COUNT_MAX}"),
        ));
    }
    let delta = header.last_offset_delta.get();
    if delta != record_count.saturating_sub(1) {
        return Err(bad_header(
            "last_offset_delta",
            format!("{delta} does not fit {record_count} records"),
        ));
    }
    let writer_id = header.writer_id.get();
    let sequence = header.batch_sequence.get();
    let idempotent = writer_id >= 0 && sequence >= 0;
    let plain = writer_id == NO_WRITER_ID && sequence == NO_BATCH_SEQUENCE;
    if !idempotent && !plain {
        return Err(bad_header(
            "writer_id",
            format!("writer id {writer_id} with batch sequence {sequence}"),
        ));
    }
    let statistics_length = header.statistics_length.get();
    if statistics_length > STATISTICS_SIZE_MAX_BYTES {
        return Err(bad_header(
            "statistics_length",
            format!("{statistics_length} is over the limit of {STATISTICS_SIZE_MAX_BYTES}"),
        ));
    }
    let batch_length = header.batch_length.get();
    let length_error = |reason| BatchError::BadLength { length: u64::from(batch_length), reason };
    if batch_length > BATCH_SIZE_MAX_BYTES {
        return Err(length_error("over the batch size limit"));
    }
    if !(batch_length as usize).is_multiple_of(BATCH_ALIGNMENT_BYTES) {
        return Err(length_error("not a multiple of the batch alignment"));
    }
    let change_type_count = if attributes.has_change_types() { record_count as usize } else { 0 };
    let message = message_offset(statistics_length as usize, change_type_count);
    if message + MESSAGE_PREFIX_SIZE_BYTES > batch_length as usize {
        return Err(length_error("too short for its header, statistics and change types"));
    }
    let statistics = BATCH_HEADER_SIZE_BYTES;
    let layout = BatchLayout {
        batch_length: batch_length as usize,
        statistics,
        change_types: statistics + statistics_length as usize,
        record_count: record_count as usize,
        message,
    };
    Ok((header, layout))
}

impl<'a> LogBatch<'a> {
    /// Checks the batch at the start of `bytes`; bytes after it are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BatchError> {
        let (header, layout) = check_header(bytes)?;
        if bytes.len() < layout.batch_length {
            return Err(BatchError::Truncated {
                what: "batch",
                needed: layout.batch_length,
                available: bytes.len(),
            });
        }
        let bytes = &bytes[..layout.batch_length];
        let computed = compute_crc(bytes);
        if computed != header.crc.get() {
            return Err(BatchError::CrcMismatch { stored: header.crc.get(), computed });
        }
        statistics::validate(
            &bytes[layout.statistics..layout.change_types],
            header.record_count.get(),
        )?;
        if Attributes(header.attributes).has_change_types() {
            let end = layout.change_types + layout.record_count;
            for (index, &value) in bytes[layout.change_types..end].iter().enumerate() {
                if ChangeType::from_byte(value).is_none() {
                    return Err(BatchError::BadChangeType { index, value });
                }
            }
        }
        Ok(Self { bytes, header, message_at: layout.message })
    }

    /// The batch's bytes, exactly `batch_length` of them.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The header, read in place.
    pub fn header(&self) -> &'a BatchHeader {
        self.header
    }

    /// Size of the batch in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a batch has at least a header. Here for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        self.header.base_offset.get()
    }

    /// Offset of the last record (the base offset for an empty batch).
    pub fn last_offset(&self) -> u64 {
        self.base_offset() + u64::from(self.header.last_offset_delta.get())
    }

    /// Offsets the batch takes: records, or one for an empty batch.
    pub fn offset_count(&self) -> u64 {
        u64::from(self.header.last_offset_delta.get()) + 1
    }

    /// Records (rows) in the batch.
    pub fn record_count(&self) -> u32 {
        self.header.record_count.get()
    }

    /// Server commit time, milliseconds since the Unix epoch.
    pub fn commit_timestamp(&self) -> i64 {
        self.header.commit_timestamp.get()
    }

    /// Schema id of the Arrow message.
    pub fn schema_id(&self) -> u16 {
        self.header.schema_id.get()
    }

    /// The attribute bits.
    pub fn attributes(&self) -> Attributes {
        Attributes(self.header.attributes)
    }

    /// The statistics block's entries (already validated by `parse`).
    pub fn statistics(&self) -> Result<Vec<ColumnStatistics>, BatchError> {
        statistics::decode(self.statistics_bytes(), self.record_count())
    }

    /// Byte range of the change-type vector, if present.
    pub fn change_type_range(&self) -> Option<Range<usize>> {
        if !self.attributes().has_change_types() {
            return None;
        }
        let start = BATCH_HEADER_SIZE_BYTES + self.header.statistics_length.get() as usize;
        Some(start..start + self.record_count() as usize)
    }

    /// The change type of every record; all [`ChangeType::AppendOnly`] for a log batch.
    pub fn change_types(&self) -> impl Iterator<Item = ChangeType> + 'a {
        let bytes = self.change_type_range().map(|range| &self.bytes[range]);
        let count = self.record_count() as usize;
        (0..count).map(move |index| {
            bytes
                .and_then(|bytes| ChangeType::from_byte(bytes[index]))
                .unwrap_or(ChangeType::AppendOnly)
        })
    }

    /// Offset of the Arrow message within the batch.
    pub fn message_offset(&self) -> usize {
        self.message_at
    }

    /// Parses the Arrow message's metadata.
    pub fn message(&self) -> Result<IpcMessage<'a>, BatchError> {
        IpcMessage::parse(&self.bytes[self.message_at..], self.bytes.len() - self.message_at)
    }

    /// Checks that the Arrow message has the shape of `schema` and that the header agrees
    /// with it, reading the metadata and at most 8 bytes per compressed buffer, never the
    /// column data. This is what the server checks before it appends, and what makes the
    /// message safe to hand to Arrow's decoder.
    pub fn check_schema(&self, schema: &BatchSchema) -> Result<(), BatchError> {
        if self.schema_id() != schema.id() {
            return Err(BatchError::SchemaMismatch(format!(
                "batch has schema id {}, expected {}",
                self.schema_id(),
                schema.id()
            )));
        }
        let message = self.message()?;
        let compression = message.compression()?;
        if Some(compression) != self.attributes().compression() {
            return Err(BatchError::BadHeader {
                field: "attributes",
                reason: format!("message is compressed with {compression:?}, header disagrees"),
            });
        }
        let field_count = schema.arrow().fields().len();
        let mut column_past_end = None;
        statistics::visit(self.statistics_bytes(), self.record_count(), |entry| {
            if usize::from(entry.column) >= field_count {
                column_past_end.get_or_insert(entry.column);
            }
        })?;
        if let Some(column) = column_past_end {
            return Err(BatchError::BadStatistics(format!(
                "column {column} is past the last of {field_count} columns"
            )));
        }
        message.check_layout(schema.layouts(), self.record_count(), |_| {})?;
        let body = &self.bytes[self.message_at + message.metadata_size..];
        message.check_body(schema.nodes(), body)
    }

    fn statistics_bytes(&self) -> &'a [u8] {
        let start = BATCH_HEADER_SIZE_BYTES;
        &self.bytes[start..start + self.header.statistics_length.get() as usize]
    }
}
