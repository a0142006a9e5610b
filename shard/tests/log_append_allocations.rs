//! Nothing on the append path allocates per batch in steady state: validating a batch,
//! assigning its offsets, indexing it and copying it into the write buffer reuse memory.
//! Counted with a global allocator on the executor thread only.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ufer_shard::{LogConfig, ManualClock};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls on this thread.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn appends_do_not_allocate_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let allocations = support::run(move || async move {
        let clock = ManualClock::new(1_000);
        let mut config = LogConfig::production();
        config.segment_size_max_bytes = 1 << 30;
        let tablet = support::open(&path, config, &clock).await;
        let schema = support::schema();
        let template = support::batch(0, 20);
        let mut batches: Vec<Vec<u8>> = (0..2_000).map(|_| template.clone()).collect();
        // Warm up: the first buffers, index and pending lists grow to their working size.
        for batch in &mut batches[..200] {
            tablet.append(batch, &schema).await.unwrap();
        }
        tablet.sync().await.unwrap();
        ALLOCATIONS.with(|count| count.set(0));
        COUNTING.with(|counting| counting.set(true));
        for batch in &mut batches[200..] {
            tablet.append(batch, &schema).await.unwrap();
        }
        COUNTING.with(|counting| counting.set(false));
        let allocations = ALLOCATIONS.with(Cell::get);
        tablet.sync().await.unwrap();
        assert_eq!(tablet.high_watermark(), 2_000 * 20);
        allocations
    });
    // 1 800 appends of ~1 KiB fill about two 1 MiB write buffers: a handful of allocations
    // for buffers and list growth, not one per batch.
    assert!(allocations < 100, "{allocations} allocations for 1800 appends");
}
