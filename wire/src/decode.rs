//! Decoding a batch into an Arrow `RecordBatch` without copying its column buffers.
//!
//! The batch's bytes are wrapped as an Arrow `Buffer` (from a `Vec`, `bytes::Bytes`, or any
//! owner) and the columns are slices of it. Arrow is told to *require* alignment, so a
//! misaligned buffer is an error rather than a silent copy; since the format aligns every
//! column buffer to 64 bytes from the batch start, the only copy happens when the whole batch
//! sits at a misaligned address, and then it is one copy of the batch, made here on purpose.
//! Compressed batches are first inflated into one new aligned message (`decompress`), with
//! sizes bounded by their declarations, and then decoded in place the same way.

use arrow_array::RecordBatch;
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::reader::FileDecoder;
use arrow_ipc::{Block, MetadataVersion};

use crate::batch::LogBatch;
use crate::batch_schema::BatchSchema;
use crate::change_type::ChangeType;
use crate::decompress::inflate;
use crate::error::BatchError;
use crate::header::{BatchHeader, Compression, BATCH_ALIGNMENT_BYTES};

/// A decoded batch: its header, its rows, and its change types.
#[derive(Clone, Debug)]
pub struct DecodedBatch {
    /// A copy of the header.
    pub header: BatchHeader,
    /// The rows; column buffers point into the batch's bytes when uncompressed.
    pub record_batch: RecordBatch,
    /// One byte per record (see [`ChangeType`]), if the batch is a changelog.
    pub change_types: Option<Buffer>,
}

impl DecodedBatch {
    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        self.header.base_offset.get()
    }

    /// The change type of record `index`; `AppendOnly` for log batches.
    ///
    /// # Panics
    /// If `index` is not a record of the batch.
    pub fn change_type(&self, index: usize) -> ChangeType {
        assert!(index < self.record_batch.num_rows());
        match &self.change_types {
            // Validated when the batch was parsed.
            Some(bytes) => ChangeType::from_byte(bytes[index]).unwrap_or(ChangeType::AppendOnly),
            None => ChangeType::AppendOnly,
        }
    }
}

/// Decodes batches of one schema (optionally only some columns, read from a full batch).
#[derive(Debug)]
pub struct BatchDecoder {
    schema: BatchSchema,
    /// Requires aligned buffers: every message it sees is uncompressed and aligned.
    decoder: FileDecoder,
}

impl BatchDecoder {
    /// A decoder of batches of `schema`, all columns.
    pub fn new(schema: BatchSchema) -> Self {
        Self::build(schema, None)
    }

    fn build(schema: BatchSchema, columns: Option<Vec<usize>>) -> Self {
        let decoder = FileDecoder::new(schema.arrow().clone(), MetadataVersion::V5)
            .with_require_alignment(true);
        let decoder = match columns {
            Some(columns) => decoder.with_projection(columns),
            None => decoder,
        };
        Self { schema, decoder }
    }

    /// A decoder that reads only `columns` (ascending indexes) of full batches of `schema`.
    /// For batches the server already projected, use a plain decoder of the projected
    /// schema instead.
    pub fn with_projection(schema: BatchSchema, columns: Vec<usize>) -> Result<Self, BatchError> {
        let field_count = schema.arrow().fields().len();
        if let Some(&column) = columns.iter().find(|&&column| column >= field_count) {
            return Err(BatchError::BadProjection { column, field_count });
        }
        Ok(Self::build(schema, Some(columns)))
    }

    /// The schema of full batches this decoder reads.
    pub fn schema(&self) -> &BatchSchema {
        &self.schema
    }

    /// Decodes the batch at the start of `bytes` (bytes after it are ignored).
    pub fn decode(&self, bytes: &Buffer) -> Result<DecodedBatch, BatchError> {
        let batch = LogBatch::parse(bytes.as_slice())?;
        batch.check_schema(&self.schema)?;
        let message = batch.message()?;
        let header = *batch.header();
        let batch_length = batch.len();
        let message_at = batch.message_offset();
        let change_range = batch.change_type_range();
        let compression = batch.attributes().compression().unwrap_or_default();

        let aligned = if (bytes.as_ptr() as usize).is_multiple_of(BATCH_ALIGNMENT_BYTES) {
            bytes.slice_with_length(0, batch_length)
        } else {
            aligned_copy(&bytes.as_slice()[..batch_length])
        };
        let (message_bytes, metadata_size, body_size) = if compression == Compression::None {
            let message_bytes = aligned.slice_with_length(message_at, batch_length - message_at);
            (message_bytes, message.metadata_size, message.body_size)
        } else {
            let inflated = inflate(&message, &batch.bytes()[message_at..], compression)?;
            (inflated.bytes, inflated.metadata_size, inflated.body_size)
        };
        let block = Block::new(0, metadata_size as i32, body_size as i64);
        let record_batch = self
            .decoder
            .read_record_batch(&block, &message_bytes)?
            .ok_or_else(|| BatchError::BadMessage("message holds no record batch".into()))?;
        let change_types =
            change_range.map(|range| aligned.slice_with_length(range.start, range.len()));
        Ok(DecodedBatch { header, record_batch, change_types })
    }
}

/// Copies `bytes` into a buffer whose start is aligned for decoding. For callers that
/// receive a batch in memory they do not control.
pub fn aligned_copy(bytes: &[u8]) -> Buffer {
    let mut copy = MutableBuffer::with_capacity(bytes.len());
    copy.extend_from_slice(bytes);
    Buffer::from(copy)
}
