//! `ufer upsert`, `ufer lookup` and `ufer scan`: the commands of primary-key tables.

use std::io::Read;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::Value;
use ufer_wire::client::{
    Connection, Lookuper, RowKind, SnapshotScanner, UpsertAck, UpsertOptions, UpsertWriter,
};

use crate::cli::args::{Format, LookupArgs, ScanArgs, UpsertArgs};
use crate::cli::client::table_path;
use crate::cli::consume::Printer;
use crate::cli::input::{Input, Lines};

/// The field of an input row that says what it does.
const OP_FIELD: &str = "_op";

fn row_kind(text: Option<&str>) -> Result<RowKind, String> {
    match text.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("upsert") | Some("+i") | Some("+u") => Ok(RowKind::Upsert),
        Some("delete") | Some("-d") => Ok(RowKind::Delete),
        Some(other) => Err(format!("{OP_FIELD} {other:?} is not upsert or delete")),
    }
}

/// A value for a non-nullable column a delete row left out (only the key is read).
fn placeholder(data_type: &DataType) -> Value {
    match data_type {
        DataType::Boolean => Value::Bool(false),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
            Value::String(String::new())
        }
        DataType::List(_) | DataType::LargeList(_) => Value::Array(Vec::new()),
        DataType::Struct(fields) => Value::Object(
            fields
                .iter()
                .filter(|field| !field.is_nullable())
                .map(|field| (field.name().clone(), placeholder(field.data_type())))
                .collect(),
        ),
        DataType::Map(..) => Value::Object(Default::default()),
        DataType::FixedSizeBinary(size) => Value::String("0".repeat(*size as usize * 2)),
        _ => Value::from(0),
    }
}

/// JSON lines into a batch of `schema` and each row's kind. Delete rows may name only the
/// key: other non-nullable columns get placeholders (the node reads only the key).
fn decode_json_lines(
    schema: &SchemaRef,
    lines: &[(usize, String)],
) -> Result<(RecordBatch, Vec<RowKind>), String> {
    let mut kinds = Vec::with_capacity(lines.len());
    let mut text = String::new();
    for (_, line) in lines {
        let mut value: Value =
            serde_json::from_str(line).map_err(|error| format!("not a JSON object: {error}"))?;
        let Some(object) = value.as_object_mut() else {
            return Err("not a JSON object".into());
        };
        let op = object.remove(OP_FIELD);
        let kind = row_kind(op.as_ref().and_then(Value::as_str))?;
        if kind == RowKind::Delete {
            for field in schema.fields() {
                if !field.is_nullable() && !object.contains_key(field.name()) {
                    object.insert(field.name().clone(), placeholder(field.data_type()));
                }
            }
        }
        kinds.push(kind);
        text.push_str(&value.to_string());
        text.push('\n');
    }
    let batch = read_json(schema, text.as_bytes())?;
    Ok((batch, kinds))
}

/// Rows decoded into one record batch at most (bigger inputs are concatenated).
const JSON_BATCH_ROWS: usize = 8192;

fn read_json(schema: &SchemaRef, bytes: &[u8]) -> Result<RecordBatch, String> {
    let reader = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(JSON_BATCH_ROWS)
        .build(bytes)
        .map_err(|error| error.to_string())?;
    let batches: Vec<RecordBatch> =
        reader.collect::<Result<_, _>>().map_err(|error| format!("reading JSON lines: {error}"))?;
    arrow_select::concat::concat_batches(schema, &batches).map_err(|error| error.to_string())
}

