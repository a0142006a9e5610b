//! `ufer-bench mixed`: closed-loop writers (acks=all) and tailing readers on one table at
//! once.

use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};
use ufer_wire::protocol::messages::Acks;
use ufer_wire::Compression;

use crate::error::BenchError;
use crate::options::GlobalOptions;
use crate::progress;
use crate::report::{latency_histogram, merge_into, ratio, Percentiles, Spread};
use crate::rows::{self, ROW_SIZE_BYTES};
use crate::session::Session;
use crate::workload::mixed::MixedParams;
use crate::workload::{self, mixed, produce};

/// The options of `ufer-bench mixed`.
#[derive(Debug, Args)]
pub struct MixedArgs {
    /// Writers (closed loop, as in `produce`).
    #[arg(long, default_value_t = 2)]
    pub writers: usize,
    /// Tailing readers, each reading every row.
    #[arg(long, default_value_t = 2)]
    pub readers: usize,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    pub buckets: u32,
    /// Rows per batch (1 KiB each).
    #[arg(long, default_value_t = 1024)]
    pub batch_rows: usize,
    /// Columns the readers read: `all`, or `projected` (2 of 20).
    #[arg(long, default_value = "all")]
    pub columns: String,
}

/// Measures `args` in every repetition, each on a fresh table.
pub async fn run(session: &Session<'_>, args: &MixedArgs) -> Result<Value, BenchError> {
    let options = session.options;
    let connection = &session.connection;
    let (warmup, duration) = options.durations();
    let params = params(options, args)?;
    let schema = rows::arrow_schema()?;
    let batch_size = produce::encoded_batch_size(&schema, args.batch_rows)?;
    println!(
        "\nmixed: {} writer(s) (acks=all, {:.2} MiB batches) and {} tailing reader(s) \
         ({} columns), {} buckets; {} s measured after {} s warm-up, {} reps",
        args.writers,
        batch_size as f64 / (1024.0 * 1024.0),
        args.readers,
        args.columns,
        args.buckets,
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        options.reps
    );
    let (mut produced, mut consumed, mut per_reader) = (Vec::new(), Vec::new(), Vec::new());
    let mut latency = latency_histogram();
    for _ in progress::repetitions("mixed", options.reps) {
        let path = workload::create_table(connection, "bench_mixed", args.buckets).await?;
        let result = mixed::run(connection, &path, &params, batch_size).await?;
        workload::drop_table(connection, &path).await?;
        produced.push(result.produced.mb_per_s());
        consumed.push(result.consumed.mb_per_s());
        per_reader.push(ratio(result.consumed.rows as f64, result.produced.rows as f64));
        merge_into(&mut latency, &result.produce_latency)?;
    }
    let (produced, consumed, per_reader) =
        (Spread::of(produced), Spread::of(consumed), Spread::of(per_reader));
    let latency = Percentiles::of(&latency);
    println!(
        "  produce {} | rows reaching all readers {} of table data \
         (each reader got {:.2}× the rows written in the window)",
        produced.line("MB/s"),
        consumed.line("MB/s"),
        per_reader.median / args.readers.max(1) as f64
    );
    println!("    batch latency {}", latency.line());
    Ok(json!({
        "writers": args.writers,
        "readers": args.readers,
        "buckets": args.buckets,
        "columns": args.columns,
        "batch_size_bytes": batch_size,
        "produce_mb_per_s": produced,
        "consumed_mb_per_s": consumed,
        "batch_latency": latency,
    }))
}

/// The writers' and readers' side of `args`.
fn params(options: &GlobalOptions, args: &MixedArgs) -> Result<MixedParams, BenchError> {
    let (warmup, duration) = options.durations();
    let columns = match args.columns.as_str() {
        "all" => None,
        "projected" => Some(rows::projected_columns()),
        other => {
            return Err(BenchError::Other(format!("--columns is all or projected, not {other:?}")))
        }
    };
    Ok(MixedParams {
        produce: produce::ProduceParams {
            writers: args.writers,
            batch_rows: args.batch_rows,
            append_rows: args.batch_rows,
            linger: Duration::from_millis(1),
            row_size_bytes: ROW_SIZE_BYTES,
            acks: Acks::All,
            compression: Compression::None,
            warmup,
            duration,
        },
        readers: args.readers,
        columns,
    })
}
