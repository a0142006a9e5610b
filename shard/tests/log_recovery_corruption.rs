//! Recovery and damaged files: a torn tail or a flipped bit in the active segment is cut
//! off; a flipped bit in a sealed segment's body is a typed corruption error when read; a
//! missing, truncated or garbage index is rebuilt; nothing panics and appends continue.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ufer_shard::{LogConfig, LogTablet, ManualClock, ReadError, ReadRequest};

/// Fills a log in `path` with `batches` batches of 4 rows; returns the high watermark.
async fn fill(path: &std::path::Path, batches: i64) -> u64 {
    let clock = ManualClock::new(1_000);
    let tablet = support::open(path, LogConfig::test_min(), &clock).await;
    let schema = support::schema();
    for index in 0..batches {
        let mut batch = support::batch(index * 4, 4);
        tablet.append_durable(&mut batch, &schema).await.unwrap();
        clock.advance(5);
    }
    tablet.high_watermark()
}

async fn reopen(path: &std::path::Path) -> LogTablet {
    support::open(path, LogConfig::test_min(), &ManualClock::new(10_000)).await
}

fn in_tempdir<F, Fut>(body: F)
where
    F: FnOnce(std::path::PathBuf) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || body(path));
}

#[test]
fn a_torn_tail_is_cut_and_appends_continue_there() {
    in_tempdir(|path| async move {
        let hw = fill(&path, 20).await;
        let (_, active) = support::segment_files(&path).pop().unwrap();
        let batches = support::batches_in(&active);
        let (position, length, last_base) = *batches.last().unwrap();
        // A crash in the middle of writing the last batch.
        let file = std::fs::OpenOptions::new().write(true).open(&active).unwrap();
        file.set_len((position + length / 2) as u64).unwrap();
        drop(file);

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), last_base);
        assert!(hw > last_base);
        assert_eq!(
            std::fs::metadata(&active).unwrap().len(),
            position as u64,
            "torn bytes are gone"
        );
        let rows = support::read_ids(&tablet, 0, 1 << 20).await;
        assert_eq!(rows.len() as u64, last_base);
        let mut batch = support::batch(1_000_000, 2);
        let appended = tablet.append_durable(&mut batch, &support::schema()).await.unwrap();
        assert_eq!(appended.base_offset, last_base);
    });
}

#[test]
fn a_flipped_bit_in_the_active_segment_cuts_the_log_before_that_batch() {
    in_tempdir(|path| async move {
        fill(&path, 20).await;
        let (_, active) = support::segment_files(&path).pop().unwrap();
        let batches = support::batches_in(&active);
        assert!(batches.len() >= 3, "need a middle batch, got {}", batches.len());
        let (position, length, base) = batches[1];
        support::flip_bit(&active, position + length - 100);

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), base);
        assert_eq!(std::fs::metadata(&active).unwrap().len(), position as u64);
        assert_eq!(support::read_ids(&tablet, 0, 1 << 20).await.len() as u64, base);
    });
}

#[test]
fn a_flipped_bit_in_a_sealed_segment_is_a_corruption_error_for_that_batch_only() {
    in_tempdir(|path| async move {
        let hw = fill(&path, 30).await;
        let segments = support::segment_files(&path);
        assert!(segments.len() >= 3);
        let (_, sealed) = &segments[1];
        let batches = support::batches_in(sealed);
        let (position, length, base) = batches[batches.len() - 1];
        support::flip_bit(sealed, position + length - 64);

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), hw, "sealed segments are trusted through their index");
        match tablet.read(ReadRequest::new(base, 1 << 20)).await {
            Err(ReadError::Corrupt { path: bad, position: at, .. }) => {
                assert_eq!(&bad, sealed);
                assert_eq!(at, position as u64);
            }
            other => panic!("expected a corruption error, got {other:?}"),
        }
        // Everything before it and after it still reads.
        let before = tablet.read(ReadRequest::new(0, 1)).await.unwrap();
        assert!(!before.chunks.is_empty());
        let after = support::read_ids(&tablet, base + 4, 1 << 20).await;
        assert_eq!(after.len() as u64, hw - base - 4);
    });
}

#[test]
fn missing_truncated_or_garbage_indexes_are_rebuilt() {
    in_tempdir(|path| async move {
        let hw = fill(&path, 30).await;
        let expected = {
            let tablet = reopen(&path).await;
            support::read_ids(&tablet, 0, 1 << 20).await
        };
        let segments = support::segment_files(&path);
        let index = |base: u64, extension: &str| path.join(format!("{base:020}.{extension}"));
        std::fs::remove_file(index(segments[0].0, "index")).unwrap();
        let truncated = std::fs::read(index(segments[1].0, "timeindex")).unwrap();
        std::fs::write(index(segments[1].0, "timeindex"), &truncated[..truncated.len() - 3])
            .unwrap();
        std::fs::write(index(segments[2].0, "index"), b"definitely not an index").unwrap();

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), hw);
        assert_eq!(support::read_ids(&tablet, 0, 1 << 20).await, expected);
        assert_eq!(support::read_ids(&tablet, 0, 1).await, expected);
        // The rebuilt files are whole again.
        for (base, _) in &segments[..3] {
            let offsets = std::fs::read(index(*base, "index")).unwrap();
            let times = std::fs::read(index(*base, "timeindex")).unwrap();
            ufer_shard::log::index::SegmentIndex::decode(*base, &offsets, &times).unwrap();
        }
    });
}

#[test]
fn a_damaged_header_in_a_sealed_segment_without_index_leaves_a_reported_gap() {
    in_tempdir(|path| async move {
        let hw = fill(&path, 30).await;
        let segments = support::segment_files(&path);
        let (base, sealed) = &segments[1];
        let batches = support::batches_in(sealed);
        let (position, _, lost_from) = batches[1];
        // Break the magic byte of the second batch and the index that would have vouched
        // for the segment.
        support::flip_bit(sealed, position + 12);
        std::fs::remove_file(path.join(format!("{base:020}.index"))).unwrap();

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), hw);
        assert!(matches!(
            tablet.read(ReadRequest::new(lost_from, 1 << 20)).await,
            Err(ReadError::Corrupt { .. })
        ));
        assert!(!tablet.read(ReadRequest::new(*base, 1)).await.unwrap().chunks.is_empty());
        let next_segment = segments[2].0;
        assert_eq!(
            support::read_ids(&tablet, next_segment, 1 << 20).await.len() as u64,
            hw - next_segment
        );
    });
}

#[test]
fn a_crash_after_sealing_but_before_the_next_segment_exists_recovers_by_scanning() {
    in_tempdir(|path| async move {
        let hw = fill(&path, 12).await;
        // The last segment has index files, as if the process died right after sealing it.
        let (base, _) = support::segment_files(&path).pop().unwrap();
        std::fs::write(path.join(format!("{base:020}.index")), b"stale").unwrap();
        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), hw);
        assert!(
            !path.join(format!("{base:020}.index")).exists(),
            "stale index of the active segment removed"
        );
        assert_eq!(support::read_ids(&tablet, 0, 1 << 20).await.len() as u64, hw);
    });
}
