//! `ufer-bench`: see the library's documentation, and `ufer-bench --help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use ufer_bench::keys;
use ufer_bench::machine::Machine;
use ufer_bench::progress;
use ufer_bench::raw_quic::RawClient;
use ufer_bench::report::{
    histogram_of, human_us, latency_histogram, merge_into, ratio, Percentiles, Spread,
};
use ufer_bench::rows::{self, ROW_SIZE_BYTES};
use ufer_bench::server::{self, ServerOptions};
use ufer_bench::target::{Embedded, Target};
use ufer_bench::workload::{self, consume, e2e, produce, round_trip};
use ufer_bench::BenchError;
use ufer_wire::client::{Connection, Trust};
use ufer_wire::protocol::messages::Acks;
use ufer_wire::Compression;

/// Load generator for ufer over QUIC, with the transport's limits measured beside every
/// figure. By default it starts its own node (a child process on a fresh data directory).
///
/// Examples:
///   ufer-bench produce --writers 1,4
///   ufer-bench e2e --rate 1000
///   ufer-bench --seconds 10 all --json results.json
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    /// `embedded` (start a node) or HOST:PORT of a running node's shard endpoint.
    #[arg(long, default_value = "embedded", global = true)]
    target: String,
    /// A running node's data directory, whose certificate to trust (with --target HOST:PORT).
    #[arg(long, global = true)]
    trust_dir: Option<PathBuf>,
    /// Where the embedded node's data directory is made (a fresh one inside, removed after).
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Shards of the embedded node (default: one per core).
    #[arg(long, global = true)]
    shards: Option<usize>,
    /// Do not pin the embedded node's shards to cores.
    #[arg(long, global = true)]
    no_pin: bool,
    /// Microseconds the embedded node's idle shards spin before parking.
    #[arg(long, default_value_t = 50, global = true)]
    spin_before_park_us: u64,
    /// UDP socket buffer of the embedded node's endpoints, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024, global = true)]
    udp_buffer_bytes: usize,
    /// Measured seconds per repetition.
    #[arg(long, default_value_t = 5.0, global = true)]
    seconds: f64,
    /// Warm-up seconds per repetition (not measured).
    #[arg(long, default_value_t = 1.0, global = true)]
    warmup_seconds: f64,
    /// Repetitions (figures are medians; runs being compared are interleaved).
    #[arg(long, default_value_t = 3, global = true)]
    reps: usize,
    /// Write every figure, the parameters and the machine's facts to this JSON file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Closed-loop produce next to raw QUIC requests of the same size and concurrency.
    Produce(ProduceArgs),
    /// Fill a table, then read it from the start with every column and with 2 of 20.
    Consume(ConsumeArgs),
    /// Produce-to-consume latency at a fixed rate (open loop).
    E2e(E2eArgs),
    /// The transport alone: one stream flat out, and small round trips.
    Limits(LimitsArgs),
    /// Closed-loop writers and tailing readers on one table at once.
    Mixed(MixedArgs),
    /// Upserts into a primary-key table (100-byte rows), uniform or zipfian keys.
    Upsert(KvArgs),
    /// Point lookups on a loaded primary-key table, uniform or zipfian keys.
    Lookup(KvArgs),
    /// The lake: tiering throughput, freshness, and union-read query times (a node in this
    /// process, restarted on the same data directory; --target is ignored).
    Lake(LakeArgs),
    /// produce, consume, e2e, mixed and limits with their defaults (consume's fill lasts --seconds;
    /// round trips: 1 000 per second of --seconds, 200 to 5 000).
    All,
    /// Latency-by-percentile plot (SVG) of runs saved with --json, overlaid.
    Plot(PlotArgs),
    /// (internal) The node side of an embedded run.
    #[command(hide = true)]
    Server(ServerArgs),
}

