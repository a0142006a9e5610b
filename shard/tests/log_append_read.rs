//! The log tablet on real files: appends across many segment rolls, reads from any offset
//! (inside batches too), projection, bounds, durability, reopening, time lookups.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::rc::Rc;

use arrow_array::Int64Array;
use ufer_shard::{LogConfig, ManualClock, OffsetSpec, ReadError, ReadRequest};
use ufer_wire::{aligned_copy, BatchDecoder, Projection};

#[test]
fn appends_across_rolls_read_back_from_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        let schema = support::schema();
        let mut next_id = 0i64;
        for round in 0..60 {
            let rows = 1 + (round * 7) % 23;
            let mut batch = support::batch(next_id, rows);
            let appended = tablet.append_durable(&mut batch, &schema).await.unwrap();
            assert_eq!(appended.base_offset, next_id as u64);
            assert_eq!(appended.last_offset, (next_id + rows as i64 - 1) as u64);
            next_id += rows as i64;
            clock.advance(10);
        }
        assert!(
            tablet.segment_count() > 5,
            "test_min segments roll often: {}",
            tablet.segment_count()
        );
        assert_eq!(tablet.high_watermark(), next_id as u64);
        assert_eq!(tablet.log_end_offset(), next_id as u64);

        let all: Vec<(u64, i64)> = (0..next_id).map(|id| (id as u64, id)).collect();
        assert_eq!(support::read_ids(&tablet, 0, 1).await, all, "one batch per read");
        assert_eq!(support::read_ids(&tablet, 0, 1 << 20).await, all, "large reads");
        for from in (0..next_id as u64).step_by(7) {
            let read = tablet.read(ReadRequest::new(from, 1)).await.unwrap();
            let (base, _) = support::batch_offsets(&read.chunks)[0];
            assert!(base <= from && from < read.next_offset, "batch containing {from}");
        }
        // Reopening gives the same bytes.
        let before = tablet.read(ReadRequest::new(0, 1 << 20)).await.unwrap();
        let before: Vec<Vec<u8>> =
            before.chunks.iter().map(|chunk| chunk.as_bytes().to_vec()).collect();
        drop(tablet);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        assert_eq!(tablet.high_watermark(), next_id as u64);
        let after = tablet.read(ReadRequest::new(0, 1 << 20)).await.unwrap();
        let after: Vec<Vec<u8>> =
            after.chunks.iter().map(|chunk| chunk.as_bytes().to_vec()).collect();
        assert_eq!(before, after);
        // And appends continue where they stopped.
        let mut batch = support::batch(next_id, 3);
        assert_eq!(
            tablet.append_durable(&mut batch, &schema).await.unwrap().base_offset,
            next_id as u64
        );
    });
}

#[test]
fn reads_are_bounded_by_the_high_watermark_and_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        let schema = support::schema();
        let read = tablet.read(ReadRequest::new(0, 1024)).await.unwrap();
        assert!(read.chunks.is_empty() && read.next_offset == 0, "an empty log reads nothing");
        let mut batch = support::batch(0, 5);
        tablet.append_durable(&mut batch, &schema).await.unwrap();
        assert!(matches!(
            tablet.read(ReadRequest::new(6, 1024)).await,
            Err(ReadError::OffsetOutOfRange { requested: 6, earliest: 0, high_watermark: 5 })
        ));
        assert!(tablet.read(ReadRequest::new(5, 1024)).await.unwrap().chunks.is_empty());

        // An append that is written but not yet durable is not readable.
        let mut batch = support::batch(5, 5);
        let appended = tablet.append(&mut batch, &schema).await.unwrap();
        assert_eq!(tablet.log_end_offset(), 10);
        assert_eq!(tablet.high_watermark(), 5);
        assert!(tablet.read(ReadRequest::new(5, 1024)).await.unwrap().chunks.is_empty());
        tablet.wait_durable(&appended).await.unwrap();
        assert_eq!(tablet.high_watermark(), 10);
        assert_eq!(
            support::batch_offsets(&tablet.read(ReadRequest::new(5, 1024)).await.unwrap().chunks)
                [0]
            .0,
            5
        );
    });
}

