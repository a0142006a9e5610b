//! Idempotent writers: a retried batch is stored once and answered with its original
//! offsets — also after a restart, with or without the writers' snapshot — and a sequence
//! that skips ahead is refused. Long-polling reads wake when data arrives.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::rc::Rc;
use std::time::{Duration, Instant};

use ufer_shard::{AppendError, LogConfig, ManualClock};

#[test]
fn retries_get_their_original_offsets_and_gaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        let schema = support::schema();
        let mut originals = Vec::new();
        for sequence in 0..10 {
            let mut batch = support::writer_batch(i64::from(sequence) * 3, 3, 7, sequence);
            let appended = tablet.append_durable(&mut batch, &schema).await.unwrap();
            assert!(!appended.duplicate);
            originals.push(appended);
            // Another writer interleaves, so offsets are not simply sequence * 3.
            let mut other = support::writer_batch(1_000, 1, 8, sequence);
            tablet.append_durable(&mut other, &schema).await.unwrap();
        }
        let end = tablet.log_end_offset();
        for sequence in 5..10 {
            let mut retry = support::writer_batch(i64::from(sequence) * 3, 3, 7, sequence);
            let answer = tablet.append_durable(&mut retry, &schema).await.unwrap();
            assert!(answer.duplicate);
            assert_eq!(answer.base_offset, originals[sequence as usize].base_offset);
            assert_eq!(answer.last_offset, originals[sequence as usize].last_offset);
        }
        assert_eq!(tablet.log_end_offset(), end, "retries store nothing");
        // Sequence 2 is too old to answer (only the last five are kept); 12 skips 10 and 11.
        for (sequence, expected) in [(2, 10), (12, 10)] {
            let mut batch = support::writer_batch(0, 1, 7, sequence);
            match tablet.append(&mut batch, &schema).await {
                Err(AppendError::OutOfOrderSequence { writer_id: 7, expected: e, got }) => {
                    assert_eq!((e, got), (expected, sequence));
                }
                other => panic!("sequence {sequence}: {other:?}"),
            }
        }
        let mut next = support::writer_batch(30, 3, 7, 10);
        assert!(!tablet.append_durable(&mut next, &schema).await.unwrap().duplicate);
    });
}

#[test]
fn a_retry_of_a_batch_not_yet_durable_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
        let schema = support::schema();
        let mut batch = support::writer_batch(0, 3, 1, 0);
        let original = tablet.append(&mut batch, &schema).await.unwrap();
        assert_eq!(tablet.high_watermark(), 0);
        let mut retry = support::writer_batch(0, 3, 1, 0);
        let answer = tablet.append(&mut retry, &schema).await.unwrap();
        assert!(answer.duplicate && answer.base_offset == original.base_offset);
        tablet.wait_durable(&answer).await.unwrap();
        assert!(tablet.high_watermark() > answer.last_offset);
    });
}

#[test]
fn writer_state_survives_restarts_with_or_without_its_snapshot() {
    for delete_snapshot in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        support::run(move || async move {
            let clock = ManualClock::new(1_000);
            let schema = support::schema();
            let mut originals = Vec::new();
            {
                let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
                for sequence in 0..40 {
                    let mut batch = support::writer_batch(i64::from(sequence) * 4, 4, 3, sequence);
                    originals.push(tablet.append_durable(&mut batch, &schema).await.unwrap());
                }
                assert!(tablet.segment_count() > 3, "rolls wrote snapshots");
                tablet.close().await.unwrap();
            }
            let snapshots: Vec<_> = std::fs::read_dir(&path)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|extension| extension == "writers"))
                .collect();
            assert_eq!(snapshots.len(), 1, "only the newest snapshot is kept: {snapshots:?}");
            if delete_snapshot {
                std::fs::remove_file(&snapshots[0]).unwrap();
            }
            let tablet = support::open(&path, LogConfig::test_min(), &clock).await;
            for sequence in 35..40 {
                let mut retry = support::writer_batch(i64::from(sequence) * 4, 4, 3, sequence);
                let answer = tablet.append_durable(&mut retry, &schema).await.unwrap();
                assert!(
                    answer.duplicate,
                    "sequence {sequence} (snapshot deleted: {delete_snapshot})"
                );
                assert_eq!(answer.base_offset, originals[sequence as usize].base_offset);
            }
            let mut next = support::writer_batch(160, 4, 3, 40);
            let appended = tablet.append_durable(&mut next, &schema).await.unwrap();
            assert!(!appended.duplicate);
            assert_eq!(appended.base_offset, 160);
        });
    }
}

#[test]
fn long_polls_wake_when_data_arrives_and_time_out_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = Rc::new(support::open(&path, LogConfig::test_min(), &clock).await);
        let schema = support::schema();
        let started = Instant::now();
        assert_eq!(tablet.wait_for_data(0, Duration::from_millis(30)).await, 0);
        assert!(started.elapsed() >= Duration::from_millis(30), "waited out the timeout");

        let waiter = {
            let tablet = tablet.clone();
            glommio::spawn_local(async move {
                let started = Instant::now();
                let high_watermark = tablet.wait_for_data(0, Duration::from_secs(30)).await;
                (high_watermark, started.elapsed())
            })
        };
        glommio::timer::sleep(Duration::from_millis(20)).await;
        let mut batch = support::batch(0, 5);
        tablet.append_durable(&mut batch, &schema).await.unwrap();
        let (high_watermark, waited) = waiter.await;
        assert_eq!(high_watermark, 5);
        assert!(waited < Duration::from_secs(10), "woken by the append, not the timeout");
    });
}