#[derive(Debug, Args)]
struct LakeArgs {
    /// MB of 1 KiB rows tiered for the throughput figure.
    #[arg(long, default_value_t = 512)]
    backlog_mb: u64,
    /// lake.freshness.ms of the freshness figure's table (the default is 180000).
    #[arg(long, default_value_t = 1_000)]
    freshness_ms: u64,
    /// Seconds the freshness figure produces.
    #[arg(long, default_value_t = 10.0)]
    freshness_seconds: f64,
    /// Rows of the union-read table (90 % tiered, 10 % live).
    #[arg(long, default_value_t = 10_000_000)]
    union_rows: u64,
    /// Buckets of each table.
    #[arg(long, default_value_t = 4)]
    buckets: u32,
    /// Only these parts (comma-separated: tiering, freshness, union; default all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Debug, Args)]
struct PlotArgs {
    /// JSON files written by --json, each optionally `FILE=LABEL` for the legend.
    #[arg(required = true)]
    runs: Vec<String>,
    /// Which latency: `e2e` (produce to consume) or `produce` (batch acknowledgements).
    #[arg(long, default_value = "e2e")]
    workload: String,
    /// The SVG file to write.
    #[arg(long, short, default_value = "latency.svg")]
    output: PathBuf,
    /// The plot's title.
    #[arg(long)]
    title: Option<String>,
    /// Only these e2e rates (rows/s), comma-separated: lines of very different scales
    /// flatten each other on one linear latency axis.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<u64>,
}

#[derive(Debug, Args)]
struct ProduceArgs {
    /// Writer counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    writers: Vec<usize>,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    buckets: u32,
    /// Rows per batch.
    #[arg(long, default_value_t = 1024)]
    batch_rows: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// none, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Tables written (writer i writes table i mod N), each with --buckets buckets.
    #[arg(long, default_value_t = 1)]
    tables: usize,
    /// Bytes of Arrow data per row (the 20 columns' strings grow or shrink; at least 280).
    #[arg(long, default_value_t = ROW_SIZE_BYTES)]
    row_bytes: usize,
    /// Rows per append call (default: a whole batch); smaller appends are batched by the
    /// writer up to --batch-rows or --linger-ms.
    #[arg(long)]
    append_rows: Option<usize>,
    /// How long a writer waits to fill a batch.
    #[arg(long, default_value_t = 1.0)]
    linger_ms: f64,
}

#[derive(Debug, Args)]
struct MixedArgs {
    /// Writers (closed loop, as in `produce`).
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Tailing readers, each reading every row.
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    buckets: u32,
    /// Rows per batch (1 KiB each).
    #[arg(long, default_value_t = 1024)]
    batch_rows: usize,
    /// Columns the readers read: `all`, or `projected` (2 of 20).
    #[arg(long, default_value = "all")]
    columns: String,
}

#[derive(Debug, Args)]
struct KvArgs {
    /// Keys in the key space (lookup loads every one first).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Key distributions to run, comma-separated: uniform, zipfian.
    #[arg(long, value_delimiter = ',', default_value = "uniform,zipfian")]
    distribution: Vec<String>,
    /// Concurrent writers (upsert) or readers (lookup).
    #[arg(long, default_value_t = 4)]
    actors: usize,
    /// Rows per upsert request, or keys per lookup request.
    #[arg(long, default_value_t = 100)]
    batch_rows: usize,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    buckets: u32,
}

#[derive(Debug, Args)]
struct ConsumeArgs {
    /// Seconds of produce (4 writers, 1 MiB batches) that fill the table first.
    #[arg(long, default_value_t = 5.0)]
    fill_seconds: f64,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    buckets: u32,
}

#[derive(Debug, Args)]
struct E2eArgs {
    /// Target rates, comma-separated for several runs: rows per second (`4000`), or MB of
    /// row data per second (`4MB`, 1 KiB rows).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    rate: Vec<String>,
    /// Rows per batch.
    #[arg(long, default_value_t = 10)]
    batch_rows: usize,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    buckets: u32,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
}

#[derive(Debug, Args)]
struct LimitsArgs {
    /// Round trips measured one at a time.
    #[arg(long, default_value_t = 5_000)]
    ping_samples: usize,
}

#[derive(Debug, Args)]
struct ServerArgs {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    shards: usize,
    #[arg(long)]
    spin_before_park_us: u64,
    #[arg(long)]
    udp_buffer_bytes: usize,
    #[arg(long)]
    no_pin: bool,
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(&cli) {
        eprintln!("ufer-bench: {error}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> Result<(), BenchError> {
    if let Command::Plot(args) = &cli.command {
        return plot(args);
    }
    if let Command::Lake(args) = &cli.command {
        let params = ufer_bench::lake::LakeParams {
            backlog_mb: args.backlog_mb,
            freshness_ms: args.freshness_ms,
            freshness_run: Duration::from_secs_f64(args.freshness_seconds),
            union_rows: args.union_rows,
            buckets: args.buckets,
            shards: cli.shards.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
            reps: cli.reps,
            parts: args.only.clone(),
        };
        let dir = cli.dir.clone().unwrap_or_else(std::env::temp_dir);
        let figures = ufer_bench::lake::run(&params, &dir)?;
        if let Some(path) = &cli.json {
            let machine = Machine::read(Some(&dir));
            std::fs::write(
                path,
                serde_json::to_vec_pretty(&json!({ "machine": machine, "lake": figures }))?,
            )?;
        }
        return Ok(());
    }
    if let Command::Server(args) = &cli.command {
        return server::run(&ServerOptions {
            data_dir: args.data_dir.clone(),
            shards: args.shards,
            pin: !args.no_pin,
            spin_before_park: Duration::from_micros(args.spin_before_park_us),
            udp_buffer_size_bytes: args.udp_buffer_bytes,
        });
    }
    let target = target(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let machine = Machine::read(target.data_dir().as_deref());
    println!(
        "machine: {} cores, {}, kernel {}, data on {}, rmem_max {} KiB",
        machine.cores,
        machine.cpu,
        machine.kernel,
        if machine.data_file_system.is_empty() { "?" } else { &machine.data_file_system },
        machine.rmem_max_bytes / 1024
    );
    let disk = DiskProbe::new(&target, cli);
    let results = runtime.block_on(async {
        let connection = Connection::new(target.client_config())?;
        let raw = match target.raw_endpoints() {
            Some(addresses) => Some(RawClient::connect(addresses, &trust(&target)).await?),
            None => None,
        };
        let mut results = serde_json::Map::new();
        let defaults_produce = ProduceArgs {
            writers: vec![1, 4],
            buckets: 4,
            batch_rows: 1024,
            acks: "all".into(),
            compression: "none".into(),
            tables: 1,
            row_bytes: ROW_SIZE_BYTES,
            append_rows: None,
            linger_ms: 1.0,
        };
        let defaults_e2e =
            E2eArgs { rate: vec!["1000".into()], batch_rows: 10, buckets: 4, acks: "all".into() };
        // `all` scales its fill and sample counts with --seconds (a short smoke run stays short).
        let defaults_consume = ConsumeArgs { fill_seconds: cli.seconds, buckets: 4 };
        let defaults_limits =
            LimitsArgs { ping_samples: ((cli.seconds * 1_000.0) as usize).clamp(200, 5_000) };
        let run_all = matches!(cli.command, Command::All);
        if let Some(args) = match &cli.command {
            Command::Produce(args) => Some(args),
            Command::All => Some(&defaults_produce),
            _ => None,
        } {
            results.insert(
                "produce".into(),
                run_produce(cli, &connection, raw.as_ref(), &disk, args).await?,
            );
        }
        if let Some(args) = match &cli.command {
            Command::Consume(args) => Some(args),
            Command::All => Some(&defaults_consume),
            _ => None,
        } {
            results.insert("consume".into(), run_consume(cli, &connection, args).await?);
        }
        if let Some(args) = match &cli.command {
            Command::E2e(args) => Some(args),
            Command::All => Some(&defaults_e2e),
            _ => None,
        } {
            results
                .insert("e2e".into(), run_e2e(cli, &connection, raw.as_ref(), &disk, args).await?);
        }
        let defaults_mixed = MixedArgs {
            writers: 2,
            readers: 2,
            buckets: 4,
            batch_rows: 1024,
            columns: "all".into(),
        };
        if let Some(args) = match &cli.command {
            Command::Mixed(args) => Some(args),
            Command::All => Some(&defaults_mixed),
            _ => None,
        } {
            results.insert("mixed".into(), run_mixed(cli, &connection, args).await?);
        }
        // `all` runs them on a key space that loads in about --seconds.
        let defaults_kv = KvArgs {
            keys: ((cli.seconds * 20_000.0) as u64).clamp(1_000, 1_000_000),
            distribution: vec!["uniform".into(), "zipfian".into()],
            actors: 4,
            batch_rows: 100,
            buckets: 4,
        };
        if let Some(args) = match &cli.command {
            Command::Upsert(args) => Some(args),
            Command::All => Some(&defaults_kv),
            _ => None,
        } {
            results.insert("upsert".into(), run_kv(cli, &connection, args, false).await?);
        }
        let defaults_lookup = KvArgs { batch_rows: 1, ..defaults_kv };
        if let Some(args) = match &cli.command {
            Command::Lookup(args) => Some(args),
            Command::All => Some(&defaults_lookup),
            _ => None,
        } {
            results.insert("lookup".into(), run_kv(cli, &connection, args, true).await?);
        }
        if let Some(args) = match &cli.command {
            Command::Limits(args) => Some(args),
            _ if run_all => Some(&defaults_limits),
            _ => None,
        } {
            match &raw {
                Some(raw) => {
                    results.insert(
                        "limits".into(),
                        run_limits(cli, &connection, raw, &disk, args).await?,
                    );
                }
                None => println!("limits: only measured against an embedded node"),
            }
        }
        if let Some(raw) = raw {
            raw.close().await;
        }
        connection.close().await;
        Ok::<_, BenchError>(results)
    })?;
    if let Some(path) = &cli.json {
        let document = json!({
            "machine": machine,
            "parameters": {
                "target": cli.target,
                "shards": cli.shards,
                "spin_before_park_us": cli.spin_before_park_us,
                "udp_buffer_bytes": cli.udp_buffer_bytes,
                "seconds": cli.seconds,
                "warmup_seconds": cli.warmup_seconds,
                "reps": cli.reps,
                "row_size_bytes": ROW_SIZE_BYTES,
            },
            "results": results,
        });
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
        println!("figures written to {}", path.display());
    }
    drop(target);
    Ok(())
}

fn target(cli: &Cli) -> Result<Target, BenchError> {
    if cli.target == "embedded" {
        let shards = cli
            .shards
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cores| cores.get()));
        let options = ServerOptions {
            data_dir: PathBuf::new(),
            shards,
            pin: !cli.no_pin,
            spin_before_park: Duration::from_micros(cli.spin_before_park_us),
            udp_buffer_size_bytes: cli.udp_buffer_bytes,
        };
        let parent = cli.dir.clone().unwrap_or_else(std::env::temp_dir);
        let embedded = Embedded::start(&parent, &options)?;
        println!(
            "embedded node: {shards} shard(s){}, spin before park {} µs, UDP buffers {} KiB, data in {}",
            if cli.no_pin { "" } else { " pinned" },
            cli.spin_before_park_us,
            cli.udp_buffer_bytes / 1024,
            embedded.data_dir().display()
        );
        return Ok(Target::Embedded(embedded));
    }
    let bootstrap: SocketAddr = cli.target.parse()?;
    let Some(dir) = &cli.trust_dir else {
        return Err(BenchError::Other(
            "--target HOST:PORT needs --trust-dir (the node's data directory)".into(),
        ));
    };
    Ok(Target::Remote { bootstrap, trust: Trust::DataDir(dir.clone()) })
}

fn trust(target: &Target) -> Trust {
    target.client_config().trust
}

/// An e2e target rate: rows per second, or `NMB` for N MB of row data per second.
fn rows_per_second(text: &str) -> Result<u64, BenchError> {
    let invalid = || BenchError::Other(format!("--rate {text:?}: use rows per second or e.g. 4MB"));
    let trimmed = text.trim();
    match trimmed.strip_suffix("MB").or_else(|| trimmed.strip_suffix("mb")) {
        Some(megabytes) => {
            let megabytes: f64 = megabytes.trim().parse().map_err(|_| invalid())?;
            let rows = (megabytes * 1e6 / ROW_SIZE_BYTES as f64).round() as u64;
            if rows == 0 {
                return Err(invalid());
            }
            Ok(rows)
        }
        None => trimmed.parse::<u64>().ok().filter(|rows| *rows > 0).ok_or_else(invalid),
    }
}

fn acks(text: &str) -> Result<Acks, BenchError> {
    match text {
        "0" | "none" => Ok(Acks::None),
        "1" | "leader" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        other => Err(BenchError::Other(format!("--acks {other:?}: use 0, 1 or all"))),
    }
}

fn compression(text: &str) -> Result<Compression, BenchError> {
    match text {
        "none" => Ok(Compression::None),
        "lz4" => Ok(Compression::Lz4Frame),
        "zstd" => Ok(Compression::Zstd),
        other => Err(BenchError::Other(format!("--compression {other:?}: use none, lz4 or zstd"))),
    }
}

fn durations(cli: &Cli) -> (Duration, Duration) {
    (
        Duration::from_secs_f64(cli.warmup_seconds.max(0.0)),
        Duration::from_secs_f64(cli.seconds.max(0.1)),
    )
}

async fn run_produce(
    cli: &Cli,
    connection: &Connection,
    raw: Option<&RawClient>,
    disk: &DiskProbe,
    args: &ProduceArgs,
) -> Result<Value, BenchError> {
    let (warmup, duration) = durations(cli);
    let schema = rows::arrow_schema()?;
    if args.row_bytes < rows::ROW_SIZE_MIN_BYTES || args.tables == 0 {
        return Err(BenchError::Other(format!(
            "--row-bytes must be at least {} and --tables at least 1",
            rows::ROW_SIZE_MIN_BYTES
        )));
    }
    let batch_size = produce::encoded_batch_size_of(&schema, args.batch_rows, args.row_bytes)?;
    let append_rows = args.append_rows.unwrap_or(args.batch_rows).clamp(1, args.batch_rows);
    println!(
        "\nproduce: acks={}, {} rows × {} B = {:.2} MiB batches ({} rows per append, linger {} ms), {} table(s) × {} buckets, compression {}; {} s measured after {} s warm-up, {} reps",
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
        cli.reps
    );
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
        let concurrency = writers * args.buckets as usize;
        let names: Vec<String> =
            (0..args.tables).map(|table| format!("bench_produce_{table}")).collect();
        let (mut produced, mut raw_rates, mut ratios, mut rows_per_s) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut disk_rates, mut disk_ratios) = (Vec::new(), Vec::new());
        let durable = params.acks == Acks::All;
        let mut latency = latency_histogram();
        let mut raw_latency = latency_histogram();
        for _ in progress::repetitions(format!("produce, {writers} writer(s)"), cli.reps) {
            // Interleaved: raw, then produce, each repetition.
            let raw_rate = match raw {
                Some(raw) => {
                    let (done, histogram) =
                        raw.requests(batch_size, concurrency, warmup, duration).await?;
                    merge_into(&mut raw_latency, &histogram)?;
                    Some(done.mb_per_s())
                }
                None => None,
            };
            let mut paths = Vec::with_capacity(names.len());
            for name in &names {
                paths.push(workload::create_table(connection, name, args.buckets).await?);
            }
            let (done, histogram) = produce::run(connection, &paths, &params, batch_size).await?;
            for path in &paths {
                workload::drop_table(connection, path).await?;
            }
            merge_into(&mut latency, &histogram)?;
            produced.push(done.mb_per_s());
            rows_per_s.push(done.rows_per_s());
            if let Some(raw_rate) = raw_rate {
                raw_rates.push(raw_rate);
                ratios.push(ratio(done.mb_per_s(), raw_rate));
            }
            if durable {
                let measured = disk.measure(batch_size, duration).await?;
                let disk_rate = ratio(measured.bytes as f64 / 1e6, measured.elapsed.as_secs_f64());
                disk_rates.push(disk_rate);
                disk_ratios.push(ratio(done.mb_per_s(), disk_rate));
            }
        }
        let (disk_rates, disk_ratios) = (Spread::of(disk_rates), Spread::of(disk_ratios));
        let (produced, raw_rates, ratios, rows_per_s) = (
            Spread::of(produced),
            Spread::of(raw_rates),
            Spread::of(ratios),
            Spread::of(rows_per_s),
        );
        let latency_spectrum = ufer_bench::plot::spectrum(&latency);
        let (latency, raw_latency) = (Percentiles::of(&latency), Percentiles::of(&raw_latency));
        println!(
            "  {writers} writer(s): produce {} | raw QUIC, same size and {concurrency} in flight, {} | ratio {:.2} ({:.2}–{:.2}) | {} rows/s",
            produced.line("MB/s"),
            raw_rates.line("MB/s"),
            ratios.median,
            ratios.min,
            ratios.max,
            rows_per_s.median as u64
        );
        if durable {
            println!(
                "    disk: O_DIRECT write + fdatasync of the same size, one at a time, {} | produce {:.2}× of it",
                disk_rates.line("MB/s"),
                disk_ratios.median
            );
        }
        println!("    batch latency {}", latency.line());
        println!("    raw latency   {}", raw_latency.line());
        out.push(json!({
            "disk_durable_writes_mb_per_s": disk_rates,
            "ratio_to_disk": disk_ratios,
            "writers": writers,
            "buckets": args.buckets,
            "batch_rows": args.batch_rows,
            "batch_size_bytes": batch_size,
            "row_size_bytes": args.row_bytes,
            "append_rows": append_rows,
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
        }));
    }
    Ok(Value::Array(out))
}

