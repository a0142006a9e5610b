//! `ufer-bench e2e`: produce-to-consume latency at each fixed rate (open loop), beside its
//! floor: one durable write of a batch and one QUIC round trip.

use std::time::Duration;

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::error::BenchError;
use crate::options::{acks, GlobalOptions};
use crate::plot;
use crate::progress;
use crate::report::{
    histogram_of, human_us, latency_histogram, merge_into, ratio, Percentiles, Spread,
};
use crate::rows::{self, ROW_SIZE_BYTES};
use crate::session::Session;
use crate::workload::{self, e2e, produce};

/// The options of `ufer-bench e2e`.
#[derive(Debug, Args)]
pub struct E2eArgs {
    /// Target rates, comma-separated for several runs: rows per second (`4000`), or MB of
    /// row data per second (`4MB`, 1 KiB rows).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub rate: Vec<String>,
    /// Rows per batch.
    #[arg(long, default_value_t = 10)]
    pub batch_rows: usize,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    pub buckets: u32,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
}

/// Measures every rate of `args`; one JSON entry each.
pub async fn run(session: &Session<'_>, args: &E2eArgs) -> Result<Value, BenchError> {
    let options = session.options;
    let (warmup, duration) = options.durations();
    println!(
        "\ne2e: open loop, {} rows per batch, acks={}, {} buckets; spin before park {} µs; \
         {} s measured after {} s warm-up, {} reps",
        args.batch_rows,
        args.acks,
        args.buckets,
        options.spin_before_park_us,
        duration.as_secs_f64(),
        warmup.as_secs_f64(),
        options.reps
    );
    let mut out = Vec::new();
    for rate in &args.rate {
        let params = e2e::E2eParams {
            rate_rows_per_s: rows_per_second(rate)?,
            batch_rows: args.batch_rows,
            acks: acks(&args.acks)?,
            warmup,
            duration,
        };
        let samples = measure(session, args, &params).await?;
        let floor = Floor::measure(session, args.batch_rows).await?;
        out.push(samples.report(options, args, &params, &floor));
    }
    Ok(Value::Array(out))
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

/// What the repetitions at one rate measured.
struct Samples {
    /// Produce to consume, over every repetition.
    latency: Histogram<u64>,
    /// Produce to the writer's acknowledgement, over every repetition.
    acked: Histogram<u64>,
    /// Each repetition's percentiles, for their spread.
    p50s_us: Vec<f64>,
    p99s_us: Vec<f64>,
    p999s_us: Vec<f64>,
}

/// The repetitions at `params.rate_rows_per_s`.
async fn measure(
    session: &Session<'_>,
    args: &E2eArgs,
    params: &e2e::E2eParams,
) -> Result<Samples, BenchError> {
    let connection = &session.connection;
    let mut samples = Samples {
        latency: latency_histogram(),
        acked: latency_histogram(),
        p50s_us: Vec::new(),
        p99s_us: Vec::new(),
        p999s_us: Vec::new(),
    };
    let what = format!("e2e, {} rows/s", params.rate_rows_per_s);
    for _ in progress::repetitions(what, session.options.reps) {
        let path = workload::create_table(connection, "bench_e2e", args.buckets).await?;
        let result = e2e::run(connection, &path, params).await?;
        workload::drop_table(connection, &path).await?;
        let percentiles = Percentiles::of(&result.latency);
        samples.p50s_us.push(percentiles.p50_us as f64);
        samples.p99s_us.push(percentiles.p99_us as f64);
        samples.p999s_us.push(percentiles.p999_us as f64);
        merge_into(&mut samples.latency, &result.latency)?;
        merge_into(&mut samples.acked, &result.acked)?;
    }
    Ok(samples)
}

/// The floor under e2e latency: one durable write of a batch and one QUIC round trip.
struct Floor {
    batch_size: usize,
    durable_write_p50_us: u64,
    /// 0 when there are no raw endpoints (a running node).
    round_trip_p50_us: u64,
}

impl Floor {
    async fn measure(session: &Session<'_>, batch_rows: usize) -> Result<Self, BenchError> {
        let schema = rows::arrow_schema()?;
        let batch_size = produce::encoded_batch_size(&schema, batch_rows)?;
        let write = session.disk.measure(batch_size, Duration::from_secs(1)).await?;
        let durable_write_p50_us = Percentiles::of(&histogram_of(&write.latencies)).p50_us;
        let round_trip_p50_us = match &session.raw {
            Some(raw) => Percentiles::of(&raw.ping_pong(64, 1_000).await?).p50_us,
            None => 0,
        };
        Ok(Self { batch_size, durable_write_p50_us, round_trip_p50_us })
    }

    fn total_us(&self) -> u64 {
        self.durable_write_p50_us + self.round_trip_p50_us
    }
}

impl Samples {
    /// Prints the lines of one rate and returns its JSON entry.
    fn report(
        self,
        options: &GlobalOptions,
        args: &E2eArgs,
        params: &e2e::E2eParams,
        floor: &Floor,
    ) -> Value {
        let rate = params.rate_rows_per_s;
        let merged = Percentiles::of(&self.latency);
        let acked = Percentiles::of(&self.acked);
        let (p50s, p99s, p999s) =
            (Spread::of(self.p50s_us), Spread::of(self.p99s_us), Spread::of(self.p999s_us));
        let rate_mb_per_s = rate as f64 * ROW_SIZE_BYTES as f64 / 1e6;
        println!(
            "  {rate} rows/s = {rate_mb_per_s:.2} MB/s: {} ({} rows)",
            merged.line(),
            merged.samples
        );
        println!("    writer acknowledged: {}", acked.line());
        println!(
            "    floor: durable write of {} KiB p50 {} + QUIC round trip p50 {} = {} | \
             e2e p50 {:.1}× of it",
            floor.batch_size / 1024,
            human_us(floor.durable_write_p50_us),
            human_us(floor.round_trip_p50_us),
            human_us(floor.total_us()),
            ratio(merged.p50_us as f64, floor.total_us() as f64)
        );
        let range = |spread: &Spread| {
            format!("{}–{}", human_us(spread.min as u64), human_us(spread.max as u64))
        };
        println!(
            "    per rep: p50 {}, p99 {}, p99.9 {}",
            range(&p50s),
            range(&p99s),
            range(&p999s)
        );
        json!({
            "rate_rows_per_s": rate,
            "rate_mb_per_s": rate_mb_per_s,
            "batch_rows": args.batch_rows,
            "acks": args.acks,
            "spin_before_park_us": options.spin_before_park_us,
            "udp_buffer_bytes": options.udp_buffer_bytes,
            "latency": merged,
            "latency_spectrum": plot::spectrum(&self.latency),
            "acknowledged": acked,
            "floor_us": {
                "durable_write_p50": floor.durable_write_p50_us,
                "quic_round_trip_p50": floor.round_trip_p50_us,
            },
            "p50_us_per_rep": p50s,
            "p99_us_per_rep": p99s,
            "p999_us_per_rep": p999s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rows_or_megabytes_per_second() {
        assert_eq!(rows_per_second(" 4000 ").ok(), Some(4_000));
        assert_eq!(rows_per_second("1MB").ok(), Some(977));
        assert_eq!(rows_per_second("4 mb").ok(), Some(3_906));
        for invalid in ["0", "0MB", "fast", "-1"] {
            assert!(rows_per_second(invalid).is_err(), "{invalid}");
        }
    }
}