#[test]
fn projected_reads_return_the_chosen_columns_of_each_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let mut config = LogConfig::test_min();
        config.segment_size_max_bytes = 1 << 20;
        let tablet = support::open(&path, config, &clock).await;
        let schema = support::schema();
        // Small batches (projected in memory) and one larger than the read window (projected
        // from range reads).
        for (first, rows) in [(0, 10), (10, 20_000), (20_010, 3)] {
            let mut batch = support::batch(first, rows);
            tablet.append_durable(&mut batch, &schema).await.unwrap();
        }
        let projection = Projection::new(schema.clone(), &[2, 0]).unwrap();
        let decoder = BatchDecoder::new(projection.projected_schema().clone());
        let read = tablet.read(ReadRequest::new(0, 1 << 30).projected(&projection)).await.unwrap();
        assert_eq!(read.chunks.len(), 3);
        let mut ids = Vec::new();
        for chunk in &read.chunks {
            let decoded = decoder.decode(&aligned_copy(chunk.as_bytes())).unwrap();
            assert_eq!(decoded.record_batch.num_columns(), 2);
            let id = decoded.record_batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let n = decoded.record_batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for (id, n) in id.values().iter().zip(n.values()) {
                assert_eq!(*n, id * 10);
                ids.push(*id);
            }
        }
        assert_eq!(ids, (0..20_013).collect::<Vec<i64>>());
    });
}

#[test]
fn commit_timestamps_never_decrease_and_time_lookups_find_the_first_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(10_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        let schema = support::schema();
        let mut stamps = Vec::new();
        for round in 0..40i64 {
            // The clock jumps back now and then: stamps must still not decrease.
            clock.set(10_000 + round * 100 - if round % 9 == 0 { 450 } else { 0 });
            let mut batch = support::batch(round * 4, 4);
            let appended = tablet.append_durable(&mut batch, &schema).await.unwrap();
            stamps.push((appended.base_offset, appended.commit_timestamp));
        }
        assert!(stamps.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        assert!(tablet.segment_count() > 2);
        for probe in [0, 9_999, 10_000, 10_050, 10_100, 11_234, 13_900, 13_901, 99_999] {
            let expected = stamps
                .iter()
                .find(|(_, stamp)| *stamp >= probe)
                .map_or(tablet.high_watermark(), |(offset, _)| *offset);
            assert_eq!(
                tablet.list_offsets(OffsetSpec::Timestamp(probe)).await.unwrap(),
                expected,
                "at {probe}"
            );
        }
        assert_eq!(tablet.list_offsets(OffsetSpec::Earliest).await.unwrap(), 0);
        assert_eq!(tablet.list_offsets(OffsetSpec::Latest).await.unwrap(), 160);
        // The same answers after reopening (sealed segments answer from their index files).
        drop(tablet);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        assert_eq!(tablet.list_offsets(OffsetSpec::Timestamp(11_234)).await.unwrap(), stamps[13].0);
    });
}

#[test]
fn concurrent_appenders_get_dense_offsets_and_durability() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = Rc::new(support::open(&path, LogConfig::test_min(), &clock).await);
        let mut tasks = Vec::new();
        for task in 0..16i64 {
            let tablet = tablet.clone();
            tasks.push(glommio::spawn_local(async move {
                let schema = support::schema();
                let mut offsets = Vec::new();
                for round in 0..10i64 {
                    let mut batch = support::batch(task * 1000 + round * 3, 3);
                    let appended = tablet.append_durable(&mut batch, &schema).await.unwrap();
                    assert!(tablet.high_watermark() > appended.last_offset);
                    offsets.push(appended.base_offset);
                }
                offsets
            }));
        }
        let mut offsets = Vec::new();
        for task in tasks {
            offsets.extend(task.await);
        }
        offsets.sort_unstable();
        assert_eq!(offsets, (0..480).step_by(3).map(|offset| offset as u64).collect::<Vec<_>>());
        let rows = support::read_ids(&tablet, 0, 4096).await;
        assert_eq!(rows.len(), 480);
        assert!(rows.iter().enumerate().all(|(index, (offset, _))| *offset == index as u64));
    });
}

