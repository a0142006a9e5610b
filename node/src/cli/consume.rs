//! `ufer consume`: read rows from a table and print them.

use std::collections::BTreeMap;
use std::io::Write;

use arrow_array::RecordBatch;
use ufer_wire::client::{Connection, LogScanner, ScanOptions, StartFrom};
use ufer_wire::ChangeType;

use crate::cli::args::{ConsumeArgs, Format};
use crate::cli::client::table_path;

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

/// Rows gathered into one printed table (`--format table`); more start another table.
const TABLE_ROWS_MAX: usize = 1_000;

/// Prints record batches in one output format.
pub(crate) struct Printer {
    format: Format,
    csv_header_written: bool,
    /// Rows waiting to be printed as one table.
    table_rows: Vec<RecordBatch>,
}

impl Printer {
    /// A printer in `format`.
    pub(crate) fn new(format: Format) -> Self {
        Self { format, csv_header_written: false, table_rows: Vec::new() }
    }

    /// Prints `batch` (a table gathers rows until [`TABLE_ROWS_MAX`] or [`Printer::flush`]).
    pub(crate) fn print(&mut self, batch: &RecordBatch) -> Result<(), String> {
        if self.format == Format::Table {
            self.table_rows.push(batch.clone());
            let gathered: usize = self.table_rows.iter().map(RecordBatch::num_rows).sum();
            if gathered >= TABLE_ROWS_MAX {
                self.flush()?;
            }
            return Ok(());
        }
        self.write(batch)
    }

    /// Prints the rows a table has gathered.
    pub(crate) fn flush(&mut self) -> Result<(), String> {
        if self.table_rows.is_empty() {
            return Ok(());
        }
        let table = arrow_cast::pretty::pretty_format_batches(&self.table_rows)
            .map_err(|error| error.to_string())?;
        self.table_rows.clear();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        writeln!(out, "{table}").map_err(|error| error.to_string())?;
        out.flush().map_err(|error| error.to_string())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
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
    let mut printer = Printer::new(args.format);
    let printed = print_until_done(&mut scanner, args, &ends, &mut printer).await;
    printer.flush()?;
    printed
}

/// Polls and prints until caught up with `ends` (without --follow) or `--limit` rows.
async fn print_until_done(
    scanner: &mut LogScanner,
    args: &ConsumeArgs,
    ends: &BTreeMap<u32, u64>,
    printer: &mut Printer,
) -> Result<(), String> {
    let mut printed: u64 = 0;
    loop {
        let caught_up = !args.follow
            && ends.iter().all(|(bucket, end)| {
                scanner.positions().get(bucket).is_some_and(|position| position >= end)
            });
        if caught_up || args.limit.is_some_and(|limit| printed >= limit) {
            return Ok(());
        }
        if args.follow {
            // What arrived so far shows up now, not when the gathered rows fill a table.
            printer.flush()?;
        }
        let changelog = !scanner.table().info.definition.primary_key.is_empty();
        for scanned in scanner.poll().await.map_err(|error| error.to_string())? {
            let mut rows = if changelog {
                with_change_types(&scanned.rows, &scanned.change_types)?
            } else {
                scanned.rows
            };
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

/// Name of the column that shows each changelog row's change type.
pub(crate) const CHANGE_TYPE_COLUMN: &str = "_change";

/// `rows` with a first column [`CHANGE_TYPE_COLUMN`] (`+I`, `-U`, `+U`, `-D`): a primary-key
/// table's log is its changelog, and a row means nothing without its change type.
fn with_change_types(
    rows: &RecordBatch,
    change_types: &[ChangeType],
) -> Result<RecordBatch, String> {
    let names: arrow_array::StringArray =
        change_types.iter().map(|change| Some(change.short_name())).collect();
    let mut fields = vec![std::sync::Arc::new(arrow_schema::Field::new(
        CHANGE_TYPE_COLUMN,
        arrow_schema::DataType::Utf8,
        false,
    ))];
    fields.extend(rows.schema().fields().iter().cloned());
    let mut columns: Vec<arrow_array::ArrayRef> = vec![std::sync::Arc::new(names)];
    columns.extend(rows.columns().iter().cloned());
    RecordBatch::try_new(std::sync::Arc::new(arrow_schema::Schema::new(fields)), columns)
        .map_err(|error| error.to_string())
}
