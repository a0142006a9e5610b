//! Property: any supported schema and data survives build → parse → check → decode
//! unchanged, column buffers are used in place when uncompressed, and the header says what
//! was built.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use arrow_array::Array;
use arrow_buffer::Buffer;
use proptest::prelude::*;
use ufer_wire::header::stamp_server_fields;
use ufer_wire::{
    BatchDecoder, BatchOptions, BatchSchema, ChangeType, Compression, LogBatch, LogBatchBuilder,
    WriterStamp,
};

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![Just(Compression::None), Just(Compression::Lz4Frame), Just(Compression::Zstd)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: support_cases(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn built_batches_decode_to_the_same_rows(
        schema in support::schema(6),
        rows in 0usize..200,
        seed in any::<u64>(),
        compression in compression(),
        with_change_types in any::<bool>(),
        with_writer in any::<bool>(),
    ) {
        let record_batch = support::record_batch(&schema, rows, seed);
        let batch_schema = BatchSchema::new(7, Arc::new(schema.clone())).unwrap();
        let statistics_columns: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, field)| ufer_wire::statistics::is_supported(field.data_type()))
            .map(|(index, _)| index)
            .collect();
        let options = BatchOptions { compression, statistics_columns: statistics_columns.clone() };
        let mut builder = LogBatchBuilder::new(batch_schema.clone(), options).unwrap();
        let change_types: Vec<ChangeType> =
            (0..rows).map(|row| ChangeType::ALL[(seed as usize + row) % 5]).collect();
        let writer = if with_writer {
            WriterStamp { writer_id: 42, batch_sequence: 9 }
        } else {
            WriterStamp::NONE
        };
        let mut bytes = builder
            .build(&record_batch, with_change_types.then_some(&change_types[..]), writer)
            .unwrap();
        // The server stamps its fields without touching the CRC.
        stamp_server_fields(&mut bytes, 1_000, 1_700_000_000_000, 3);

        let batch = LogBatch::parse(&bytes).unwrap();
        prop_assert_eq!(batch.len(), bytes.len());
        prop_assert_eq!(batch.base_offset(), 1_000);
        prop_assert_eq!(batch.offset_count(), rows.max(1) as u64);
        prop_assert_eq!(batch.record_count() as usize, rows);
        prop_assert_eq!(batch.commit_timestamp(), 1_700_000_000_000);
        prop_assert_eq!(batch.header().writer_id.get(), writer.writer_id);
        prop_assert_eq!(batch.attributes().compression(), Some(compression));
        prop_assert_eq!(batch.statistics().unwrap().len(), statistics_columns.len());
        batch.check_schema(&batch_schema).unwrap();

        // Decoding is zero-copy from an aligned buffer, and still right from a misaligned one
        // (one deliberate copy).
        let mut misaligned = vec![0u8; 1];
        misaligned.extend_from_slice(&bytes);
        let misaligned = Buffer::from_vec(misaligned).slice(1);
        let decoder = BatchDecoder::new(batch_schema);
        prop_assert_eq!(&decoder.decode(&misaligned).unwrap().record_batch, &record_batch);
        let buffer = ufer_wire::aligned_copy(&bytes);
        let decoded = decoder.decode(&buffer).unwrap();
        prop_assert_eq!(&decoded.record_batch, &record_batch);
        prop_assert_eq!(decoded.base_offset(), 1_000);
        for (row, change_type) in change_types.iter().enumerate() {
            let expected = if with_change_types { *change_type } else { ChangeType::AppendOnly };
            prop_assert_eq!(decoded.change_type(row), expected);
        }
        if compression == Compression::None {
            let start = buffer.as_ptr() as usize;
            let range = start..start + buffer.len();
            let mut buffers = Vec::new();
            for column in decoded.record_batch.columns() {
                support::leaf_buffers(&column.to_data(), &mut buffers);
            }
            for (pointer, len) in buffers {
                prop_assert!(
                    range.contains(&pointer) && pointer + len <= range.end,
                    "column buffer at {pointer:#x} was copied out of the batch"
                );
            }
        }
    }

    #[test]
    fn statistics_describe_the_rows(
        rows in 1usize..100,
        seed in any::<u64>(),
    ) {
        let schema = arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("n", arrow_schema::DataType::Int64, true),
        ]);
        let record_batch = support::record_batch(&schema, rows, seed);
        let column = record_batch.column(0).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        let batch_schema = BatchSchema::new(1, Arc::new(schema)).unwrap();
        let options = BatchOptions { compression: Compression::None, statistics_columns: vec![0] };
        let bytes = LogBatchBuilder::new(batch_schema, options)
            .unwrap()
            .build(&record_batch, None, WriterStamp::NONE)
            .unwrap();
        let statistics = LogBatch::parse(&bytes).unwrap().statistics().unwrap();
        prop_assert_eq!(statistics[0].null_count as usize, column.null_count());
        let values: Vec<i64> = column.iter().flatten().collect();
        match (&statistics[0].bounds, values.iter().min(), values.iter().max()) {
            (Some((min, max)), Some(low), Some(high)) => {
                prop_assert_eq!(i64::from_le_bytes(min[..].try_into().unwrap()), *low);
                prop_assert_eq!(i64::from_le_bytes(max[..].try_into().unwrap()), *high);
            }
            (None, None, None) => {}
            other => prop_assert!(false, "bounds disagree: {other:?}"),
        }
    }
}

/// Proptest cases: `default` normally, scaled by `UFER_PROPTEST_MULTIPLIER` for long runs.
fn support_cases(default: u32) -> u32 {
    let multiplier = std::env::var("UFER_PROPTEST_MULTIPLIER")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .unwrap_or(1);
    default * multiplier.max(1)
}

#[test]
fn batches_laid_back_to_back_stay_aligned() {
    let schema = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "s",
        arrow_schema::DataType::Utf8,
        false,
    )]);
    let batch_schema = BatchSchema::new(1, Arc::new(schema.clone())).unwrap();
    let mut builder = LogBatchBuilder::new(batch_schema.clone(), BatchOptions::default()).unwrap();
    let mut out = Vec::new();
    for rows in [1, 7, 0, 33] {
        let record_batch = support::record_batch(&schema, rows, rows as u64);
        builder.build_into(&record_batch, None, WriterStamp::NONE, &mut out).unwrap();
    }
    let decoder = BatchDecoder::new(batch_schema);
    let whole = ufer_wire::aligned_copy(&out);
    let mut at = 0;
    let mut seen = Vec::new();
    while at < whole.len() {
        let batch_length = LogBatch::parse(&whole.as_slice()[at..]).unwrap().len();
        let slice = whole.slice_with_length(at, batch_length);
        assert_eq!(slice.as_ptr() as usize % ufer_wire::BATCH_ALIGNMENT_BYTES, 0);
        seen.push(decoder.decode(&slice).unwrap().record_batch.num_rows());
        at += batch_length;
    }
    assert_eq!(seen, vec![1, 7, 0, 33]);
}
