//! Retention deletes whole sealed segments only, oldest first, by size and by age; the log
//! start offset moves with it; the active segment is never deleted.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use ufer_shard::{LogConfig, ManualClock, OffsetSpec, ReadError, ReadRequest};

#[test]
fn size_retention_deletes_whole_sealed_segments_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let mut config = LogConfig::test_min();
        config.retention_size_max_bytes = Some(10_000);
        let tablet = support::open(&path, config.clone(), &clock).await;
        let schema = support::schema();
        for index in 0..60 {
            let mut batch = support::batch(index * 4, 4);
            tablet.append_durable(&mut batch, &schema).await.unwrap();
        }
        let hw = tablet.high_watermark();
        let segments_before = support::segment_files(&path);
        let size_before = tablet.size_bytes();
        assert!(size_before > 10_000);
        let outcome = tablet.apply_retention().await.unwrap();
        assert!(outcome.deleted_segments > 0);
        assert!(tablet.size_bytes() <= 10_000);
        assert_eq!(tablet.size_bytes(), size_before - outcome.deleted_bytes);
        // Exactly the oldest files went, whole.
        let segments_after = support::segment_files(&path);
        assert_eq!(segments_after[..], segments_before[outcome.deleted_segments..]);
        let start = segments_after[0].0;
        assert_eq!(tablet.log_start_offset(), start);
        assert_eq!(tablet.list_offsets(OffsetSpec::Earliest).await.unwrap(), start);
        let read = tablet.read(ReadRequest::new(0, 1024)).await;
        assert!(
            matches!(read, Err(ReadError::OffsetOutOfRange { earliest, .. }) if earliest == start)
        );
        assert_eq!(support::read_ids(&tablet, start, 1 << 20).await.len() as u64, hw - start);
        assert!(!path.join(format!("{:020}.index", segments_before[0].0)).exists());

        // Even a limit of zero keeps the active segment.
        drop(tablet);
        config.retention_size_max_bytes = Some(0);
        let tablet = support::open(&path, config, &clock).await;
        tablet.apply_retention().await.unwrap();
        assert_eq!(tablet.segment_count(), 1);
        assert_eq!(tablet.high_watermark(), hw);
    });
}

#[test]
fn age_retention_deletes_segments_whose_newest_batch_is_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000_000);
        let mut config = LogConfig::test_min();
        config.retention_age_max = Some(Duration::from_secs(60));
        let tablet = support::open(&path, config, &clock).await;
        let schema = support::schema();
        for index in 0..40 {
            let mut batch = support::batch(index * 4, 4);
            tablet.append_durable(&mut batch, &schema).await.unwrap();
            clock.advance(3_000);
        }
        let segments = tablet.segment_count();
        assert!(segments > 3);
        // Now: 1_120_000. Retention keeps batches committed after 1_060_000 (index >= 20).
        let outcome = tablet.apply_retention().await.unwrap();
        assert!(outcome.deleted_segments > 0 && outcome.deleted_segments < segments);
        let start = tablet.log_start_offset();
        let first_kept = support::read_ids(&tablet, start, 1).await;
        assert!(first_kept[0].1 <= 20 * 4, "segments holding young batches are kept");
        clock.advance(1_000_000);
        tablet.apply_retention().await.unwrap();
        assert_eq!(tablet.segment_count(), 1, "all sealed segments aged out, the active one stays");
    });
}

#[test]
fn the_lake_floor_keeps_segments_not_yet_tiered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let mut config = LogConfig::test_min();
        config.retention_size_max_bytes = Some(0);
        let tablet = support::open(&path, config, &clock).await;
        let schema = support::schema();
        for index in 0..60 {
            let mut batch = support::batch(index * 4, 4);
            tablet.append_durable(&mut batch, &schema).await.unwrap();
        }
        let segments = support::segment_files(&path);
        assert!(segments.len() > 3);
        // Nothing tiered yet: nothing may go.
        tablet.set_lake_floor(0);
        assert_eq!(tablet.apply_retention().await.unwrap().deleted_segments, 0);
        // Tiered up to the middle of the third segment: the first two may go, no more.
        let floor = segments[2].0 + 1;
        tablet.set_lake_floor(floor);
        assert_eq!(tablet.apply_retention().await.unwrap().deleted_segments, 2);
        assert_eq!(tablet.log_start_offset(), segments[2].0);
        // The lower of the two floors wins.
        tablet.set_retention_floor(segments[2].0);
        tablet.set_lake_floor(u64::MAX);
        assert_eq!(tablet.apply_retention().await.unwrap().deleted_segments, 0);
        tablet.set_retention_floor(u64::MAX);
        tablet.apply_retention().await.unwrap();
        assert_eq!(tablet.segment_count(), 1);
    });
}
