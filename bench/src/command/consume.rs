//! `ufer-bench consume`: a table filled first, then read from its start, with every column
//! and with 2 of 20, each repetition reading both.

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};
use ufer_wire::protocol::messages::{Acks, TablePath};
use ufer_wire::Compression;

use crate::error::BenchError;
use crate::progress;
use crate::report::{ratio, Spread, Throughput};
use crate::rows::{self, ROW_SIZE_BYTES};
use crate::session::Session;
use crate::workload::consume::{self, ScanResult};
use crate::workload::{self, produce};

/// The options of `ufer-bench consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Seconds of produce (4 writers, 1 MiB batches) that fill the table first.
    #[arg(long, default_value_t = 5.0)]
    pub fill_seconds: f64,
    /// Buckets of the table.
    #[arg(long, default_value_t = 4)]
    pub buckets: u32,
}

/// Fills the table, reads it in every repetition, and drops it.
pub async fn run(session: &Session<'_>, args: &ConsumeArgs) -> Result<Value, BenchError> {
    let connection = &session.connection;
    let (path, filled) = fill(session, args).await?;
    println!(
        "\nconsume: {} rows ({:.0} MB) in {} buckets, read from the start, {} reps",
        filled.rows,
        filled.bytes as f64 / 1e6,
        args.buckets,
        session.options.reps
    );
    let (mut all, mut projected) = (Reads::default(), Reads::default());
    for _ in progress::repetitions("consume", session.options.reps) {
        all.push(&consume::run(connection, &path, None).await?);
        projected.push(&consume::run(connection, &path, Some(rows::projected_columns())).await?);
    }
    workload::drop_table(connection, &path).await?;
    let (all, projected) = (all.figures(), projected.figures());
    println!(
        "  all 20 columns: {} | table data {} | received {}",
        all.rows_per_s.line("rows/s"),
        all.table_mb_per_s.line("MB/s"),
        all.wire_mb_per_s.line("MB/s")
    );
    println!(
        "  2 of 20 (id, sent_us): {} | table data {} | received {} | \
         {:.1}x the rows/s of all columns",
        projected.rows_per_s.line("rows/s"),
        projected.table_mb_per_s.line("MB/s"),
        projected.wire_mb_per_s.line("MB/s"),
        ratio(projected.rows_per_s.median, all.rows_per_s.median)
    );
    Ok(json!({
        "rows": filled.rows,
        "buckets": args.buckets,
        "all_columns": all,
        "projected_2_of_20": projected,
    }))
}

/// Creates the table and fills it: 4 writers of 1 MiB batches for `--fill-seconds`.
async fn fill(
    session: &Session<'_>,
    args: &ConsumeArgs,
) -> Result<(TablePath, Throughput), BenchError> {
    let connection = &session.connection;
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
    Ok((path, filled))
}

/// The repetitions' reads of one set of columns.
#[derive(Default)]
struct Reads {
    rows_per_s: Vec<f64>,
    table_mb_per_s: Vec<f64>,
    wire_mb_per_s: Vec<f64>,
}

impl Reads {
    fn push(&mut self, scan: &ScanResult) {
        self.rows_per_s.push(scan.table.rows_per_s());
        self.table_mb_per_s.push(scan.table.mb_per_s());
        self.wire_mb_per_s.push(scan.wire_bytes as f64 / scan.table.seconds / 1e6);
    }

    fn figures(self) -> ReadFigures {
        ReadFigures {
            rows_per_s: Spread::of(self.rows_per_s),
            table_mb_per_s: Spread::of(self.table_mb_per_s),
            wire_mb_per_s: Spread::of(self.wire_mb_per_s),
        }
    }
}

/// Reads of one set of columns: rows, the table data they hold, and the bytes received.
#[derive(Serialize)]
struct ReadFigures {
    rows_per_s: Spread,
    table_mb_per_s: Spread,
    wire_mb_per_s: Spread,
}
