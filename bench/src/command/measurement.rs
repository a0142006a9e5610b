//! A run of measurements: the node under load (started here or reached), the machine's
//! facts, a [`Session`] the measurements share, each command's measurement in order, and the
//! JSON file of their figures.

use std::path::Path;

use serde_json::{json, Map, Value};
use ufer_wire::client::Connection;

use crate::command::{consume, e2e, kv, limits, mixed, produce};
use crate::disk_probe::DiskProbe;
use crate::error::BenchError;
use crate::machine::Machine;
use crate::options::GlobalOptions;
use crate::raw_quic::RawClient;
use crate::rows::ROW_SIZE_BYTES;
use crate::session::Session;
use crate::target::Target;

/// One command's measurement, with its options.
#[derive(Debug)]
pub enum Measurement {
    /// `ufer-bench produce`.
    Produce(produce::ProduceArgs),
    /// `ufer-bench consume`.
    Consume(consume::ConsumeArgs),
    /// `ufer-bench e2e`.
    E2e(e2e::E2eArgs),
    /// `ufer-bench mixed`.
    Mixed(mixed::MixedArgs),
    /// `ufer-bench upsert`.
    Upsert(kv::KvArgs),
    /// `ufer-bench lookup`.
    Lookup(kv::KvArgs),
    /// `ufer-bench limits`.
    Limits(limits::LimitsArgs),
}

impl Measurement {
    /// Runs it; its figures go under the key returned (none when it measured nothing).
    async fn run(&self, session: &Session<'_>) -> Result<Option<(&str, Value)>, BenchError> {
        let figures = match self {
            Measurement::Produce(args) => ("produce", produce::run(session, args).await?),
            Measurement::Consume(args) => ("consume", consume::run(session, args).await?),
            Measurement::E2e(args) => ("e2e", e2e::run(session, args).await?),
            Measurement::Mixed(args) => ("mixed", mixed::run(session, args).await?),
            Measurement::Upsert(args) => {
                ("upsert", kv::run(session, args, kv::Operation::Upsert).await?)
            }
            Measurement::Lookup(args) => {
                ("lookup", kv::run(session, args, kv::Operation::Lookup).await?)
            }
            Measurement::Limits(args) => match limits::run(session, args).await? {
                Some(figures) => ("limits", figures),
                None => return Ok(None),
            },
        };
        Ok(Some(figures))
    }
}

/// Runs `measurements` in order against the node `options` name, and writes their figures
/// to `--json` if given.
pub fn run(options: &GlobalOptions, measurements: &[Measurement]) -> Result<(), BenchError> {
    let target = Target::start(options)?;
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
    let disk = DiskProbe::new(&target, options);
    let results = runtime.block_on(measure(options, &target, disk, measurements))?;
    if let Some(path) = &options.json {
        write_json(path, options, &machine, results)?;
    }
    drop(target);
    Ok(())
}

async fn measure(
    options: &GlobalOptions,
    target: &Target,
    disk: DiskProbe,
    measurements: &[Measurement],
) -> Result<Map<String, Value>, BenchError> {
    let connection = Connection::new(target.client_config())?;
    let raw = match target.raw_endpoints() {
        Some(addresses) => {
            Some(RawClient::connect(addresses, &target.client_config().trust).await?)
        }
        None => None,
    };
    let session = Session { options, connection, raw, disk };
    let mut results = Map::new();
    for measurement in measurements {
        if let Some((key, figures)) = measurement.run(&session).await? {
            results.insert(key.into(), figures);
        }
    }
    if let Some(raw) = session.raw {
        raw.close().await;
    }
    session.connection.close().await;
    Ok(results)
}

fn write_json(
    path: &Path,
    options: &GlobalOptions,
    machine: &Machine,
    results: Map<String, Value>,
) -> Result<(), BenchError> {
    let document = json!({
        "machine": machine,
        "parameters": {
            "target": options.target,
            "shards": options.shards,
            "spin_before_park_us": options.spin_before_park_us,
            "udp_buffer_bytes": options.udp_buffer_bytes,
            "seconds": options.seconds,
            "warmup_seconds": options.warmup_seconds,
            "reps": options.reps,
            "row_size_bytes": ROW_SIZE_BYTES,
        },
        "results": results,
    });
    std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
    println!("figures written to {}", path.display());
    Ok(())
}
