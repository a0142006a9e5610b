//! Building a `LogBatch` from Arrow record batches: the one place batches are made, by the
//! client SDK, the benchmarks, and (for changelogs) the shard.
//!
//! The output is header, statistics, change types, zero padding to the next
//! [`BATCH_ALIGNMENT_BYTES`], then one Arrow IPC record-batch message written with 64-byte
//! buffer alignment and V5 metadata. Server-assigned fields (base offset, commit timestamp,
//! leader epoch) are zero; the CRC covers everything from the schema id on (length and magic
//! are checked on their own).

use arrow_array::RecordBatch;
use arrow_ipc::writer::{CompressionContext, DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use arrow_ipc::{CompressionType, MetadataVersion};
use arrow_schema::SchemaRef;
use zerocopy::IntoBytes;

use crate::batch_schema::BatchSchema;
use crate::change_type::ChangeType;
use crate::error::BuildError;
use crate::header::{
    compute_crc, message_offset, set_crc, Attributes, BatchHeader, Compression,
    BATCH_ALIGNMENT_BYTES, BATCH_HEADER_SIZE_BYTES, BATCH_MAGIC_V1, NO_BATCH_SEQUENCE,
    NO_WRITER_ID,
};
use crate::limits::{BATCH_RECORD_COUNT_MAX, BATCH_SIZE_MAX_BYTES};
use crate::statistics;

/// How batches are built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// Body compression of the column buffers.
    pub compression: Compression,
    /// Top-level columns (ascending) to keep min/max/null-count statistics for.
    pub statistics_columns: Vec<usize>,
}

/// The idempotent writer identity stamped into a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterStamp {
    /// Writer id given by the server, or [`NO_WRITER_ID`].
    pub writer_id: i64,
    /// This batch's sequence number for the writer, or [`NO_BATCH_SEQUENCE`].
    pub batch_sequence: i32,
}

impl WriterStamp {
    /// No idempotence: the batch may be stored twice if its produce is retried.
    pub const NONE: WriterStamp =
        WriterStamp { writer_id: NO_WRITER_ID, batch_sequence: NO_BATCH_SEQUENCE };
}

/// Builds `LogBatch` bytes for one table schema. Keeps its encoder state between batches.
pub struct LogBatchBuilder {
    schema: BatchSchema,
    options: BatchOptions,
    write_options: IpcWriteOptions,
    generator: IpcDataGenerator,
    compression_context: CompressionContext,
}

