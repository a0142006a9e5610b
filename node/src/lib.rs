//! `ufer-node`: the storage node process (binary `ufer`).
//!
//! Not built yet: the thread-per-core server, QUIC endpoints, catalog and CLI are the node
//! issue's work. This crate exists so the workspace layout is complete and the dependency
//! direction (node on shard, io and wire) is checked from the start.
