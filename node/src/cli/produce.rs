//! `ufer produce`: rows from standard input (JSON lines or CSV with a header line) into a
//! table. An input that fits in the read-ahead (`input::READ_AHEAD_MAX_BYTES`) is checked
//! whole first, so a bad line writes nothing; past it, a bad line stops the writing there
//! and the command says exactly which offsets it wrote and which line failed, so a re-run
//! from that line duplicates nothing. A write the node (or the SDK) refuses is reported the
//! same way: the offsets acknowledged before it, and the lines not acknowledged.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use ufer_wire::client::{AppendHandle, AppendOptions, AppendWriter, Connection};
use ufer_wire::protocol::messages::TablePath;

use crate::cli::args::{Format, ProduceArgs};
use crate::cli::client::table_path;
use crate::cli::input::{Input, Lines};

pub async fn run(connection: &Connection, args: &ProduceArgs) -> Result<(), String> {
    let path = table_path(&args.name);
    let options = AppendOptions { acks: args.acks.into(), ..AppendOptions::default() };
    let writer = AppendWriter::new(connection.clone(), &path, options)
        .await
        .map_err(|error| error.to_string())?;
    let schema = writer.table().schema.arrow().clone();
    let (format, header_lines) = match args.format {
        Format::Jsonl => (Format::Jsonl, 0),
        Format::Csv => (Format::Csv, 1),
        Format::Table => {
            return Err("--format table is an output format; produce reads jsonl or csv".into())
        }
    };
    let decode = move |_: &Lines, lines: &Lines| decode(format, &schema, lines);
    let mut input = Input::read(args.batch_rows, header_lines, decode).await;
    if let Some(error) = input.failed_ahead() {
        return Err(format!("{error}; nothing was written"));
    }
    let mut sent = Vec::new();
    let mut failure = loop {
        match input.next().await {
            None => break None,
            Some(Ok(chunk)) => match writer.append(chunk.value).await {
                Ok(handle) => sent.push(Sent { handle, lines: chunk.lines }),
                Err(error) => {
                    break Some(Failure::Write { lines: chunk.lines, error: error.to_string() })
                }
            },
            Some(Err(error)) => break Some(Failure::Input(error.to_string())),
        }
    };
    if let Err(error) = writer.flush().await {
        failure = failure.or(Some(Failure::Write { lines: (0, 0), error: error.to_string() }));
    }
    let written = Written::wait(sent).await;
    // A writer that failed may not close cleanly; what was acknowledged is said either way.
    let closed = writer.close().await;
    print_written(written.rows, &path, &written.ranges);
    let csv_header = if format == Format::Csv { " (after the header line)" } else { "" };
    if let Some((first, last, error)) = written.first_failed {
        return Err(format!(
            "{error}; the rows up to line {} were written (offsets above); lines \
             {first}..={last} and any after them that are not in the offsets above were not \
             acknowledged (they may or may not be stored: check before sending them \
             again{csv_header})",
            written.last_line
        ));
    }
    match failure {
        None => closed.map_err(|error| error.to_string()),
        Some(Failure::Input(error)) => Err(format!(
            "{error}; the rows up to line {} were written (offsets above), none after: go on \
             with the input from line {}{csv_header}",
            written.last_line,
            written.last_line + 1
        )),
        Some(Failure::Write { lines, error }) => Err(format!(
            "{error}; the rows up to line {} were written (offsets above), none from line {} on: \
             go on with the input from there{csv_header}",
            written.last_line,
            lines.0.max(written.last_line + 1)
        )),
    }
}

/// Why writing stopped before the input's end.
enum Failure {
    /// A line of input could not be decoded (nothing from it on was sent).
    Input(String),
    /// The writer refused the chunk of these lines (nothing from it on was sent).
    Write { lines: (usize, usize), error: String },
}

/// A chunk handed to the writer.
struct Sent {
    handle: AppendHandle,
    lines: (usize, usize),
}

/// What the node acknowledged of the chunks sent, in input order.
struct Written {
    rows: usize,
    /// The offsets the acknowledged appends got, per bucket: first and last.
    ranges: BTreeMap<u32, (u64, u64)>,
    /// The last line of the acknowledged prefix of the input.
    last_line: usize,
    /// The lines of the first chunk not wholly acknowledged, and why.
    first_failed: Option<(usize, usize, String)>,
}

impl Written {
    async fn wait(sent: Vec<Sent>) -> Self {
        let mut written =
            Self { rows: 0, ranges: BTreeMap::new(), last_line: 0, first_failed: None };
        for chunk in sent {
            let mut chunk_failed = None;
            for outcome in chunk.handle.wait_parts().await {
                match outcome {
                    Ok(ack) => {
                        let range = written
                            .ranges
                            .entry(ack.bucket)
                            .or_insert((ack.base_offset, ack.last_offset));
                        range.0 = range.0.min(ack.base_offset);
                        range.1 = range.1.max(ack.last_offset);
                        // One offset per row.
                        written.rows += (ack.last_offset - ack.base_offset + 1) as usize;
                    }
                    Err(error) => chunk_failed = chunk_failed.or(Some(error.to_string())),
                }
            }
            match chunk_failed {
                None if written.first_failed.is_none() => written.last_line = chunk.lines.1,
                None => {}
                Some(error) => {
                    let (first, last) = chunk.lines;
                    written.first_failed = written.first_failed.or(Some((first, last, error)));
                }
            }
        }
        written
    }
}

/// One chunk of input lines as a batch of the table.
fn decode(format: Format, schema: &SchemaRef, lines: &Lines) -> Result<RecordBatch, String> {
    let mut text = String::new();
    for (_, line) in lines {
        text.push_str(line);
        text.push('\n');
    }
    let batches: Vec<RecordBatch> = match format {
        Format::Csv => arrow_csv::ReaderBuilder::new(schema.clone())
            .with_header(false)
            .with_batch_size(lines.len().max(1))
            .build(text.as_bytes())
            .map_err(|error| error.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|error| format!("reading CSV: {error}"))?,
        _ => arrow_json::ReaderBuilder::new(schema.clone())
            .with_batch_size(lines.len().max(1))
            .build(text.as_bytes())
            .map_err(|error| error.to_string())?
            .collect::<Result<_, _>>()
            .map_err(|error| format!("reading JSON lines: {error}"))?,
    };
    arrow_select::concat::concat_batches(schema, &batches).map_err(|error| error.to_string())
}

fn print_written(rows: usize, path: &TablePath, ranges: &BTreeMap<u32, (u64, u64)>) {
    println!("wrote {rows} row(s) to {path}");
    for (bucket, (first, last)) in ranges {
        println!("  bucket {bucket}: offsets {first}..={last}");
    }
}
