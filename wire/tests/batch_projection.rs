//! Property: projecting a stored batch by rewriting its metadata gives a valid batch that
//! decodes to exactly the chosen columns of the original, compressed or not, nested or not,
//! from only the batch's leading bytes plus the returned byte ranges.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use ufer_wire::{
    aligned_copy, project, required_prefix_size, BatchDecoder, BatchOptions, BatchSchema,
    ChangeType, Compression, LogBatch, LogBatchBuilder, Projection, WriterStamp,
};

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![Just(Compression::None), Just(Compression::Lz4Frame), Just(Compression::Zstd)]
}

fn cases(default: u32) -> u32 {
    let multiplier = std::env::var("UFER_PROPTEST_MULTIPLIER")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .unwrap_or(1);
    default * multiplier.max(1)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(96), ..ProptestConfig::default() })]

    #[test]
    fn projected_batches_decode_to_the_chosen_columns(
        schema in support::schema(7),
        rows in 0usize..150,
        seed in any::<u64>(),
        compression in compression(),
        with_change_types in any::<bool>(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        let record_batch = support::record_batch(&schema, rows, seed);
        let batch_schema = BatchSchema::new(3, Arc::new(schema.clone())).unwrap();
        let options = BatchOptions { compression, statistics_columns: vec![] };
        let change_types: Vec<ChangeType> =
            (0..rows).map(|row| ChangeType::ALL[row % 5]).collect();
        let original = LogBatchBuilder::new(batch_schema.clone(), options)
            .unwrap()
            .build(&record_batch, with_change_types.then_some(&change_types[..]), WriterStamp::NONE)
            .unwrap();
        let columns: Vec<usize> =
            picks.iter().map(|pick| pick.index(schema.fields().len())).collect();
        let projection = Projection::new(batch_schema, &columns).unwrap();

        // Only the leading bytes the projection asks for are given to it.
        let mut prefix_len = 64;
        loop {
            let needed = required_prefix_size(&original[..prefix_len.min(original.len())]).unwrap();
            if needed <= prefix_len { break; }
            prefix_len = needed;
        }
        let mut projected = project(&original[..prefix_len], &projection).unwrap();
        let ranges = projected.body_ranges().to_vec();
        for range in &ranges {
            prop_assert!(range.start >= prefix_len || range.end <= original.len());
        }
        projected.seal(ranges.iter().map(|range| &original[range.clone()]));
        let mut bytes = projected.head().to_vec();
        for range in &ranges {
            bytes.extend_from_slice(&original[range.clone()]);
        }

        let batch = LogBatch::parse(&bytes).unwrap();
        prop_assert!(batch.attributes().is_projected());
        prop_assert_eq!(batch.record_count() as usize, rows);
        prop_assert_eq!(batch.len() % ufer_wire::BATCH_ALIGNMENT_BYTES, 0);
        let decoded = BatchDecoder::new(projection.projected_schema().clone())
            .decode(&aligned_copy(&bytes))
            .unwrap();
        let expected = record_batch.project(projection.columns()).unwrap();
        prop_assert_eq!(&decoded.record_batch, &expected);
        for (row, change_type) in change_types.iter().enumerate() {
            let expected = if with_change_types { *change_type } else { ChangeType::AppendOnly };
            prop_assert_eq!(decoded.change_type(row), expected);
        }

        // Client-side projection of the full batch agrees.
        let client = BatchDecoder::with_projection(
            BatchSchema::new(3, Arc::new(schema)).unwrap(),
            projection.columns().to_vec(),
        )
        .unwrap();
        prop_assert_eq!(&client.decode(&aligned_copy(&original)).unwrap().record_batch, &expected);
    }
}

#[test]
fn projecting_two_of_twenty_columns_sends_a_tenth_of_the_bytes() {
    use arrow_schema::{DataType, Field, Schema};
    let schema = Schema::new(
        (0..20)
            .map(|index| Field::new(format!("c{index}"), DataType::Int64, false))
            .collect::<Vec<_>>(),
    );
    let record_batch = support::record_batch(&schema, 10_000, 1);
    let batch_schema = BatchSchema::new(1, Arc::new(schema)).unwrap();
    let original = LogBatchBuilder::new(batch_schema.clone(), BatchOptions::default())
        .unwrap()
        .build(&record_batch, None, WriterStamp::NONE)
        .unwrap();
    let projection = Projection::new(batch_schema, &[3, 17]).unwrap();
    let projected = project(&original, &projection).unwrap();
    let body: usize = projected.body_ranges().iter().map(|range| range.len()).sum();
    assert_eq!(body, 2 * 10_000 * 8, "exactly the two columns' values");
    assert!(projected.len() * 9 < original.len());
}

#[test]
fn projection_rejects_unknown_columns_and_other_schemas() {
    use arrow_schema::{DataType, Field, Schema};
    let schema = Schema::new(vec![Field::new("a", DataType::Int32, true)]);
    let batch_schema = BatchSchema::new(1, Arc::new(schema.clone())).unwrap();
    assert!(Projection::new(batch_schema.clone(), &[1]).is_err());
    let original = LogBatchBuilder::new(batch_schema, BatchOptions::default())
        .unwrap()
        .build(&support::record_batch(&schema, 3, 1), None, WriterStamp::NONE)
        .unwrap();
    let other = BatchSchema::new(2, Arc::new(schema)).unwrap();
    let projection = Projection::new(other, &[0]).unwrap();
    assert!(matches!(
        project(&original, &projection),
        Err(ufer_wire::BatchError::SchemaMismatch(_))
    ));
}