/// CSV with a header: the table's columns in order, optionally followed by `_op`.
fn decode_csv(schema: &SchemaRef, text: &str) -> Result<(RecordBatch, Vec<RowKind>), String> {
    let header = text.lines().next().unwrap_or_default();
    let has_op = header.rsplit(',').next().is_some_and(|last| last.trim() == OP_FIELD);
    let read_schema = if has_op {
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(OP_FIELD, DataType::Utf8, true)));
        Arc::new(Schema::new(fields))
    } else {
        schema.clone()
    };
    let reader = arrow_csv::ReaderBuilder::new(read_schema.clone())
        .with_header(true)
        .build(text.as_bytes())
        .map_err(|error| error.to_string())?;
    let batches: Vec<RecordBatch> =
        reader.collect::<Result<_, _>>().map_err(|error| format!("reading CSV: {error}"))?;
    let batch =
        arrow_select::concat::concat_batches(&read_schema, &batches).map_err(|e| e.to_string())?;
    if !has_op {
        return Ok((batch.clone(), vec![RowKind::Upsert; batch.num_rows()]));
    }
    let ops = batch.column(schema.fields().len());
    let ops = ops
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .ok_or_else(|| format!("{OP_FIELD} must be text"))?;
    let kinds = (0..ops.len())
        .map(|row| {
            row_kind((!ops.is_null(row)).then(|| ops.value(row)))
                .map_err(|error| format!("line {}: {error}", row + 2))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let columns = (0..schema.fields().len()).collect::<Vec<_>>();
    Ok((batch.project(&columns).map_err(|error| error.to_string())?, kinds))
}

/// `ufer upsert`.
pub async fn upsert(connection: &Connection, args: &UpsertArgs) -> Result<(), String> {
    let path = table_path(&args.name);
    let options = UpsertOptions {
        acks: args.acks.into(),
        target_columns: args.columns.clone(),
        ..UpsertOptions::default()
    };
    let writer =
        UpsertWriter::new(connection, &path, options).await.map_err(|error| error.to_string())?;
    let schema = writer.table().schema.arrow().clone();
    let mut totals = (0usize, 0usize, 0u64);
    match args.format {
        Format::Jsonl => {
            let decode = move |_: &Lines, lines: &Lines| decode_json_lines(&schema, lines);
            let mut input = Input::read(args.batch_rows, 0, decode).await;
            if let Some(error) = input.failed_ahead() {
                return Err(format!("{error}; nothing was written"));
            }
            let mut last_line = 0;
            while let Some(chunk) = input.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        print_totals(totals, &path);
                        return Err(format!(
                            "{error}; the rows up to line {last_line} were written (counts \
                             above), none after: go on with the input from line {}",
                            last_line + 1
                        ));
                    }
                };
                let (batch, kinds) = chunk.value;
                let acks = match writer.write(&batch, Some(&kinds)).await {
                    Ok(acks) => acks,
                    Err(error) => {
                        print_totals(totals, &path);
                        let (first, last) = chunk.lines;
                        return Err(format!(
                            "lines {first}..={last}: {error}; the rows up to line {last_line} \
                             were written (counts above); those of lines {first}..={last} may or \
                             may not be stored (each bucket's part is written on its own), none \
                             after: go on with the input from line {first}"
                        ));
                    }
                };
                count(&mut totals, &kinds, &acks);
                last_line = chunk.lines.1;
            }
        }
        Format::Csv => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|error| format!("reading standard input: {error}"))?;
            let (batch, kinds) = decode_csv(&schema, &text)?;
            let acks = writer.write(&batch, Some(&kinds)).await.map_err(|e| e.to_string())?;
            count(&mut totals, &kinds, &acks);
        }
        Format::Table => {
            return Err("--format table is an output format; upsert reads jsonl or csv".into())
        }
    }
    print_totals(totals, &path);
    Ok(())
}

fn print_totals(totals: (usize, usize, u64), path: &ufer_wire::protocol::messages::TablePath) {
    println!(
        "upserted {} row(s) and deleted {} key(s) in {path}: {} changelog record(s)",
        totals.0, totals.1, totals.2
    );
}

fn count(totals: &mut (usize, usize, u64), kinds: &[RowKind], acks: &[UpsertAck]) {
    let deletes = kinds.iter().filter(|kind| **kind == RowKind::Delete).count();
    totals.0 += kinds.len() - deletes;
    totals.1 += deletes;
    totals.2 += acks.iter().map(|ack| u64::from(ack.changelog_record_count)).sum::<u64>();
}

/// `ufer lookup`.
pub async fn lookup(connection: &Connection, args: &LookupArgs) -> Result<(), String> {
    let path = table_path(&args.name);
    let columns: Option<Vec<&str>> =
        args.columns.as_ref().map(|names| names.iter().map(String::as_str).collect());
    let lookuper = Lookuper::new(connection, &path, columns.as_deref())
        .await
        .map_err(|error| error.to_string())?;
    let schema =
        if args.prefix { lookuper.prefix_schema().clone() } else { lookuper.key_schema().clone() };
    let mut text = String::new();
    for key in &args.keys {
        let value: Value = serde_json::from_str(key)
            .map_err(|error| format!("--key {key:?} is not a JSON object: {error}"))?;
        text.push_str(&value.to_string());
        text.push('\n');
    }
    let keys = read_json(&schema, text.as_bytes())?;
    let found = if args.prefix {
        lookuper.prefix_lookup(&keys).await
    } else {
        lookuper.lookup(&keys).await
    }
    .map_err(|error| error.to_string())?;
    let mut printer = Printer::new(args.format);
    if found.rows.num_rows() > 0 {
        printer.print(&found.rows)?;
    }
    printer.flush()?;
    if found.rows.num_rows() == 0 {
        eprintln!("no row found");
    }
    if found.truncated {
        eprintln!("more rows match than one answer holds; narrow the prefix");
    }
    Ok(())
}

/// `ufer scan`.
pub async fn scan(connection: &Connection, args: &ScanArgs) -> Result<(), String> {
    let path = table_path(&args.name);
    let scanner =
        SnapshotScanner::new(connection, &path).await.map_err(|error| error.to_string())?;
    let buckets: Vec<u32> = match &args.buckets {
        Some(buckets) => buckets.clone(),
        None => (0..scanner.table().bucket_count()).collect(),
    };
    let mut printer = Printer::new(args.format);
    for bucket in buckets {
        let snapshot = scanner.bucket(bucket).await.map_err(|error| error.to_string())?;
        for rows in &snapshot.rows {
            printer.print(rows)?;
        }
    }
    printer.flush()
}
