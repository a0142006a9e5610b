//! The commands of `ufer-bench`, one module each: its options (as clap parses them), its
//! repetitions, the ceilings measured beside it, and the lines and JSON figures it reports.
//! The load itself is in [`crate::workload`] (and [`crate::lake`]).

pub mod all;
pub mod consume;
pub mod e2e;
pub mod kv;
pub mod lake;
pub mod limits;
pub mod measurement;
pub mod mixed;
pub mod plot;
pub mod produce;
pub mod server;