#[test]
fn a_segment_older_than_the_age_limit_is_rolled_at_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000_000);
        let mut config = LogConfig::test_min();
        config.segment_size_max_bytes = 1 << 20;
        config.segment_age_max = std::time::Duration::from_secs(60);
        let tablet = support::open(&path, config, &clock).await;
        let schema = support::schema();
        let mut batch = support::batch(0, 3);
        tablet.append_durable(&mut batch, &schema).await.unwrap();
        clock.advance(59_999);
        let mut batch = support::batch(3, 3);
        tablet.append_durable(&mut batch, &schema).await.unwrap();
        assert_eq!(tablet.segment_count(), 1, "younger than the limit: no roll");
        clock.advance(1);
        let mut batch = support::batch(6, 3);
        tablet.append_durable(&mut batch, &schema).await.unwrap();
        assert_eq!(tablet.segment_count(), 2, "the first batch is 60 s old: rolled");
        let files = support::segment_files(&path);
        assert_eq!(files.iter().map(|(base, _)| *base).collect::<Vec<_>>(), vec![0, 6]);
        assert_eq!(support::read_ids(&tablet, 0, 1 << 20).await.len(), 9);
    });
}

#[test]
fn a_segment_never_spans_more_offsets_than_its_index_can_address() {
    // Batches of 4 Mi records of a NULL column are a few hundred bytes each: 1 024 of them
    // reach 2^32 offsets in one small segment unless the offset span rolls it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        use std::sync::Arc;
        let arrow = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "nothing",
            arrow_schema::DataType::Null,
            true,
        )]);
        let schema = ufer_wire::BatchSchema::new(1, Arc::new(arrow)).unwrap();
        let rows = ufer_wire::limits::BATCH_RECORD_COUNT_MAX as usize;
        let record_batch = arrow_array::RecordBatch::try_new(
            schema.arrow().clone(),
            vec![Arc::new(arrow_array::NullArray::new(rows))],
        )
        .unwrap();
        let template = ufer_wire::LogBatchBuilder::new(schema.clone(), Default::default())
            .unwrap()
            .build(&record_batch, None, ufer_wire::WriterStamp::NONE)
            .unwrap();
        let clock = ManualClock::new(1_000);
        let mut config = LogConfig::test_min();
        config.segment_size_max_bytes = 1 << 30;
        let tablet = support::open(&path, config.clone(), &clock).await;
        for _ in 0..1_030 {
            let mut batch = template.clone();
            tablet.append(&mut batch, &schema).await.unwrap();
        }
        tablet.sync().await.unwrap();
        assert_eq!(tablet.segment_count(), 2, "rolled once the span would pass 2^32 offsets");
        let expected_end = 1_030 * rows as u64;
        assert_eq!(tablet.high_watermark(), expected_end);
        let second_base = support::segment_files(&path)[1].0;
        assert_eq!(second_base, 1_023 * rows as u64);
        drop(tablet);
        let tablet = support::open(&path, config, &clock).await;
        assert_eq!(tablet.high_watermark(), expected_end);
        let read = tablet.read(ReadRequest::new(second_base - 1, 1)).await.unwrap();
        assert_eq!(support::batch_offsets(&read.chunks)[0].0, second_base - rows as u64);
    });
}

/// Production limits with an index entry for every batch and segments of `segment_bytes`,
/// and every read from the disk (no tail cache): for tests of what disk reads fetch.
fn disk_read_config(segment_bytes: u64) -> LogConfig {
    let mut config = LogConfig::production();
    config.index_interval_bytes = 512;
    config.segment_size_max_bytes = segment_bytes;
    config.tail_cache_bytes = 0;
    config
}

