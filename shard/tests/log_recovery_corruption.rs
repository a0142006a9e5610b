//! Recovery and damaged files: a torn tail of the active segment (damage with no valid batch
//! after it) is cut off; damage followed by valid batches — a flipped bit in a batch's body
//! or header in the middle of a segment, active or sealed — is corruption: nothing is cut,
//! the damaged offsets are reported and fail reads with a typed error, every batch around
//! them still reads; a flipped bit in a sealed segment's body is a typed corruption error
//! when read; a missing, truncated or garbage index is rebuilt; nothing panics and appends
//! continue.

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

/// Damages batch 1 of the active segment of a 20-batch log with `damage(position, length)`;
/// after the reopen the log must keep every acknowledged batch: the damaged one's offsets
/// are reported and fail reads, the others read, appends continue at the old end.
fn damage_in_the_middle_of_the_active_segment(damage: fn(&std::path::Path, usize, usize)) {
    in_tempdir(move |path| async move {
        let hw = fill(&path, 20).await;
        let (_, active) = support::segment_files(&path).pop().unwrap();
        let batches = support::batches_in(&active);
        let (last_position, last_length, _) = *batches.last().unwrap();
        let data_end = (last_position + last_length) as u64;
        assert!(batches.len() >= 3, "need a middle batch, got {}", batches.len());
        let (position, length, base) = batches[1];
        let (_, _, next_base) = batches[2];
        damage(&active, position, length);

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), hw, "no acknowledged batch after the damage is cut");
        assert!(std::fs::metadata(&active).unwrap().len() >= data_end, "nothing cut");
        let damaged = tablet.damaged_ranges();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert_eq!(damaged[0].offsets, base..next_base);
        assert_eq!(damaged[0].positions, position as u64..(position + length) as u64);
        match tablet.read(ReadRequest::new(base, 1 << 20)).await {
            Err(ReadError::Corrupt { reason, .. }) => {
                assert!(
                    reason.contains(&format!("{next_base}")),
                    "says where reads resume: {reason}"
                );
            }
            other => panic!("the damaged offsets must fail with a corruption error: {other:?}"),
        }
        // Reads from the start stop before the damage with what they read.
        let mut offset = 0;
        while let Ok(read) = tablet.read(ReadRequest::new(offset, 1 << 20)).await {
            assert!(!read.chunks.is_empty() && read.next_offset <= base, "stops at the damage");
            offset = read.next_offset;
        }
        assert_eq!(offset, base, "everything before the damage reads");
        let after = support::read_ids(&tablet, next_base, 1 << 20).await;
        assert_eq!(after.len() as u64, hw - next_base, "every batch after the damage reads");
        let mut batch = support::batch(1_000_000, 2);
        let appended = tablet.append_durable(&mut batch, &support::schema()).await.unwrap();
        assert_eq!(appended.base_offset, hw);
        drop(tablet);
        // The same after another start, and the range is still reported.
        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), hw + 2);
        assert_eq!(tablet.damaged_ranges(), damaged);
        let after = support::read_ids(&tablet, next_base, 1 << 20).await;
        assert_eq!(after.len() as u64, hw + 2 - next_base);
    });
}

#[test]
fn a_flipped_bit_in_the_body_of_a_batch_in_the_middle_of_the_active_segment_cuts_nothing() {
    damage_in_the_middle_of_the_active_segment(|file, position, length| {
        support::flip_bit(file, position + length - 100);
    });
}

