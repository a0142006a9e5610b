//! `ufer-perf`: micro-benchmarks of the hot paths, their recorded baselines, and what the
//! benchmarks share (the wide test table, an executor thread, summaries of noisy runs).
//!
//! Set the shared target directory first, `export CARGO_TARGET_DIR=$HOME/.cache/ufer-target`;
//! criterion then writes its results to `$CARGO_TARGET_DIR/criterion`.
//!
//! - `cargo bench -p ufer-perf --bench batch_codec` — criterion, ~1 MiB batches of a
//!   20-column table: building a batch (plain, LZ4), the CRC check and the full append
//!   checks, server projection of 2 of 20 columns (metadata only, and assembled), decoding
//!   (all columns, LZ4, the projected batch). Throughput is printed in bytes per second.
//! - `cargo run -p ufer-perf --release --bin log_append -- [--batch-bytes N] [--appenders K]
//!   [--seconds S] [--reps R] [--dir D] [--cpu C] [--io-memory-mib M]` — durable appends to a
//!   log tablet (group commit, fdatasync) beside plain O_DIRECT writes of the same bytes with
//!   one fdatasync per batch, on the same executor thread and file system, interleaved and
//!   repeated, medians reported; then the latency of one durable append (p50/p99/p99.9).
//! - `cargo bench -p ufer-perf --bench kv` — criterion: reading a 1 MiB batch of a log segment
//!   with direct I/O (whole, and projected to 2 of 20 columns); KV tablet apply (1 000 mutations into
//!   the memtable), point gets from the memtable and from sorted files through the block
//!   cache, and the changelog generation in front of it (100 updates, key encoding, row
//!   decoding).
//! - `cargo run -p ufer-perf --release [--features rocksdb] --bin kv_compare` — the KV beside
//!   RocksDB with the same changelog generation: load, upserts (uniform, zipfian), lookups,
//!   write and space amplification, open time with 10M keys.
//! - `cargo run -p ufer-perf --release --bin perf_compare -- [--baseline NAME] [--threshold
//!   PCT] [--record]` — compares criterion's latest medians with
//!   `perf/baselines/NAME.json`, or records them there (`perf/baselines/README.md`).
//!
//! Benchmarks run only when asked; nothing here is a timed assertion in `cargo test`.

pub mod baseline;
pub mod executor;
pub mod measurement;
pub mod wide_table;

pub use baseline::{compare, read_baseline, read_criterion_results, write_baseline, Baseline};
pub use executor::{run_on_new_thread, ExecutorOptions};
pub use measurement::{human_duration, human_size, LatencySummary, Rate, Spread};
pub use wide_table::{WideTable, WIDE_COLUMN_COUNT};
