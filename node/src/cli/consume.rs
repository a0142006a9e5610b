//! `ufer consume`: read rows from a table and print them.

use std::collections::BTreeMap;
use std::io::Write;

use arrow_array::RecordBatch;
use ufer_wire::client::{Connection, LogScanner, ScanOptions, StartFrom};

use crate::cli::args::{ConsumeArgs, Format};
use crate::cli::table_path;

fn start_from(text: &str) -> Result<StartFrom, String> {
    match text {
        "earliest" => Ok(StartFrom::Earliest),
        "latest" => Ok(StartFrom::Latest),
        _ => {
            if let Ok(offset) = text.parse::<u64>() {
                return Ok(StartFrom::Offset(offset));
            }
            let nanos = arrow_cast::parse::string_to_timestamp_nanos(text).map_err(|_| {
                format!("--from {text:?} is not earliest, latest, an offset or an ISO-8601 time")
            })?;
            Ok(StartFrom::Timestamp(nanos.div_euclid(1_000_000)))
        }
    }
}

struct Printer {
    format: Format,
    csv_header_written: bool,
}

impl Printer {
    fn print(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match self.format {
            Format::Jsonl => {
                let mut writer = arrow_json::LineDelimitedWriter::new(&mut out);
                writer.write(batch).map_err(|error| error.to_string())?;
                writer.finish().map_err(|error| error.to_string())?;
            }
            Format::Csv => {
                let mut writer = arrow_csv::WriterBuilder::new()
                    .with_header(!self.csv_header_written)
                    .build(&mut out);
                writer.write(batch).map_err(|error| error.to_string())?;
                self.csv_header_written = true;
            }
            Format::Table => {
                let table = arrow_cast::pretty::pretty_format_batches(std::slice::from_ref(batch))
                    .map_err(|error| error.to_string())?;
                writeln!(out, "{table}").map_err(|error| error.to_string())?;
            }
        }
        out.flush().map_err(|error| error.to_string())
    }
}

pub async fn run(connection: &Connection, args: &ConsumeArgs) -> Result<(), String> {
    let path = table_path(&args.name);
    let options = ScanOptions { columns: args.columns.clone(), ..ScanOptions::default() };
    let mut scanner = LogScanner::new(connection.clone(), &path, options)
        .await
        .map_err(|error| error.to_string())?;
    let buckets: Vec<u32> = match &args.buckets {
        Some(buckets) => buckets.clone(),
        None => (0..scanner.table().bucket_count()).collect(),
    };
    scanner
        .subscribe(&buckets, start_from(&args.from)?)
        .await
        .map_err(|error| error.to_string())?;
    // Without --follow, stop at the end as it is now.
    let ends: BTreeMap<u32, u64> = if args.follow {
        BTreeMap::new()
    } else {
        let mut probe = LogScanner::new(connection.clone(), &path, ScanOptions::default())
            .await
            .map_err(|error| error.to_string())?;
        probe.subscribe(&buckets, StartFrom::Latest).await.map_err(|error| error.to_string())?;
        probe.positions().clone()
    };
    let mut printer = Printer { format: args.format, csv_header_written: false };
    let mut printed: u64 = 0;
    loop {
        let caught_up = !args.follow
            && ends.iter().all(|(bucket, end)| {
                scanner.positions().get(bucket).is_some_and(|position| position >= end)
            });
        if caught_up || args.limit.is_some_and(|limit| printed >= limit) {
            return Ok(());
        }
        for scanned in scanner.poll().await.map_err(|error| error.to_string())? {
            let mut rows = scanned.rows;
            if let Some(limit) = args.limit {
                let left = (limit - printed) as usize;
                if rows.num_rows() > left {
                    rows = rows.slice(0, left);
                }
            }
            if rows.num_rows() > 0 {
                printer.print(&rows)?;
                printed += rows.num_rows() as u64;
            }
            if args.limit.is_some_and(|limit| printed >= limit) {
                return Ok(());
            }
        }
    }
}
