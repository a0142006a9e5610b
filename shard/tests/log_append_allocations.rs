//! Nothing on the append path allocates per batch in steady state: validating a batch,
//! assigning its offsets, indexing it and copying it into the write buffer reuse memory.
//! Allocations are counted process-wide while only the executor thread works.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::alloc::System;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use ufer_shard::{LogConfig, ManualClock};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn appends_do_not_allocate_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let allocations = support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let tablet = support::open(&path, LogConfig::production(), &clock).await;
        let schema = support::schema();
        let template = support::batch(0, 20);
        let mut batches: Vec<Vec<u8>> = (0..4_000).map(|_| template.clone()).collect();
        // Warm up: the first buffers, index and pending lists grow to their working size, and
        // the tail cache (1 MiB) fills and starts reusing what it evicts.
        for batch in &mut batches[..2_200] {
            tablet.append(batch, &schema).await.unwrap();
        }
        tablet.sync().await.unwrap();
        let region = Region::new(ALLOCATOR);
        for batch in &mut batches[2_200..] {
            tablet.append(batch, &schema).await.unwrap();
        }
        let allocations = region.change().allocations + region.change().reallocations;
        tablet.sync().await.unwrap();
        assert_eq!(tablet.high_watermark(), 4_000 * 20);
        allocations
    });
    // 1 800 appends of ~1 KiB fill about two 1 MiB write buffers: a handful of allocations
    // for buffers and list growth, not one per batch.
    assert!(allocations < 100, "{allocations} allocations for 1800 appends");
}
