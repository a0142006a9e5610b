//! Bad batches are refused with typed errors that name the problem, and leave the log as it
//! was: malformed bytes, a CRC mismatch, a wrong schema id, an oversized batch, a projected
//! batch, bytes after the batch.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use ufer_shard::{AppendError, LogConfig, ManualClock};
use ufer_wire::{BatchError, BatchSchema, Projection};

#[test]
fn bad_batches_are_refused_and_the_log_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        let schema = support::schema();
        let mut good = support::batch(0, 3);
        tablet.append_durable(&mut good, &schema).await.unwrap();

        let mut garbage = vec![0x5Au8; 300];
        let error = tablet.append(&mut garbage, &schema).await.unwrap_err();
        assert!(matches!(error, AppendError::InvalidBatch(BatchError::BadMagic { .. })), "{error}");

        let mut flipped = support::batch(3, 3);
        let at = flipped.len() - 70;
        flipped[at] ^= 1;
        let error = tablet.append(&mut flipped, &schema).await.unwrap_err();
        assert!(
            matches!(error, AppendError::InvalidBatch(BatchError::CrcMismatch { .. })),
            "{error}"
        );

        let other_schema =
            BatchSchema::new(9, Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)])))
                .unwrap();
        let mut batch = support::batch(3, 3);
        let error = tablet.append(&mut batch, &other_schema).await.unwrap_err();
        assert!(error.to_string().contains("schema id 1, expected 9"), "{error}");

        let same_id_other_shape =
            BatchSchema::new(1, Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)])))
                .unwrap();
        let error = tablet.append(&mut batch, &same_id_other_shape).await.unwrap_err();
        assert!(
            matches!(error, AppendError::InvalidBatch(BatchError::SchemaMismatch(_))),
            "{error}"
        );

        let mut huge = support::batch(3, 200_000);
        let error = tablet.append(&mut huge, &schema).await.unwrap_err();
        assert!(matches!(error, AppendError::TooLarge { .. }), "{error}");

        let projection = Projection::new(schema.clone(), &[0]).unwrap();
        let mut projected = ufer_wire::project_batch(&support::batch(3, 3), &projection).unwrap();
        let error = tablet
            .append(&mut projected, &projection.projected_schema().clone())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("projected"), "{error}");

        let mut trailing = support::batch(3, 3);
        trailing.extend_from_slice(&[0; 64]);
        let error = tablet.append(&mut trailing, &schema).await.unwrap_err();
        assert!(error.to_string().contains("bytes follow the batch"), "{error}");

        assert_eq!(tablet.log_end_offset(), 3);
        assert_eq!(tablet.high_watermark(), 3);
        let mut next = support::batch(3, 2);
        assert_eq!(tablet.append_durable(&mut next, &schema).await.unwrap().base_offset, 3);
        assert_eq!(support::read_ids(&tablet, 0, 1 << 20).await.len(), 5);
    });
}
