//! `ufer-bench lake`: the options of the lake's figures, and their JSON file; the
//! measurements themselves are in [`crate::lake`].

use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::error::BenchError;
use crate::lake::{self, LakeParams};
use crate::machine::Machine;
use crate::options::GlobalOptions;

/// The options of `ufer-bench lake`.
#[derive(Debug, Args)]
pub struct LakeArgs {
    /// MB of 1 KiB rows tiered for the throughput figure.
    #[arg(long, default_value_t = 512)]
    pub backlog_mb: u64,
    /// lake.freshness.ms of the freshness figure's table (the default is 180000).
    #[arg(long, default_value_t = 1_000)]
    pub freshness_ms: u64,
    /// Seconds the freshness figure produces.
    #[arg(long, default_value_t = 10.0)]
    pub freshness_seconds: f64,
    /// Rows of the union-read table (90 % tiered, 10 % live).
    #[arg(long, default_value_t = 10_000_000)]
    pub union_rows: u64,
    /// Buckets of each table.
    #[arg(long, default_value_t = 4)]
    pub buckets: u32,
    /// Only these parts (comma-separated: tiering, freshness, union; default all).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// Measures the lake's figures on a node in this process (`--target` is ignored).
pub fn run(options: &GlobalOptions, args: &LakeArgs) -> Result<(), BenchError> {
    let params = LakeParams {
        backlog_mb: args.backlog_mb,
        freshness_ms: args.freshness_ms,
        freshness_run: Duration::from_secs_f64(args.freshness_seconds),
        union_rows: args.union_rows,
        buckets: args.buckets,
        shards: options.shard_count(),
        reps: options.reps,
        parts: args.only.clone(),
    };
    let dir = options.parent_dir();
    let figures = lake::run(&params, &dir)?;
    if let Some(path) = &options.json {
        let machine = Machine::read(Some(&dir));
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&json!({ "machine": machine, "lake": figures }))?,
        )?;
    }
    Ok(())
}
