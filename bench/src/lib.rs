//! `ufer-bench`: the end-to-end load generator. It drives a node over the real client SDK
//! and QUIC — one it starts itself in a child process (the default) or one already running —
//! and measures the transport's own limits between the same two processes, so every figure
//! comes with the ceiling it should be read against.
//!
//! Modules: [`command`] (one per subcommand: its options, repetitions and report),
//! [`options`] (the options every command shares), [`session`] (the node, connection and
//! JSON file a run's measurements share), [`rows`] (the 20-column, 1 KiB-row table),
//! [`server`] (the child: node plus raw QUIC endpoints), [`target`] (starting and reaching
//! it), [`raw_quic`] (the transport's limits), [`disk_probe`] (the disk's), [`workload`]
//! (produce, consume, e2e, mixed, kv, round trips), [`lake`] (the lake's figures),
//! [`schedule`] (open-loop send times and latency from them), [`report`] (windows,
//! percentiles, medians and their report lines), [`progress`] (repetitions on a terminal),
//! [`keys`] (key distributions), [`plot`] (latency spectra as SVG), [`machine`] (what the
//! figures were measured on).

pub mod command;
pub mod disk_probe;
pub mod error;
pub mod keys;
pub mod lake;
pub mod machine;
pub mod options;
pub mod plot;
pub mod progress;
pub mod raw_quic;
pub mod report;
pub mod rows;
pub mod schedule;
pub mod server;
pub mod session;
pub mod target;
pub mod workload;

pub use error::BenchError;