impl core::fmt::Debug for LogBatchBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LogBatchBuilder")
            .field("schema_id", &self.schema.id())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl LogBatchBuilder {
    /// A builder for batches of `schema`. Fails if the schema holds an unsupported type or
    /// statistics are asked for a column that cannot have them.
    pub fn new(schema: BatchSchema, options: BatchOptions) -> Result<Self, BuildError> {
        let fields = schema.arrow().fields();
        for (position, &column) in options.statistics_columns.iter().enumerate() {
            let error = |reason: String| BuildError::Statistics { column, reason };
            let Some(field) = fields.get(column) else {
                return Err(error(format!("is past the last of {} columns", fields.len())));
            };
            if position > 0 && options.statistics_columns[position - 1] >= column {
                return Err(error("is not in strictly ascending order".into()));
            }
            if !statistics::is_supported(field.data_type()) {
                return Err(error(format!("has type {}", field.data_type())));
            }
        }
        let codec = match options.compression {
            Compression::None => None,
            Compression::Lz4Frame => Some(CompressionType::LZ4_FRAME),
            Compression::Zstd => Some(CompressionType::ZSTD),
        };
        let write_options =
            IpcWriteOptions::try_new(BATCH_ALIGNMENT_BYTES, false, MetadataVersion::V5)?
                .try_with_compression(codec)?;
        Ok(Self {
            schema,
            options,
            write_options,
            generator: IpcDataGenerator::default(),
            compression_context: CompressionContext::default(),
        })
    }

    /// The schema batches are built for.
    pub fn schema(&self) -> &BatchSchema {
        &self.schema
    }

    /// Builds one batch from `batch`. `change_types`, if given, has one entry per row and
    /// makes this a changelog batch.
    pub fn build(
        &mut self,
        batch: &RecordBatch,
        change_types: Option<&[ChangeType]>,
        writer: WriterStamp,
    ) -> Result<Vec<u8>, BuildError> {
        let mut out = Vec::new();
        self.build_into(batch, change_types, writer, &mut out)?;
        Ok(out)
    }

    /// Builds one batch from several record batches of the schema, concatenated in order.
    pub fn build_concat(
        &mut self,
        batches: &[RecordBatch],
        change_types: Option<&[ChangeType]>,
        writer: WriterStamp,
    ) -> Result<Vec<u8>, BuildError> {
        match batches {
            [] => Err(BuildError::Empty),
            [single] => self.build(single, change_types, writer),
            _ => {
                for batch in batches {
                    self.check_schema(&batch.schema())?;
                }
                let batch = arrow_select::concat::concat_batches(self.schema.arrow(), batches)?;
                self.build(&batch, change_types, writer)
            }
        }
    }

    /// Appends one batch to `out`, which must end at a multiple of
    /// [`BATCH_ALIGNMENT_BYTES`] so batches can be laid back to back. On error `out` is
    /// left as it was.
    pub fn build_into(
        &mut self,
        batch: &RecordBatch,
        change_types: Option<&[ChangeType]>,
        writer: WriterStamp,
        out: &mut Vec<u8>,
    ) -> Result<(), BuildError> {
        assert!(
            out.len().is_multiple_of(BATCH_ALIGNMENT_BYTES),
            "batches must be laid out aligned"
        );
        self.check_schema(&batch.schema())?;
        let records = batch.num_rows();
        if records > BATCH_RECORD_COUNT_MAX as usize {
            return Err(BuildError::TooManyRecords { records, max: BATCH_RECORD_COUNT_MAX });
        }
        if let Some(change_types) = change_types {
            if change_types.len() != records {
                return Err(BuildError::ChangeTypeCount { given: change_types.len(), records });
            }
        }
        let statistics = statistics::compute(batch, &self.options.statistics_columns)?;
        let (_, encoded) = self.generator.encode(
            batch,
            &mut DictionaryTracker::new(false),
            &self.write_options,
            &mut self.compression_context,
        )?;

        let start = out.len();
        let result = self.write_batch(batch, change_types, writer, &statistics, encoded, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn write_batch(
        &self,
        batch: &RecordBatch,
        change_types: Option<&[ChangeType]>,
        writer: WriterStamp,
        statistics: &[statistics::ColumnStatistics],
        encoded: arrow_ipc::writer::EncodedData,
        out: &mut Vec<u8>,
    ) -> Result<(), BuildError> {
        let start = out.len();
        let statistics_length = statistics::encoded_size(statistics);
        let change_type_count = change_types.map_or(0, <[ChangeType]>::len);
        let message_at = message_offset(statistics_length, change_type_count);
        out.reserve(message_at + 8 + encoded.ipc_message.len() + 64 + encoded.arrow_data.len());
        out.resize(start + BATCH_HEADER_SIZE_BYTES, 0);
        statistics::encode(statistics, out);
        if let Some(change_types) = change_types {
            out.extend(change_types.iter().map(|change_type| change_type.to_byte()));
        }
        out.resize(start + message_at, 0);
        arrow_ipc::writer::write_message(&mut *out, encoded, &self.write_options)?;

        let size = out.len() - start;
        if size > BATCH_SIZE_MAX_BYTES as usize {
            return Err(BuildError::TooLarge { size, max: BATCH_SIZE_MAX_BYTES });
        }
        assert!(size.is_multiple_of(BATCH_ALIGNMENT_BYTES), "Arrow pads messages to the alignment");
        let records = batch.num_rows() as u32;
        let header = BatchHeader {
            base_offset: 0.into(),
            batch_length: (size as u32).into(),
            magic: BATCH_MAGIC_V1,
            commit_timestamp: 0.into(),
            leader_epoch: 0.into(),
            crc: 0.into(),
            schema_id: self.schema.id().into(),
            attributes: Attributes::new(self.options.compression, change_types.is_some()).0,
            last_offset_delta: records.saturating_sub(1).into(),
            writer_id: writer.writer_id.into(),
            batch_sequence: writer.batch_sequence.into(),
            record_count: records.into(),
            statistics_length: (statistics_length as u32).into(),
        };
        let batch_bytes = &mut out[start..];
        batch_bytes[..BATCH_HEADER_SIZE_BYTES].copy_from_slice(header.as_bytes());
        let crc = compute_crc(batch_bytes);
        set_crc(batch_bytes, crc);
        Ok(())
    }

    fn check_schema(&self, actual: &SchemaRef) -> Result<(), BuildError> {
        let expected = self.schema.arrow();
        if actual.fields().len() != expected.fields().len() {
            return Err(BuildError::SchemaMismatch(format!(
                "{} columns, the table has {}",
                actual.fields().len(),
                expected.fields().len()
            )));
        }
        for (actual, expected) in actual.fields().iter().zip(expected.fields()) {
            // A nullable column may fill a NOT NULL one; decoding rejects it if it holds nulls.
            let same =
                actual.name() == expected.name() && actual.data_type() == expected.data_type();
            if !same {
                return Err(BuildError::SchemaMismatch(format!(
                    "column {:?} {} (nullable: {}) where the table has {:?} {} (nullable: {})",
                    actual.name(),
                    actual.data_type(),
                    actual.is_nullable(),
                    expected.name(),
                    expected.data_type(),
                    expected.is_nullable()
                )));
            }
        }
        Ok(())
    }
}
