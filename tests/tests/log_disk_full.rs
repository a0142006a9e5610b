//! Disk full on a real, loop-mounted ext4 file system with direct I/O: the append that hits
//! ENOSPC fails with a typed error naming the file, the log keeps serving every durable
//! batch, and once space returns appends succeed again at the right offsets, across a
//! reopen too. Needs root (mount); fails with a clear message without it.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;

use ufer_shard::{AppendError, Clock, LogConfig, LogTablet, ManualClock, ReadRequest};
use ufer_tests::loop_mount::LoopMount;
use ufer_tests::table;
use ufer_wire::{Compression, LogBatch};

#[test]
fn appends_fail_cleanly_when_the_disk_is_full_and_resume_when_space_returns() {
    let mount = LoopMount::ext4(16 * 1024 * 1024)
        .unwrap_or_else(|error| panic!("this test needs root to loop-mount ext4: {error}"));
    let root = mount.path().to_path_buf();
    ufer_tests::run_on_executor(move || async move {
        // Room that can be given back later.
        let filler = root.join("filler");
        std::fs::write(&filler, vec![1u8; 4 * 1024 * 1024]).unwrap();
        let mut config = LogConfig::test_min();
        config.segment_size_max_bytes = 1 << 20;
        // Batches are kept in the tail cache too: an undone append must leave it as well.
        config.tail_cache_bytes = 1 << 20;
        let clock: Rc<dyn Clock> = Rc::new(ManualClock::new(1_000));
        let tablet =
            LogTablet::open(root.join("bucket"), config.clone(), clock.clone()).await.unwrap();
        let schema = table::schema();

        let mut next_id = 0;
        let disk_full = loop {
            let mut batch = table::batch(next_id, 2_000, Compression::None, None);
            match tablet.append_durable(&mut batch, &schema).await {
                Ok(_) => next_id += 2_000,
                Err(error) => break error,
            }
            assert!(next_id < 10_000_000, "the disk never filled up");
        };
        assert!(matches!(disk_full, AppendError::DiskFull(_)), "{disk_full}");
        assert!(disk_full.to_string().contains("bucket"), "the error names the file: {disk_full}");
        let high_watermark = tablet.high_watermark();
        assert_eq!(high_watermark, next_id as u64);
        assert_eq!(tablet.log_end_offset(), high_watermark, "nothing half-appended remains");

        // Reads still work.
        assert_eq!(count_rows(&tablet).await, high_watermark);
        // Still full: still a clean error.
        let mut batch = table::batch(next_id, 2_000, Compression::None, None);
        assert!(matches!(
            tablet.append_durable(&mut batch, &schema).await,
            Err(AppendError::DiskFull(_))
        ));

        std::fs::remove_file(&filler).unwrap();
        for _ in 0..5 {
            let mut batch = table::batch(next_id, 2_000, Compression::None, None);
            let appended = tablet.append_durable(&mut batch, &schema).await.unwrap();
            assert_eq!(appended.base_offset, next_id as u64);
            next_id += 2_000;
        }
        // The newest batch holds the rows appended last, not the ones of the undone append
        // that had the same offsets.
        assert_eq!(first_id_at(&tablet, next_id as u64 - 2_000).await, next_id - 2_000);
        tablet.close().await.unwrap();
        let tablet = LogTablet::open(root.join("bucket"), config, clock).await.unwrap();
        assert_eq!(tablet.high_watermark(), next_id as u64);
        assert_eq!(count_rows(&tablet).await, next_id as u64);
        // Closed, not dropped: an open file would keep the file system busy.
        tablet.close().await.unwrap();
    });
    drop(mount);
}

/// The `id` of the first row of the batch at `offset`.
async fn first_id_at(tablet: &LogTablet, offset: u64) -> i64 {
    let read = tablet.read(ReadRequest::new(offset, 1)).await.unwrap();
    let decoder = ufer_wire::BatchDecoder::new(table::schema());
    let decoded = decoder.decode(&ufer_wire::aligned_copy(read.chunks[0].as_bytes())).unwrap();
    let ids = decoded.record_batch.column(0);
    let ids = ids.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
    ids.value(0)
}

async fn count_rows(tablet: &LogTablet) -> u64 {
    let mut offset = 0;
    let mut rows = 0;
    loop {
        let read = tablet.read(ReadRequest::new(offset, 1 << 20)).await.unwrap();
        if read.chunks.is_empty() {
            return rows;
        }
        for chunk in &read.chunks {
            rows += u64::from(LogBatch::parse(chunk.as_bytes()).unwrap().record_count());
        }
        offset = read.next_offset;
    }
}
