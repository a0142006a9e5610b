//! `ufer-bench produce`: closed-loop produce at each writer count. Every repetition runs raw
//! QUIC requests of the same size and concurrency first (the transport's ceiling) and, with
//! acks=all, durable writes of the same size after (the disk's).

use std::time::Duration;

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use ufer_wire::protocol::messages::Acks;
use ufer_wire::Compression;

use crate::error::BenchError;
use crate::options::{acks, GlobalOptions};
use crate::plot;
use crate::progress;
use crate::report::{latency_histogram, merge_into, ratio, Percentiles, Spread, Throughput};
use crate::rows::{self, ROW_SIZE_BYTES};
use crate::session::Session;
use crate::workload::{self, produce};

/// The options of `ufer-bench produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Writer counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub writers: Vec<usize>,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    pub buckets: u32,
    /// Rows per batch.
    #[arg(long, default_value_t = 1024)]
    pub batch_rows: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Tables written (writer i writes table i mod N), each with --buckets buckets.
    #[arg(long, default_value_t = 1)]
    pub tables: usize,
    /// Bytes of Arrow data per row (the 20 columns' strings grow or shrink; at least 280).
    #[arg(long, default_value_t = ROW_SIZE_BYTES)]
    pub row_bytes: usize,
    /// Rows per append call (default: a whole batch); smaller appends are batched by the
    /// writer up to --batch-rows or --linger-ms.
    #[arg(long)]
    pub append_rows: Option<usize>,
    /// How long a writer waits to fill a batch.
    #[arg(long, default_value_t = 1.0)]
    pub linger_ms: f64,
}

/// Measures every writer count of `args`; one JSON entry each.
pub async fn run(session: &Session<'_>, args: &ProduceArgs) -> Result<Value, BenchError> {
    let (warmup, duration) = session.options.durations();
    let schema = rows::arrow_schema()?;
    if args.row_bytes < rows::ROW_SIZE_MIN_BYTES || args.tables == 0 {
        return Err(BenchError::Other(format!(
            "--row-bytes must be at least {} and --tables at least 1",
            rows::ROW_SIZE_MIN_BYTES
        )));
    }
    let batch_size = produce::encoded_batch_size_of(&schema, args.batch_rows, args.row_bytes)?;
    let append_rows = args.append_rows.unwrap_or(args.batch_rows).clamp(1, args.batch_rows);
    print_header(session.options, args, batch_size, append_rows);
    let mut out = Vec::new();
    for &writers in &args.writers {
        let params = produce::ProduceParams {
            writers,
            batch_rows: args.batch_rows,
            append_rows,
            linger: Duration::from_secs_f64(args.linger_ms.max(0.0) / 1e3),
            row_size_bytes: args.row_bytes,
            acks: acks(&args.acks)?,
            compression: compression(&args.compression)?,
            warmup,
            duration,
        };
        let samples = measure(session, args, &params, batch_size).await?;
        out.push(samples.report(args, &params, batch_size));
    }
    Ok(Value::Array(out))
}

fn print_header(
    options: &GlobalOptions,
    args: &ProduceArgs,
    batch_size: usize,
    append_rows: usize,
) {
    let (warmup, duration) = options.durations();
    println!(
        "\nproduce: acks={}, {} rows × {} B = {:.2} MiB batches \
         ({} rows per append, linger {} ms), {} table(s) × {} buckets, compression {}; \
         {} s measured after {} s warm-up, {} reps",
        args.acks,
        args.batch_rows,
        args.row_bytes,
        batch_size as f64 / (1024.0 * 1024.0),
        append_rows,
        args.linger_ms,
        args.tables,
        args.buckets,
        args.compression,
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        options.reps
    );
}

/// The value of `--compression`.
fn compression(text: &str) -> Result<Compression, BenchError> {
    match text {
        "none" => Ok(Compression::None),
        "lz4" => Ok(Compression::Lz4Frame),
        "zstd" => Ok(Compression::Zstd),
        other => Err(BenchError::Other(format!("--compression {other:?}: use none, lz4 or zstd"))),
    }
}

/// What the repetitions at one writer count measured.
struct Samples {
    produced_mb_per_s: Vec<f64>,
    produced_rows_per_s: Vec<f64>,
    raw_mb_per_s: Vec<f64>,
    ratios_to_raw: Vec<f64>,
    disk_mb_per_s: Vec<f64>,
    ratios_to_disk: Vec<f64>,
    latency: Histogram<u64>,
    raw_latency: Histogram<u64>,
}