async fn run_mixed(
    cli: &Cli,
    connection: &Connection,
    args: &MixedArgs,
) -> Result<Value, BenchError> {
    let (warmup, duration) = durations(cli);
    let columns = match args.columns.as_str() {
        "all" => None,
        "projected" => Some(rows::projected_columns()),
        other => {
            return Err(BenchError::Other(format!("--columns is all or projected, not {other:?}")))
        }
    };
    let schema = rows::arrow_schema()?;
    let batch_size = produce::encoded_batch_size(&schema, args.batch_rows)?;
    println!(
        "\nmixed: {} writer(s) (acks=all, {:.2} MiB batches) and {} tailing reader(s) ({} columns), {} buckets; {} s measured after {} s warm-up, {} reps",
        args.writers,
        batch_size as f64 / (1024.0 * 1024.0),
        args.readers,
        args.columns,
        args.buckets,
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        cli.reps
    );
    let params = workload::mixed::MixedParams {
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
    };
    let (mut produced, mut consumed, mut per_reader) = (Vec::new(), Vec::new(), Vec::new());
    let mut latency = latency_histogram();
    for _ in progress::repetitions("mixed", cli.reps) {
        let path = workload::create_table(connection, "bench_mixed", args.buckets).await?;
        let result = workload::mixed::run(connection, &path, &params, batch_size).await?;
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
        "  produce {} | rows reaching all readers {} of table data (each reader got {:.2}× the rows written in the window)",
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

async fn run_kv(
    cli: &Cli,
    connection: &Connection,
    args: &KvArgs,
    lookup: bool,
) -> Result<Value, BenchError> {
    let (warmup, duration) = durations(cli);
    let name = if lookup { "lookup" } else { "upsert" };
    println!(
        "\n{name}: {} {}(s), {} {} per request, {} keys of {} bytes, {} buckets; {} s measured after {} s warm-up, {} reps",
        args.actors,
        if lookup { "reader" } else { "writer" },
        args.batch_rows,
        if lookup { "keys" } else { "rows" },
        args.keys,
        workload::kv::KV_ROW_SIZE_BYTES,
        args.buckets,
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        cli.reps
    );
    let mut figures = serde_json::Map::new();
    for distribution in &args.distribution {
        let distribution = keys::Distribution::parse(distribution).map_err(BenchError::Other)?;
        let params = workload::kv::KvParams {
            actors: args.actors,
            key_count: args.keys,
            distribution,
            batch_rows: args.batch_rows,
            warmup,
            duration,
        };
        let (mut rates, mut latency) = (Vec::new(), latency_histogram());
        for rep in progress::repetitions(name, cli.reps) {
            let path = workload::kv::create_table(connection, "bench_kv", args.buckets).await?;
            let (done, histogram) = if lookup {
                let loading = Instant::now();
                workload::kv::load(connection, &path, args.keys).await?;
                if rep == 0 {
                    println!(
                        "  loaded {} keys in {:.1} s",
                        args.keys,
                        loading.elapsed().as_secs_f64()
                    );
                }
                workload::kv::run_lookup(connection, &path, &params).await?
            } else {
                workload::kv::run_upsert(connection, &path, &params).await?
            };
            workload::drop_table(connection, &path).await?;
            rates.push(done.rows_per_s());
            merge_into(&mut latency, &histogram)?;
        }
        let rates = Spread::of(rates);
        let latency = Percentiles::of(&latency);
        println!("  {:<8} {}", distribution.name(), rates.line("rows/s"));
        println!("    request latency {}", latency.line());
        figures.insert(
            distribution.name().into(),
            json!({ "rows_per_s": rates, "request_latency": latency }),
        );
    }
    Ok(json!({
        "actors": args.actors,
        "keys": args.keys,
        "batch_rows": args.batch_rows,
        "buckets": args.buckets,
        "row_size_bytes": workload::kv::KV_ROW_SIZE_BYTES,
        "by_distribution": figures,
    }))
}

async fn run_consume(
    cli: &Cli,
    connection: &Connection,
    args: &ConsumeArgs,
) -> Result<Value, BenchError> {
    let path = workload::create_table(connection, "bench_consume", args.buckets).await?;
    let fill = produce::ProduceParams {
        writers: 4,
        batch_rows: 1024,
        append_rows: 1024,
        linger: Duration::from_millis(1),
        row_size_bytes: ROW_SIZE_BYTES,
        acks: Acks::All,
        compression: Compression::None,
        warmup: Duration::ZERO,
        duration: Duration::from_secs_f64(args.fill_seconds.max(0.1)),
    };
    let schema = rows::arrow_schema()?;
    let batch_size = produce::encoded_batch_size(&schema, fill.batch_rows)?;
    let (filled, _) =
        produce::run(connection, std::slice::from_ref(&path), &fill, batch_size).await?;
    println!(
        "\nconsume: {} rows ({:.0} MB) in {} buckets, read from the start, {} reps",
        filled.rows,
        filled.bytes as f64 / 1e6,
        args.buckets,
        cli.reps
    );
    let mut all_rows = Vec::new();
    let mut projected_rows = Vec::new();
    let mut all_wire = Vec::new();
    let mut projected_wire = Vec::new();
    let mut all_table = Vec::new();
    let mut projected_table = Vec::new();
    for _ in progress::repetitions("consume", cli.reps) {
        let all = consume::run(connection, &path, None).await?;
        all_rows.push(all.table.rows_per_s());
        all_table.push(all.table.mb_per_s());
        all_wire.push(all.wire_bytes as f64 / all.table.seconds / 1e6);
        let projected = consume::run(connection, &path, Some(rows::projected_columns())).await?;
        projected_rows.push(projected.table.rows_per_s());
        projected_table.push(projected.table.mb_per_s());
        projected_wire.push(projected.wire_bytes as f64 / projected.table.seconds / 1e6);
    }
    workload::drop_table(connection, &path).await?;
    let summary = |rows: Vec<f64>, table: Vec<f64>, wire: Vec<f64>| {
        (Spread::of(rows), Spread::of(table), Spread::of(wire))
    };
    let (all_rows, all_table, all_wire) = summary(all_rows, all_table, all_wire);
    let (projected_rows, projected_table, projected_wire) =
        summary(projected_rows, projected_table, projected_wire);
    println!(
        "  all 20 columns: {} | table data {} | received {}",
        all_rows.line("rows/s"),
        all_table.line("MB/s"),
        all_wire.line("MB/s")
    );
    println!(
        "  2 of 20 (id, sent_us): {} | table data {} | received {} | {:.1}x the rows/s of all columns",
        projected_rows.line("rows/s"),
        projected_table.line("MB/s"),
        projected_wire.line("MB/s"),
        ratio(projected_rows.median, all_rows.median)
    );
    Ok(json!({
        "rows": filled.rows,
        "buckets": args.buckets,
        "all_columns": { "rows_per_s": all_rows, "table_mb_per_s": all_table, "wire_mb_per_s": all_wire },
        "projected_2_of_20": { "rows_per_s": projected_rows, "table_mb_per_s": projected_table, "wire_mb_per_s": projected_wire },
    }))
}

async fn run_e2e(
    cli: &Cli,
    connection: &Connection,
    raw: Option<&RawClient>,
    disk: &DiskProbe,
    args: &E2eArgs,
) -> Result<Value, BenchError> {
    let (warmup, duration) = durations(cli);
    let mut out = Vec::new();
    println!(
        "\ne2e: open loop, {} rows per batch, acks={}, {} buckets; spin before park {} µs; {} s measured after {} s warm-up, {} reps",
        args.batch_rows,
        args.acks,
        args.buckets,
        cli.spin_before_park_us,
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        cli.reps
    );
    for rate in &args.rate {
        let rate = rows_per_second(rate)?;
        let params = e2e::E2eParams {
            rate_rows_per_s: rate,
            batch_rows: args.batch_rows,
            acks: acks(&args.acks)?,
            warmup,
            duration,
        };
        let mut latency = latency_histogram();
        let mut acked = latency_histogram();
        let (mut p50s, mut p99s, mut p999s) = (Vec::new(), Vec::new(), Vec::new());
        for _ in progress::repetitions(format!("e2e, {rate} rows/s"), cli.reps) {
            let path = workload::create_table(connection, "bench_e2e", args.buckets).await?;
            let result = e2e::run(connection, &path, &params).await?;
            workload::drop_table(connection, &path).await?;
            let percentiles = Percentiles::of(&result.latency);
            p50s.push(percentiles.p50_us as f64);
            p99s.push(percentiles.p99_us as f64);
            p999s.push(percentiles.p999_us as f64);
            merge_into(&mut latency, &result.latency)?;
            merge_into(&mut acked, &result.acked)?;
        }
        let merged = Percentiles::of(&latency);
        let acked = Percentiles::of(&acked);
        // The floor: one durable write of a batch of this size and one QUIC round trip.
        let schema = rows::arrow_schema()?;
        let batch_size = produce::encoded_batch_size(&schema, args.batch_rows)?;
        let write = disk.measure(batch_size, Duration::from_secs(1)).await?;
        let write_p50 = Percentiles::of(&histogram_of(&write.latencies)).p50_us;
        let round_trip_p50 = match raw {
            Some(raw) => Percentiles::of(&raw.ping_pong(64, 1_000).await?).p50_us,
            None => 0,
        };
        let floor = write_p50 + round_trip_p50;
        let (p50s, p99s, p999s) = (Spread::of(p50s), Spread::of(p99s), Spread::of(p999s));
        println!(
            "  {rate} rows/s = {:.2} MB/s: {} ({} rows)",
            rate as f64 * ROW_SIZE_BYTES as f64 / 1e6,
            merged.line(),
            merged.samples
        );
        println!("    writer acknowledged: {}", acked.line());
        println!(
            "    floor: durable write of {} KiB p50 {} + QUIC round trip p50 {} = {} | e2e p50 {:.1}× of it",
            batch_size / 1024,
            human_us(write_p50),
            human_us(round_trip_p50),
            human_us(floor),
            ratio(merged.p50_us as f64, floor as f64)
        );
        println!(
            "    per rep: p50 {}–{}, p99 {}–{}, p99.9 {}–{}",
            human_us(p50s.min as u64),
            human_us(p50s.max as u64),
            human_us(p99s.min as u64),
            human_us(p99s.max as u64),
            human_us(p999s.min as u64),
            human_us(p999s.max as u64)
        );
        out.push(json!({
            "rate_rows_per_s": rate,
            "rate_mb_per_s": rate as f64 * ROW_SIZE_BYTES as f64 / 1e6,
            "batch_rows": args.batch_rows,
            "acks": args.acks,
            "spin_before_park_us": cli.spin_before_park_us,
            "udp_buffer_bytes": cli.udp_buffer_bytes,
            "latency": merged,
            "latency_spectrum": ufer_bench::plot::spectrum(&latency),
            "acknowledged": acked,
            "floor_us": { "durable_write_p50": write_p50, "quic_round_trip_p50": round_trip_p50 },
            "p50_us_per_rep": p50s,
            "p99_us_per_rep": p99s,
            "p999_us_per_rep": p999s,
        }));
    }
    Ok(Value::Array(out))
}

async fn run_limits(
    cli: &Cli,
    connection: &Connection,
    raw: &RawClient,
    disk: &DiskProbe,
    args: &LimitsArgs,
) -> Result<Value, BenchError> {
    let (warmup, duration) = durations(cli);
    let mut streams = Vec::new();
    let mut pings = latency_histogram();
    let mut node_pings = latency_histogram();
    let mut produce_leader = latency_histogram();
    let mut produce_all = latency_histogram();
    let mut append_leader = latency_histogram();
    let mut append_all = latency_histogram();
    let (mut disk_large, mut disk_large_latency, mut disk_small_latency) =
        (Vec::new(), latency_histogram(), latency_histogram());
    for _ in progress::repetitions("limits", cli.reps) {
        let large = disk.measure(1 << 20, duration).await?;
        disk_large.push(ratio(large.bytes as f64 / 1e6, large.elapsed.as_secs_f64()));
        merge_into(&mut disk_large_latency, &histogram_of(&large.latencies))?;
        let small = disk.measure(10 * 1024, duration).await?;
        merge_into(&mut disk_small_latency, &histogram_of(&small.latencies))?;
        let samples = args.ping_samples / 2;
        merge_into(
            &mut produce_leader,
            &round_trip::produce(connection, 10, Acks::Leader, samples).await?,
        )?;
        merge_into(
            &mut produce_all,
            &round_trip::produce(connection, 10, Acks::All, samples).await?,
        )?;
        merge_into(
            &mut append_leader,
            &round_trip::append(connection, 10, Acks::Leader, samples).await?,
        )?;
        merge_into(
            &mut append_all,
            &round_trip::append(connection, 10, Acks::All, samples).await?,
        )?;
        streams.push(raw.stream(warmup, duration).await?.mb_per_s());
        merge_into(&mut pings, &raw.ping_pong(64, args.ping_samples).await?)?;
        merge_into(&mut node_pings, &round_trip::metadata(connection, args.ping_samples).await?)?;
    }
    let streams = Spread::of(streams);
    let pings = Percentiles::of(&pings);
    let node_pings = Percentiles::of(&node_pings);
    let (produce_leader, produce_all) =
        (Percentiles::of(&produce_leader), Percentiles::of(&produce_all));
    let (append_leader, append_all) =
        (Percentiles::of(&append_leader), Percentiles::of(&append_all));
    println!("\nlimits (raw QUIC between the same two processes, {} reps):", cli.reps);
    let disk_large = Spread::of(disk_large);
    let (disk_large_latency, disk_small_latency) =
        (Percentiles::of(&disk_large_latency), Percentiles::of(&disk_small_latency));
    println!(
        "  disk, O_DIRECT write + fdatasync of 1 MiB, one at a time: {}; each {}",
        disk_large.line("MB/s"),
        disk_large_latency.line()
    );
    println!(
        "  disk, O_DIRECT write + fdatasync of 10 KiB, one at a time: {}",
        disk_small_latency.line()
    );
    println!("  one stream flat out: {}", streams.line("MB/s"));
    println!("  64-byte round trips, one at a time: {}", pings.line());
    println!(
        "  the node's own round trip (a Metadata request, one at a time): {}",
        node_pings.line()
    );
    println!("  produce of 10 rows (10 KiB), one at a time, acks=1: {}", produce_leader.line());
    println!("  produce of 10 rows (10 KiB), one at a time, acks=all: {}", produce_all.line());
    println!(
        "  the same through an AppendWriter (append, await the ack), acks=1: {}",
        append_leader.line()
    );
    println!(
        "  the same through an AppendWriter (append, await the ack), acks=all: {}",
        append_all.line()
    );
    Ok(json!({
        "disk_durable_1mib_mb_per_s": disk_large,
        "disk_durable_1mib_latency": disk_large_latency,
        "disk_durable_10kib_latency": disk_small_latency,
        "stream_mb_per_s": streams,
        "ping_pong_64b": pings,
        "node_metadata_round_trip": node_pings,
        "produce_10_rows_acks_1": produce_leader,
        "produce_10_rows_acks_all": produce_all,
        "append_writer_10_rows_acks_1": append_leader,
        "append_writer_10_rows_acks_all": append_all,
    }))
}

/// Where the disk's own limit is measured: beside the node's data directory (same file
/// system) when it is on this machine, otherwise under `--dir` or the temporary directory.
struct DiskProbe {
    dir: PathBuf,
}

impl DiskProbe {
    fn new(target: &Target, cli: &Cli) -> Self {
        let parent = target
            .data_dir()
            .and_then(|dir| dir.parent().map(PathBuf::from))
            .or_else(|| cli.dir.clone())
            .unwrap_or_else(std::env::temp_dir);
        Self { dir: parent.join(format!("ufer-bench-disk-probe-{}", std::process::id())) }
    }

    /// Durable writes of `write_bytes`, one at a time, for `duration`.
    async fn measure(
        &self,
        write_bytes: usize,
        duration: Duration,
    ) -> Result<ufer_node::disk_check::DurableWrites, BenchError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            ufer_node::disk_check::durable_write_limit(&dir, write_bytes, duration)
        })
        .await
        .map_err(|error| BenchError::Other(format!("the disk probe failed: {error}")))?
        .map_err(|error| BenchError::Other(error.to_string()))
    }
}

