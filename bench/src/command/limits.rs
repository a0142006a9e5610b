//! `ufer-bench limits`: the ceilings under every other figure, measured between the same two
//! processes: the disk's durable writes, one raw QUIC stream flat out, raw and node round
//! trips, and single produce requests and appends. Embedded runs only (the raw endpoints
//! are beside the embedded node).

use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use ufer_wire::protocol::messages::Acks;

use crate::error::BenchError;
use crate::progress;
use crate::raw_quic::RawClient;
use crate::report::{histogram_of, latency_histogram, merge_into, ratio, Percentiles, Spread};
use crate::session::Session;
use crate::workload::round_trip;

/// The options of `ufer-bench limits`.
#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// Round trips measured one at a time.
    #[arg(long, default_value_t = 5_000)]
    pub ping_samples: usize,
}

/// Measures the limits; `None` (and a line saying so) against a running node.
pub async fn run(session: &Session<'_>, args: &LimitsArgs) -> Result<Option<Value>, BenchError> {
    let Some(raw) = &session.raw else {
        println!("limits: only measured against an embedded node");
        return Ok(None);
    };
    let mut samples = Samples::new();
    for _ in progress::repetitions("limits", session.options.reps) {
        samples.measure(session, raw, args).await?;
    }
    let figures = samples.figures();
    figures.print(session.options.reps);
    Ok(Some(serde_json::to_value(figures)?))
}

/// What the repetitions measured.
struct Samples {
    disk_1mib_mb_per_s: Vec<f64>,
    disk_1mib_latency: Histogram<u64>,
    disk_10kib_latency: Histogram<u64>,
    stream_mb_per_s: Vec<f64>,
    ping_pong: Histogram<u64>,
    node_round_trip: Histogram<u64>,
    produce_leader: Histogram<u64>,
    produce_all: Histogram<u64>,
    append_leader: Histogram<u64>,
    append_all: Histogram<u64>,
}

impl Samples {
    fn new() -> Self {
        Self {
            disk_1mib_mb_per_s: Vec::new(),
            disk_1mib_latency: latency_histogram(),
            disk_10kib_latency: latency_histogram(),
            stream_mb_per_s: Vec::new(),
            ping_pong: latency_histogram(),
            node_round_trip: latency_histogram(),
            produce_leader: latency_histogram(),
            produce_all: latency_histogram(),
            append_leader: latency_histogram(),
            append_all: latency_histogram(),
        }
    }

    /// One repetition of every measurement.
    async fn measure(
        &mut self,
        session: &Session<'_>,
        raw: &RawClient,
        args: &LimitsArgs,
    ) -> Result<(), BenchError> {
        let (warmup, duration) = session.options.durations();
        let connection = &session.connection;
        let large = session.disk.measure(1 << 20, duration).await?;
        self.disk_1mib_mb_per_s.push(ratio(large.bytes as f64 / 1e6, large.elapsed.as_secs_f64()));
        merge_into(&mut self.disk_1mib_latency, &histogram_of(&large.latencies))?;
        let small = session.disk.measure(10 * 1024, duration).await?;
        merge_into(&mut self.disk_10kib_latency, &histogram_of(&small.latencies))?;
        let samples = args.ping_samples / 2;
        let produce_leader = round_trip::produce(connection, 10, Acks::Leader, samples).await?;
        merge_into(&mut self.produce_leader, &produce_leader)?;
        let produce_all = round_trip::produce(connection, 10, Acks::All, samples).await?;
        merge_into(&mut self.produce_all, &produce_all)?;
        let append_leader = round_trip::append(connection, 10, Acks::Leader, samples).await?;
        merge_into(&mut self.append_leader, &append_leader)?;
        let append_all = round_trip::append(connection, 10, Acks::All, samples).await?;
        merge_into(&mut self.append_all, &append_all)?;
        self.stream_mb_per_s.push(raw.stream(warmup, duration).await?.mb_per_s());
        merge_into(&mut self.ping_pong, &raw.ping_pong(64, args.ping_samples).await?)?;
        let node = round_trip::metadata(connection, args.ping_samples).await?;
        merge_into(&mut self.node_round_trip, &node)?;
        Ok(())
    }

    fn figures(&self) -> Figures {
        Figures {
            disk_durable_1mib_mb_per_s: Spread::of(self.disk_1mib_mb_per_s.iter().copied()),
            disk_durable_1mib_latency: Percentiles::of(&self.disk_1mib_latency),
            disk_durable_10kib_latency: Percentiles::of(&self.disk_10kib_latency),
            stream_mb_per_s: Spread::of(self.stream_mb_per_s.iter().copied()),
            ping_pong_64b: Percentiles::of(&self.ping_pong),
            node_metadata_round_trip: Percentiles::of(&self.node_round_trip),
            produce_10_rows_acks_1: Percentiles::of(&self.produce_leader),
            produce_10_rows_acks_all: Percentiles::of(&self.produce_all),
            append_writer_10_rows_acks_1: Percentiles::of(&self.append_leader),
            append_writer_10_rows_acks_all: Percentiles::of(&self.append_all),
        }
    }
}

/// The limits as reported; the field names are the JSON file's keys.
#[derive(Serialize)]
struct Figures {
    disk_durable_1mib_mb_per_s: Spread,
    disk_durable_1mib_latency: Percentiles,
    disk_durable_10kib_latency: Percentiles,
    stream_mb_per_s: Spread,
    ping_pong_64b: Percentiles,
    node_metadata_round_trip: Percentiles,
    produce_10_rows_acks_1: Percentiles,
    produce_10_rows_acks_all: Percentiles,
    append_writer_10_rows_acks_1: Percentiles,
    append_writer_10_rows_acks_all: Percentiles,
}

impl Figures {
    fn print(&self, reps: usize) {
        println!("\nlimits (raw QUIC between the same two processes, {reps} reps):");
        println!(
            "  disk, O_DIRECT write + fdatasync of 1 MiB, one at a time: {}; each {}",
            self.disk_durable_1mib_mb_per_s.line("MB/s"),
            self.disk_durable_1mib_latency.line()
        );
        println!(
            "  disk, O_DIRECT write + fdatasync of 10 KiB, one at a time: {}",
            self.disk_durable_10kib_latency.line()
        );
        println!("  one stream flat out: {}", self.stream_mb_per_s.line("MB/s"));
        println!("  64-byte round trips, one at a time: {}", self.ping_pong_64b.line());
        println!(
            "  the node's own round trip (a Metadata request, one at a time): {}",
            self.node_metadata_round_trip.line()
        );
        let produce = "produce of 10 rows (10 KiB), one at a time";
        println!("  {produce}, acks=1: {}", self.produce_10_rows_acks_1.line());
        println!("  {produce}, acks=all: {}", self.produce_10_rows_acks_all.line());
        let append = "the same through an AppendWriter (append, await the ack)";
        println!("  {append}, acks=1: {}", self.append_writer_10_rows_acks_1.line());
        println!("  {append}, acks=all: {}", self.append_writer_10_rows_acks_all.line());
    }
}
