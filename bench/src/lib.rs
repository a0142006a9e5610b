//! `ufer-bench`: the end-to-end load generator over QUIC.
//!
//! Not built yet: it drives a running node, which is the node issue's work. Micro-benchmarks
//! of the hot paths that exist today are in `ufer-perf`.