/// Appends `count` durable batches of `rows` rows (ids from 0); returns their stored bytes.
async fn append_batches(tablet: &ufer_shard::LogTablet, count: i64, rows: usize) -> usize {
    let schema = support::schema();
    let mut stored = 0;
    for round in 0..count {
        let mut batch = support::batch(round * rows as i64, rows);
        stored += batch.len();
        tablet.append_durable(&mut batch, &schema).await.unwrap();
    }
    stored
}

#[test]
fn reads_fetch_only_whole_batches_from_disk() {
    // Reads whose budget ends inside a batch stop at the last whole batch before it (known
    // from the index): the cut batch is not read from disk only to be read again by the
    // next fetch. Counted as the bytes asked of the files.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, disk_read_config(1 << 20), &clock).await;
        let stored = append_batches(&tablet, 30, 1_500).await;
        let batch_size = stored / 30;
        assert!(batch_size > 30 * 1024, "batches of {batch_size} bytes");
        // Room for two and a half batches per read.
        let max_bytes = batch_size * 5 / 2;
        let before = ufer_io::bytes_read_on_this_thread();
        let (mut offset, mut served) = (0, 0);
        while offset < tablet.high_watermark() {
            let read = tablet.read(ReadRequest::new(offset, max_bytes)).await.unwrap();
            assert_eq!(read.chunks.len(), 2, "two whole batches per read");
            served += read.chunks.iter().map(|chunk| chunk.as_bytes().len()).sum::<usize>();
            offset = read.next_offset;
        }
        assert_eq!(served, stored);
        let asked = (ufer_io::bytes_read_on_this_thread() - before) as usize;
        assert!(
            asked < stored + stored / 20,
            "read {asked} bytes from disk to serve {stored} ({:.2}x)",
            asked as f64 / stored as f64
        );
    });
}

#[test]
fn projected_reads_of_large_batches_check_every_batch_they_project() {
    // Every projected batch is read whole and its CRC checked before it is cut down (a
    // damaged column must never be served under the projected batch's fresh CRC: see
    // log_recovery_corruption), once per batch. A projected read's byte limit counts what it
    // returns, so it goes through many stored batches.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, disk_read_config(4 << 20), &clock).await;
        let schema = support::schema();
        let (batches, rows) = (12i64, 20_000usize);
        let stored = append_batches(&tablet, batches, rows).await;
        assert!(stored / batches as usize > 400 * 1024, "batches of {} bytes", stored / 12);
        let projection = Projection::new(schema.clone(), &[0]).unwrap();
        let decoder = BatchDecoder::new(projection.projected_schema().clone());
        let before = ufer_io::bytes_read_on_this_thread();
        let (mut offset, mut ids, mut reads) = (0, Vec::new(), 0);
        while offset < tablet.high_watermark() {
            let read = tablet
                .read(ReadRequest::new(offset, 1 << 20).projected(&projection))
                .await
                .unwrap();
            reads += 1;
            for chunk in &read.chunks {
                let decoded = decoder.decode(&aligned_copy(chunk.as_bytes())).unwrap();
                let id =
                    decoded.record_batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                ids.extend_from_slice(id.values());
            }
            offset = read.next_offset;
        }
        assert_eq!(ids, (0..batches * rows as i64).collect::<Vec<i64>>());
        // 160 KB of ids per batch: six batches per 1 MiB answer.
        assert_eq!(reads, 2, "answers are filled with projected batches");
        let asked = (ufer_io::bytes_read_on_this_thread() - before) as usize;
        // Each batch whole, once (plus the windows of their headers).
        assert!(
            asked >= stored && asked < stored + stored / 10,
            "read {asked} bytes from disk for {stored} stored ({:.2}x)",
            asked as f64 / stored as f64
        );
    });
}

