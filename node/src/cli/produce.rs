//! `ufer produce`: rows from standard input (JSON lines or CSV with a header line) into a
//! table. An input that fits in the read-ahead (`input::READ_AHEAD_MAX_BYTES`) is checked
//! whole first, so a bad line writes nothing; past it, a bad line stops the writing there
//! and the command says exactly which offsets it wrote and which line failed, so a re-run
//! from that line duplicates nothing.

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
    let (mut handles, mut rows, mut last_line) = (Vec::new(), 0usize, 0usize);
    let failure = loop {
        match input.next().await {
            None => break None,
            Some(Ok(chunk)) => {
                rows += chunk.value.num_rows();
                last_line = chunk.lines.1;
                handles.push(writer.append(chunk.value).await.map_err(|error| error.to_string())?);
            }
            Some(Err(error)) => break Some(error),
        }
    };
    writer.flush().await.map_err(|error| error.to_string())?;
    let ranges = written_ranges(handles).await?;
    writer.close().await.map_err(|error| error.to_string())?;
    print_written(rows, &path, &ranges);
    match failure {
        None => Ok(()),
        Some(error) => Err(format!(
            "{error}; the rows up to line {last_line} were written (offsets above), none after: \
             go on with the input from line {}",
            last_line + 1
        )),
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

/// The offsets the acknowledged appends got, per bucket: first and last.
async fn written_ranges(handles: Vec<AppendHandle>) -> Result<BTreeMap<u32, (u64, u64)>, String> {
    let mut ranges: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for handle in handles {
        for ack in handle.wait().await.map_err(|error| error.to_string())? {
            let range = ranges.entry(ack.bucket).or_insert((ack.base_offset, ack.last_offset));
            range.0 = range.0.min(ack.base_offset);
            range.1 = range.1.max(ack.last_offset);
        }
    }
    Ok(ranges)
}

fn print_written(rows: usize, path: &TablePath, ranges: &BTreeMap<u32, (u64, u64)>) {
    println!("wrote {rows} row(s) to {path}");
    for (bucket, (first, last)) in ranges {
        println!("  bucket {bucket}: offsets {first}..={last}");
    }
}
