//! A primary-key write is answered as durable (`acks=all`) only once everything its answer
//! depends on is durable: a write that changes nothing because of an earlier write not yet
//! synced, and a retried write whose original is not yet synced, wait for that earlier
//! changelog's fdatasync. Answered before it, a crash would lose what the answer promised
//! (a delete acknowledged while the key is back after a restart).

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;

use ufer_shard::pk_bucket::WriteColumns;
use ufer_shard::{Clock, SystemClock};
use ufer_tests::pk::{open_bucket, write_batch, write_batch_of};
use ufer_tests::run_on_executor;
use ufer_wire::WriterStamp;

#[test]
fn a_write_that_changes_nothing_waits_for_the_write_that_made_it_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run_on_executor(move || async move {
        let clock: Rc<dyn Clock> = Rc::new(SystemClock);
        let bucket = open_bucket(&path, clock).await.unwrap();
        // Key 1 exists, durably.
        let first = bucket.write(&write_batch(1, 5), WriteColumns::All).await.unwrap();
        bucket.wait_durable(&first).await.unwrap();
        for (what, value) in [("an upsert of the same row", 7), ("a delete", -1)] {
            // The earlier write is appended, not yet synced.
            let earlier = bucket.write(&write_batch(1, value), WriteColumns::All).await.unwrap();
            assert_eq!(earlier.changelog_record_count, if value < 0 { 1 } else { 2 });
            let earlier_end = earlier.changelog_offset + u64::from(earlier.changelog_record_count);
            assert!(bucket.log().high_watermark() < earlier_end, "not durable yet");
            // The same write again changes nothing, judged against the pending value.
            let same = bucket.write(&write_batch(1, value), WriteColumns::All).await.unwrap();
            assert_eq!(same.changelog_record_count, 0, "{what} again changes nothing");
            bucket.wait_durable(&same).await.unwrap();
            assert!(
                bucket.log().high_watermark() >= earlier_end,
                "{what} that changed nothing was answered before the write it depends on was \
                 durable"
            );
            bucket.wait_durable(&earlier).await.unwrap();
            // Key 1 back for the next round.
            let back = bucket.write(&write_batch(1, 5), WriteColumns::All).await.unwrap();
            bucket.wait_durable(&back).await.unwrap();
        }
    });
}

#[test]
fn a_retried_write_waits_for_its_original_to_be_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run_on_executor(move || async move {
        let clock: Rc<dyn Clock> = Rc::new(SystemClock);
        let bucket = open_bucket(&path, clock).await.unwrap();
        let stamp = WriterStamp { writer_id: 7, batch_sequence: 0 };
        let original = bucket.write(&write_batch_of(2, 9, stamp), WriteColumns::All).await.unwrap();
        let original_end = original.changelog_offset + u64::from(original.changelog_record_count);
        assert!(bucket.log().high_watermark() < original_end, "not durable yet");
        let retry = bucket.write(&write_batch_of(2, 9, stamp), WriteColumns::All).await.unwrap();
        assert!(retry.duplicate);
        bucket.wait_durable(&retry).await.unwrap();
        assert!(
            bucket.log().high_watermark() >= original_end,
            "a retry was answered before its original was durable"
        );
    });
}