/// The repetitions at `params.writers` writers.
async fn measure(
    session: &Session<'_>,
    args: &ProduceArgs,
    params: &produce::ProduceParams,
    batch_size: usize,
) -> Result<Samples, BenchError> {
    let writers = params.writers;
    let concurrency = writers * args.buckets as usize;
    let mut samples = Samples {
        produced_mb_per_s: Vec::new(),
        produced_rows_per_s: Vec::new(),
        raw_mb_per_s: Vec::new(),
        ratios_to_raw: Vec::new(),
        disk_mb_per_s: Vec::new(),
        ratios_to_disk: Vec::new(),
        latency: latency_histogram(),
        raw_latency: latency_histogram(),
    };
    let reps = session.options.reps;
    for _ in progress::repetitions(format!("produce, {writers} writer(s)"), reps) {
        // Interleaved: raw, then produce, each repetition.
        let raw_rate = match &session.raw {
            Some(raw) => {
                let (done, histogram) =
                    raw.requests(batch_size, concurrency, params.warmup, params.duration).await?;
                merge_into(&mut samples.raw_latency, &histogram)?;
                Some(done.mb_per_s())
            }
            None => None,
        };
        let done = produce_once(session, args, params, batch_size, &mut samples.latency).await?;
        samples.produced_mb_per_s.push(done.mb_per_s());
        samples.produced_rows_per_s.push(done.rows_per_s());
        if let Some(raw_rate) = raw_rate {
            samples.raw_mb_per_s.push(raw_rate);
            samples.ratios_to_raw.push(ratio(done.mb_per_s(), raw_rate));
        }
        if params.acks == Acks::All {
            let measured = session.disk.measure(batch_size, params.duration).await?;
            let disk_rate = ratio(measured.bytes as f64 / 1e6, measured.elapsed.as_secs_f64());
            samples.disk_mb_per_s.push(disk_rate);
            samples.ratios_to_disk.push(ratio(done.mb_per_s(), disk_rate));
        }
    }
    Ok(samples)
}

/// One repetition on fresh tables, its batch latencies added to `latency`.
async fn produce_once(
    session: &Session<'_>,
    args: &ProduceArgs,
    params: &produce::ProduceParams,
    batch_size: usize,
    latency: &mut Histogram<u64>,
) -> Result<Throughput, BenchError> {
    let connection = &session.connection;
    let mut paths = Vec::with_capacity(args.tables);
    for table in 0..args.tables {
        let name = format!("bench_produce_{table}");
        paths.push(workload::create_table(connection, &name, args.buckets).await?);
    }
    let (done, histogram) = produce::run(connection, &paths, params, batch_size).await?;
    for path in &paths {
        workload::drop_table(connection, path).await?;
    }
    merge_into(latency, &histogram)?;
    Ok(done)
}

impl Samples {
    /// Prints the lines of one writer count and returns its JSON entry.
    fn report(
        self,
        args: &ProduceArgs,
        params: &produce::ProduceParams,
        batch_size: usize,
    ) -> Value {
        let writers = params.writers;
        let concurrency = writers * args.buckets as usize;
        let (disk_rates, disk_ratios) =
            (Spread::of(self.disk_mb_per_s), Spread::of(self.ratios_to_disk));
        let (produced, raw_rates, ratios, rows_per_s) = (
            Spread::of(self.produced_mb_per_s),
            Spread::of(self.raw_mb_per_s),
            Spread::of(self.ratios_to_raw),
            Spread::of(self.produced_rows_per_s),
        );
        let latency_spectrum = plot::spectrum(&self.latency);
        let (latency, raw_latency) =
            (Percentiles::of(&self.latency), Percentiles::of(&self.raw_latency));
        println!(
            "  {writers} writer(s): produce {} | raw QUIC, same size and {concurrency} in flight, \
             {} | ratio {:.2} ({:.2}–{:.2}) | {} rows/s",
            produced.line("MB/s"),
            raw_rates.line("MB/s"),
            ratios.median,
            ratios.min,
            ratios.max,
            rows_per_s.median as u64
        );
        if params.acks == Acks::All {
            println!(
                "    disk: O_DIRECT write + fdatasync of the same size, one at a time, {} | \
                 produce {:.2}× of it",
                disk_rates.line("MB/s"),
                disk_ratios.median
            );
        }
        println!("    batch latency {}", latency.line());
        println!("    raw latency   {}", raw_latency.line());
        json!({
            "disk_durable_writes_mb_per_s": disk_rates,
            "ratio_to_disk": disk_ratios,
            "writers": writers,
            "buckets": args.buckets,
            "batch_rows": args.batch_rows,
            "batch_size_bytes": batch_size,
            "row_size_bytes": args.row_bytes,
            "append_rows": params.append_rows,
            "linger_ms": args.linger_ms,
            "tables": args.tables,
            "acks": args.acks,
            "compression": args.compression,
            "produce_mb_per_s": produced,
            "produce_rows_per_s": rows_per_s,
            "raw_requests_mb_per_s": raw_rates,
            "ratio_to_raw": ratios,
            "batch_latency": latency,
            "batch_latency_spectrum": latency_spectrum,
            "raw_latency": raw_latency,
        })
    }
}
