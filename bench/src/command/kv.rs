//! `ufer-bench upsert` and `ufer-bench lookup`: a primary-key table (100-byte rows) under
//! upserts, or under point lookups once every key is loaded, for each key distribution.

use std::time::Instant;

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::error::BenchError;
use crate::keys::Distribution;
use crate::progress;
use crate::report::{latency_histogram, merge_into, Percentiles, Spread, Throughput};
use crate::session::Session;
use crate::workload;
use crate::workload::kv::{self, KvParams, KV_ROW_SIZE_BYTES};

/// The options of `ufer-bench upsert` and `ufer-bench lookup`.
#[derive(Clone, Debug, Args)]
pub struct KvArgs {
    /// Keys in the key space (lookup loads every one first).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Key distributions to run, comma-separated: uniform, zipfian.
    #[arg(long, value_delimiter = ',', default_value = "uniform,zipfian")]
    pub distribution: Vec<String>,
    /// Concurrent writers (upsert) or readers (lookup).
    #[arg(long, default_value_t = 4)]
    pub actors: usize,
    /// Rows per upsert request, or keys per lookup request.
    #[arg(long, default_value_t = 100)]
    pub batch_rows: usize,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    pub buckets: u32,
}

/// What the actors do to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Writers upsert rows.
    Upsert,
    /// Readers look keys up, in a table loaded with every key first.
    Lookup,
}

impl Operation {
    /// The command's name.
    fn name(self) -> &'static str {
        match self {
            Operation::Upsert => "upsert",
            Operation::Lookup => "lookup",
        }
    }
}

/// Measures `operation` at every distribution of `args`.
pub async fn run(
    session: &Session<'_>,
    args: &KvArgs,
    operation: Operation,
) -> Result<Value, BenchError> {
    let (warmup, duration) = session.options.durations();
    let (actor, unit) = match operation {
        Operation::Upsert => ("writer", "rows"),
        Operation::Lookup => ("reader", "keys"),
    };
    println!(
        "\n{}: {} {actor}(s), {} {unit} per request, {} keys of {} bytes, {} buckets; \
         {} s measured after {} s warm-up, {} reps",
        operation.name(),
        args.actors,
        args.batch_rows,
        args.keys,
        KV_ROW_SIZE_BYTES,
        args.buckets,
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        session.options.reps
    );
    let mut figures = serde_json::Map::new();
    for distribution in &args.distribution {
        let params = KvParams {
            actors: args.actors,
            key_count: args.keys,
            distribution: Distribution::parse(distribution).map_err(BenchError::Other)?,
            batch_rows: args.batch_rows,
            warmup,
            duration,
        };
        let (rates, latency) = measure(session, args, operation, &params).await?;
        let (rates, latency) = (Spread::of(rates), Percentiles::of(&latency));
        let name = params.distribution.name();
        println!("  {:<8} {}", name, rates.line("rows/s"));
        println!("    request latency {}", latency.line());
        figures.insert(name.into(), json!({ "rows_per_s": rates, "request_latency": latency }));
    }
    Ok(json!({
        "actors": args.actors,
        "keys": args.keys,
        "batch_rows": args.batch_rows,
        "buckets": args.buckets,
        "row_size_bytes": KV_ROW_SIZE_BYTES,
        "by_distribution": figures,
    }))
}

/// The repetitions at one distribution: rows per second of each, request latencies of all.
async fn measure(
    session: &Session<'_>,
    args: &KvArgs,
    operation: Operation,
    params: &KvParams,
) -> Result<(Vec<f64>, Histogram<u64>), BenchError> {
    let connection = &session.connection;
    let (mut rates, mut latency) = (Vec::new(), latency_histogram());
    for rep in progress::repetitions(operation.name(), session.options.reps) {
        let path = kv::create_table(connection, "bench_kv", args.buckets).await?;
        let (done, histogram): (Throughput, _) = match operation {
            Operation::Upsert => kv::run_upsert(connection, &path, params).await?,
            Operation::Lookup => {
                let loading = Instant::now();
                kv::load(connection, &path, args.keys).await?;
                if rep == 0 {
                    let seconds = loading.elapsed().as_secs_f64();
                    println!("  loaded {} keys in {seconds:.1} s", args.keys);
                }
                kv::run_lookup(connection, &path, params).await?
            }
        };
        workload::drop_table(connection, &path).await?;
        rates.push(done.rows_per_s());
        merge_into(&mut latency, &histogram)?;
    }
    Ok((rates, latency))
}