/// `ufer-bench plot`: one line per run and rate (e2e) or writer count (produce).
fn plot(args: &PlotArgs) -> Result<(), BenchError> {
    use ufer_bench::plot::{svg, Point, Series};
    let (key, spectrum_key, what) = match args.workload.as_str() {
        "e2e" => ("e2e", "latency_spectrum", "produce-to-consume latency"),
        "produce" => ("produce", "batch_latency_spectrum", "produce batch latency"),
        other => {
            return Err(BenchError::Other(format!("--workload is e2e or produce, not {other:?}")))
        }
    };
    let mut series = Vec::new();
    for run in &args.runs {
        let (file, label) = match run.split_once('=') {
            Some((file, label)) => (file, label.to_string()),
            None => (run.as_str(), run.trim_end_matches(".json").to_string()),
        };
        let document: Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        let entries = document["results"][key].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            return Err(BenchError::Other(format!("{file} has no {key} results")));
        }
        for entry in entries {
            let rate = entry["rate_rows_per_s"].as_u64();
            if key == "e2e"
                && !args.rates.is_empty()
                && !rate.is_some_and(|rate| args.rates.contains(&rate))
            {
                continue;
            }
            let points: Vec<Point> =
                serde_json::from_value(entry[spectrum_key].clone()).map_err(|_| {
                    BenchError::Other(format!("{file}: no {spectrum_key} (an older run?)"))
                })?;
            let detail = match key {
                "e2e" => format!("{} rows/s", entry["rate_rows_per_s"]),
                _ => format!("{} writer(s)", entry["writers"]),
            };
            series.push(Series { label: format!("{label}, {detail}"), points });
        }
    }
    let title = args.title.clone().unwrap_or_else(|| format!("ufer {what} by percentile"));
    std::fs::write(&args.output, svg(&title, &series))?;
    println!("{} line(s) plotted to {}", series.len(), args.output.display());
    Ok(())
}
