//! `ufer-bench`: the command line, and which command runs; see the library's documentation,
//! and `ufer-bench --help`.

use clap::{Parser, Subcommand};
use ufer_bench::command::consume::ConsumeArgs;
use ufer_bench::command::e2e::E2eArgs;
use ufer_bench::command::kv::KvArgs;
use ufer_bench::command::lake::LakeArgs;
use ufer_bench::command::limits::LimitsArgs;
use ufer_bench::command::measurement::{self, Measurement};
use ufer_bench::command::mixed::MixedArgs;
use ufer_bench::command::plot::PlotArgs;
use ufer_bench::command::produce::ProduceArgs;
use ufer_bench::command::server::ServerArgs;
use ufer_bench::command::{self, all};
use ufer_bench::options::GlobalOptions;
use ufer_bench::BenchError;

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
    #[command(flatten)]
    options: GlobalOptions,
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
    /// produce, consume, e2e, mixed and limits with their defaults (consume's fill lasts
    /// --seconds; round trips: 1 000 per second of --seconds, 200 to 5 000).
    All,
    /// Latency-by-percentile plot (SVG) of runs saved with --json, overlaid.
    Plot(PlotArgs),
    /// (internal) The node side of an embedded run.
    #[command(hide = true)]
    Server(ServerArgs),
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        eprintln!("ufer-bench: {error}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<(), BenchError> {
    let options = &cli.options;
    let measurement = match cli.command {
        Command::Produce(args) => Measurement::Produce(args),
        Command::Consume(args) => Measurement::Consume(args),
        Command::E2e(args) => Measurement::E2e(args),
        Command::Limits(args) => Measurement::Limits(args),
        Command::Mixed(args) => Measurement::Mixed(args),
        Command::Upsert(args) => Measurement::Upsert(args),
        Command::Lookup(args) => Measurement::Lookup(args),
        Command::All => return measurement::run(options, &all::measurements(options)?),
        Command::Lake(args) => return command::lake::run(options, &args),
        Command::Plot(args) => return command::plot::run(&args),
        Command::Server(args) => return command::server::run(&args),
    };
    measurement::run(options, &[measurement])
}
