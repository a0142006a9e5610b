//! `ufer produce`: rows from standard input (JSON lines or CSV) into a table.

use std::collections::BTreeMap;
use std::io::BufReader;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tokio::sync::mpsc::Sender;
use ufer_wire::client::{AppendOptions, AppendWriter, Connection};
use ufer_wire::protocol::messages::Acks;

use crate::cli::args::{AcksArg, Format, ProduceArgs};
use crate::cli::client::table_path;

/// Batches read ahead of the writer.
const READ_AHEAD_BATCH_COUNT: usize = 4;

pub async fn run(connection: &Connection, args: &ProduceArgs) -> Result<(), String> {
    let path = table_path(&args.name);
    let acks = match args.acks {
        AcksArg::All => Acks::All,
        AcksArg::Leader => Acks::Leader,
        AcksArg::None => Acks::None,
    };
    let options = AppendOptions { acks, ..AppendOptions::default() };
    let writer = AppendWriter::new(connection.clone(), &path, options)
        .await
        .map_err(|error| error.to_string())?;
    let schema = writer.table().schema.arrow().clone();
    let (sender, mut batches) =
        tokio::sync::mpsc::channel::<Result<RecordBatch, String>>(READ_AHEAD_BATCH_COUNT);
    let (format, batch_rows) = (args.format, args.batch_rows.max(1));
    // Standard input is read on its own thread: reading blocks.
    let reader = std::thread::spawn(move || read_stdin(format, schema, batch_rows, &sender));
    let mut handles = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        rows += batch.num_rows();
        handles.push(writer.append(batch).await.map_err(|error| error.to_string())?);
    }
    let _ = reader.join();
    writer.flush().await.map_err(|error| error.to_string())?;
    let mut ranges: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for handle in handles {
        for ack in handle.wait().await.map_err(|error| error.to_string())? {
            let range = ranges.entry(ack.bucket).or_insert((ack.base_offset, ack.last_offset));
            range.0 = range.0.min(ack.base_offset);
            range.1 = range.1.max(ack.last_offset);
        }
    }
    writer.close().await.map_err(|error| error.to_string())?;
    println!("wrote {rows} row(s) to {path}");
    for (bucket, (first, last)) in ranges {
        println!("  bucket {bucket}: offsets {first}..={last}");
    }
    Ok(())
}

/// Reads standard input in `format` into batches of `batch_rows` rows of `schema`, sending
/// each (or the error that ended the reading) to `sender` until it is closed.
fn read_stdin(
    format: Format,
    schema: SchemaRef,
    batch_rows: usize,
    sender: &Sender<Result<RecordBatch, String>>,
) {
    let stdin = BufReader::new(std::io::stdin());
    let send = |batch| sender.blocking_send(batch).is_ok();
    match format {
        Format::Jsonl => {
            match arrow_json::ReaderBuilder::new(schema).with_batch_size(batch_rows).build(stdin) {
                Ok(reader) => {
                    for batch in reader {
                        if !send(batch.map_err(|error| format!("reading JSON lines: {error}"))) {
                            return;
                        }
                    }
                }
                Err(error) => {
                    send(Err(error.to_string()));
                }
            }
        }
        Format::Csv => match arrow_csv::ReaderBuilder::new(schema)
            .with_header(true)
            .with_batch_size(batch_rows)
            .build(stdin)
        {
            Ok(reader) => {
                for batch in reader {
                    if !send(batch.map_err(|error| format!("reading CSV: {error}"))) {
                        return;
                    }
                }
            }
            Err(error) => {
                send(Err(error.to_string()));
            }
        },
        Format::Table => {
            send(Err("--format table is an output format; produce reads jsonl or csv".into()));
        }
    }
}