#[test]
fn tailing_reads_come_from_memory_with_the_bytes_the_disk_has() {
    // The newest small batches are served from the tail cache: no disk read, the same bytes
    // as a read from the files (checked after reopening, which starts with an empty cache),
    // projected the same way, never past the high watermark.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let config = LogConfig::production();
        let tablet = support::open(&path, config.clone(), &clock).await;
        let schema = support::schema();
        for round in 0..50i64 {
            let mut batch = support::batch(round * 10, 10);
            tablet.append_durable(&mut batch, &schema).await.unwrap();
            clock.advance(1);
        }
        // Appended but not durable: invisible, from the cache as from the disk.
        let mut pending = support::batch(500, 10);
        tablet.append(&mut pending, &schema).await.unwrap();
        let before = ufer_io::bytes_read_on_this_thread();
        let tail = tablet.read(ReadRequest::new(450, 1 << 20)).await.unwrap();
        let projection = Projection::new(schema.clone(), &[0]).unwrap();
        let projected =
            tablet.read(ReadRequest::new(450, 1 << 20).projected(&projection)).await.unwrap();
        assert_eq!(ufer_io::bytes_read_on_this_thread(), before, "no disk read");
        assert_eq!(tail.chunks.len(), 5);
        assert_eq!(tail.next_offset, 500);
        assert_eq!(projected.chunks.len(), 5);
        let cached: Vec<Vec<u8>> =
            tail.chunks.iter().map(|chunk| chunk.as_bytes().to_vec()).collect();
        let cached_projected: Vec<Vec<u8>> =
            projected.chunks.iter().map(|chunk| chunk.as_bytes().to_vec()).collect();
        tablet.sync().await.unwrap();
        drop(tablet);

        let tablet = support::open(&path, config, &clock).await;
        let from_disk = tablet.read(ReadRequest::new(450, 1 << 20)).await.unwrap();
        let from_disk: Vec<Vec<u8>> =
            from_disk.chunks.iter().map(|chunk| chunk.as_bytes().to_vec()).collect();
        assert_eq!(from_disk[..5], cached[..]);
        let projected =
            tablet.read(ReadRequest::new(450, 1 << 20).projected(&projection)).await.unwrap();
        let projected: Vec<Vec<u8>> =
            projected.chunks.iter().map(|chunk| chunk.as_bytes().to_vec()).collect();
        assert_eq!(projected[..5], cached_projected[..]);
        let decoder = BatchDecoder::new(projection.projected_schema().clone());
        let ids = decoder.decode(&aligned_copy(&cached_projected[0])).unwrap();
        let ids = ids.record_batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values().to_vec(), (450..460).collect::<Vec<i64>>());
    });
}

#[test]
fn a_read_from_disk_that_reaches_the_durable_end_stops_at_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        // No tail cache: the read goes to the active segment's file.
        let config = LogConfig { tail_cache_bytes: 0, ..LogConfig::test_min() };
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, config, &clock).await;
        let schema = support::schema();
        tablet.append_durable(&mut support::batch(0, 5), &schema).await.unwrap();
        // Written, not yet durable: the active segment ends past the high watermark.
        let appended = tablet.append(&mut support::batch(5, 5), &schema).await.unwrap();
        assert_eq!((tablet.high_watermark(), tablet.log_end_offset()), (5, 10));
        let read = tablet.read(ReadRequest::new(0, 1 << 20)).await.unwrap();
        assert_eq!(support::batch_offsets(&read.chunks).len(), 1);
        assert_eq!(read.high_watermark, 5);
        assert_eq!(read.next_offset, 5, "the next read starts at the first batch not returned");
        tablet.wait_durable(&appended).await.unwrap();
        let next = tablet.read(ReadRequest::new(read.next_offset, 1 << 20)).await.unwrap();
        assert_eq!(support::batch_offsets(&next.chunks)[0].0, 5, "no batch is skipped");
    });
}
