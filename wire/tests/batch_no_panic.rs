//! Property: no byte string makes a batch decoder panic. Arbitrary bytes, and valid batches
//! with bytes flipped, overwritten or cut — with the CRC recomputed afterwards, so that the
//! mutation reaches the metadata and column parsers behind the checksum — give `Ok` or a
//! typed error from every entry point: parse, schema check, decode (full and projected),
//! server projection and the prefix-size probe.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use ufer_wire::header::{compute_crc, set_crc};
use ufer_wire::{
    aligned_copy, check_header, project, required_prefix_size, BatchDecoder, BatchOptions,
    BatchSchema, ChangeType, Compression, LogBatch, LogBatchBuilder, Projection, WriterStamp,
    BATCH_HEADER_SIZE_BYTES,
};

fn cases(default: u32) -> u32 {
    let multiplier = std::env::var("UFER_PROPTEST_MULTIPLIER")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .unwrap_or(1);
    default * multiplier.max(1)
}

/// Runs every entry point; only a panic fails.
fn exercise(bytes: &[u8], schema: &BatchSchema) {
    let _ = check_header(bytes);
    let _ = required_prefix_size(bytes);
    if let Ok(batch) = LogBatch::parse(bytes) {
        let _ = batch.check_schema(schema);
        let _ = batch.statistics();
        let _ = batch.change_types().count();
    }
    let buffer = aligned_copy(bytes);
    let _ = BatchDecoder::new(schema.clone()).decode(&buffer);
    let field_count = schema.arrow().fields().len();
    let columns: Vec<usize> = (0..field_count).step_by(2).collect();
    if let Ok(decoder) = BatchDecoder::with_projection(schema.clone(), columns.clone()) {
        let _ = decoder.decode(&buffer);
    }
    let projection = Projection::new(schema.clone(), &columns).unwrap();
    if let Ok(projected) = project(bytes, &projection) {
        if projected.body_ranges().iter().all(|range| range.end <= bytes.len()) {
            let assembled = projected.assemble(bytes);
            let _ = BatchDecoder::new(projection.projected_schema().clone())
                .decode(&aligned_copy(&assembled));
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: prop::sample::Index, bit: u8 },
    Set { at: prop::sample::Index, value: u8 },
    SetWord { at: prop::sample::Index, value: u64 },
    Truncate { at: prop::sample::Index },
    Extend { bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        4 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        3 => (any::<prop::sample::Index>(), any::<u64>()).prop_map(|(at, value)| Mutation::SetWord { at, value }),
        1 => any::<prop::sample::Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(|bytes| Mutation::Extend { bytes }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match mutation {
        Mutation::Flip { at, bit } => bytes[at.index(len)] ^= 1 << bit,
        Mutation::Set { at, value } => bytes[at.index(len)] = *value,
        Mutation::SetWord { at, value } => {
            let at = at.index(bytes.len());
            let end = (at + 8).min(bytes.len());
            bytes[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
        }
        Mutation::Truncate { at } => bytes.truncate(at.index(bytes.len())),
        Mutation::Extend { bytes: extra } => bytes.extend_from_slice(extra),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        schema in support::schema(4),
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        look_like_a_header in any::<bool>(),
    ) {
        let schema = BatchSchema::new(1, Arc::new(schema)).unwrap();
        let mut bytes = bytes;
        if look_like_a_header && bytes.len() >= BATCH_HEADER_SIZE_BYTES {
            // Magic and a plausible length, so the bytes get past the first checks.
            bytes[12] = ufer_wire::header::BATCH_MAGIC_V1;
            let length = (bytes.len() / 64 * 64) as u32;
            bytes[8..12].copy_from_slice(&length.to_le_bytes());
            let crc = compute_crc(&bytes[..length.max(56) as usize]);
            set_crc(&mut bytes, crc);
        }
        exercise(&bytes, &schema);
    }

    #[test]
    fn mutated_batches_never_panic(
        schema in support::schema(5),
        rows in 0usize..40,
        seed in any::<u64>(),
        compression in prop_oneof![Just(Compression::None), Just(Compression::Lz4Frame), Just(Compression::Zstd)],
        mutations in prop::collection::vec(mutation(), 1..4),
        only_after_header in any::<bool>(),
        fix_crc in any::<bool>(),
    ) {
        let record_batch = support::record_batch(&schema, rows, seed);
        let schema = BatchSchema::new(1, Arc::new(schema)).unwrap();
        let options = BatchOptions { compression, statistics_columns: vec![] };
        let change_types = vec![ChangeType::Insert; rows];
        let original = LogBatchBuilder::new(schema.clone(), options)
            .unwrap()
            .build(&record_batch, Some(&change_types), WriterStamp::NONE)
            .unwrap();
        let mut bytes = original.clone();
        if only_after_header {
            let mut tail = bytes.split_off(BATCH_HEADER_SIZE_BYTES);
            for mutation in &mutations {
                apply(&mut tail, mutation);
            }
            bytes.extend_from_slice(&tail);
            // Keep the length field consistent with what is there, when it can be.
            let length = (bytes.len() / 64 * 64) as u32;
            bytes[8..12].copy_from_slice(&length.to_le_bytes());
        } else {
            for mutation in &mutations {
                apply(&mut bytes, mutation);
            }
        }
        if fix_crc && bytes.len() >= BATCH_HEADER_SIZE_BYTES {
            let length = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
            let crc = compute_crc(&bytes[..length.clamp(BATCH_HEADER_SIZE_BYTES, bytes.len())]);
            set_crc(&mut bytes, crc);
        }
        exercise(&bytes, &schema);
    }
}