#[test]
fn a_damaged_header_in_the_middle_of_the_active_segment_cuts_nothing() {
    damage_in_the_middle_of_the_active_segment(|file, position, _| {
        // The magic byte and the length: the scan cannot know where the batch ends.
        support::flip_bit(file, position + 12);
        support::flip_bit(file, position + 9);
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
fn a_damaged_header_in_a_sealed_segment_without_index_is_a_reported_range() {
    in_tempdir(|path| async move {
        let hw = fill(&path, 30).await;
        let segments = support::segment_files(&path);
        let (base, sealed) = &segments[1];
        let batches = support::batches_in(sealed);
        assert!(batches.len() >= 3, "need a batch after the damaged one");
        let (position, length, lost_from) = batches[1];
        let (_, _, resumes_at) = batches[2];
        // Break the magic byte of the second batch and the index that would have vouched
        // for the segment.
        support::flip_bit(sealed, position + 12);
        std::fs::remove_file(path.join(format!("{base:020}.index"))).unwrap();

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), hw);
        let damaged = tablet.damaged_ranges();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert_eq!(damaged[0].offsets, lost_from..resumes_at);
        assert_eq!(damaged[0].positions, position as u64..(position + length) as u64);
        assert!(matches!(
            tablet.read(ReadRequest::new(lost_from, 1 << 20)).await,
            Err(ReadError::Corrupt { .. })
        ));
        assert!(!tablet.read(ReadRequest::new(*base, 1)).await.unwrap().chunks.is_empty());
        // The rest of the damaged segment, and every later one, reads.
        assert_eq!(
            support::read_ids(&tablet, resumes_at, 1 << 20).await.len() as u64,
            hw - resumes_at
        );
        drop(tablet);
        // Re-indexed: the next start trusts the index and still reports the range.
        assert!(path.join(format!("{base:020}.index")).exists());
        let tablet = reopen(&path).await;
        assert_eq!(tablet.damaged_ranges(), damaged);
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

#[test]
fn a_damaged_column_of_a_large_batch_is_never_served_by_a_projected_read() {
    in_tempdir(|path| async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        let schema = support::schema();
        // Large enough to be projected by reading only the chosen columns' bytes.
        let mut batch = support::batch(0, 20_000);
        assert!(batch.len() > 256 * 1024, "{} bytes", batch.len());
        tablet.append_durable(&mut batch, &schema).await.unwrap();
        // The next append seals the large batch's segment (trusted through its index).
        tablet.append_durable(&mut support::batch(20_000, 4), &schema).await.unwrap();
        drop(tablet);
        let segments = support::segment_files(&path);
        assert!(segments.len() >= 2, "the large batch's segment is sealed");
        let (_, file) = segments[0].clone();
        let (position, length, _) = support::batches_in(&file)[0];
        // A bit in the values of the last column, `n`.
        support::flip_bit(&file, position + length - 200);

        let tablet = reopen(&path).await;
        let projection = ufer_wire::Projection::new(schema.clone(), &[2]).unwrap();
        // From disk, not from a cache of what was appended.
        match tablet.read(ReadRequest::new(0, 1 << 30).projected(&projection)).await {
            Err(ReadError::Corrupt { .. }) => {}
            Ok(read) => panic!(
                "a damaged column was served with a fresh checksum ({} chunks)",
                read.chunks.len()
            ),
            Err(other) => panic!("expected a corruption error, got {other:?}"),
        }
    });
}

#[test]
fn a_batch_hidden_in_a_torn_batchs_payload_is_never_taken_for_a_real_one() {
    use std::sync::Arc;

    use arrow_array::{BinaryArray, Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use ufer_wire::{BatchOptions, BatchSchema, LogBatchBuilder, WriterStamp};

    in_tempdir(|path| async move {
        let schema = BatchSchema::new(
            1,
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("payload", DataType::Binary, true),
            ])),
        )
        .unwrap();
        let build = |id: i64, payload: &[u8]| {
            let rows = RecordBatch::try_new(
                schema.arrow().clone(),
                vec![
                    Arc::new(Int64Array::from(vec![id])),
                    Arc::new(BinaryArray::from(vec![payload])),
                ],
            )
            .unwrap();
            let mut builder =
                LogBatchBuilder::new(schema.clone(), BatchOptions::default()).unwrap();
            builder.build(&rows, None, WriterStamp::NONE).unwrap()
        };
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        tablet.append_durable(&mut build(0, b"honest"), &schema).await.unwrap();
        // A valid batch claiming offsets far ahead, and a timestamp in the future, as a
        // client's payload: base offset and timestamp are outside the CRC.
        let mut fake = build(666, b"forged");
        fake[..8].copy_from_slice(&1_000_000u64.to_le_bytes());
        fake[13..21].copy_from_slice(&i64::MAX.to_le_bytes());
        let mut payload = fake.clone();
        payload.resize(fake.len() + 64 * 1024, 0);
        tablet.append_durable(&mut build(1, &payload), &schema).await.unwrap();
        drop(tablet);
        let (_, file) = support::segment_files(&path).pop().unwrap();
        let batches = support::batches_in(&file);
        let (position, length, _) = batches[batches.len() - 1];
        let bytes = std::fs::read(&file).unwrap();
        let hidden = bytes.windows(fake.len()).position(|window| window == &fake[..]).unwrap();
        assert!(hidden > position && hidden % 64 == 0, "the payload lies batch-aligned");
        // A torn write: the hostile batch's last block never reached the disk.
        let file_handle = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        file_handle.set_len((position + length - 4096) as u64).unwrap();
        drop(file_handle);

        let tablet = reopen(&path).await;
        assert_eq!(tablet.high_watermark(), 1, "the torn batch is cut, nothing taken for a batch");
        assert!(tablet.damaged_ranges().is_empty());
    });
}
