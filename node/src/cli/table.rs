//! `ufer table ...` and `ufer database ...`.

use ufer_wire::client::{Admin, Connection};
use ufer_wire::protocol::messages::{DescribeTableResponse, TableDefinition};

use crate::cli::args::{CreateTableArgs, DatabaseCommand, TableCommand};
use crate::cli::client::table_path;

pub async fn run(connection: &Connection, command: &TableCommand) -> Result<(), String> {
    let admin = Admin::new(connection.clone());
    match command {
        TableCommand::Create(args) => create(&admin, args).await?,
        TableCommand::List { database } => {
            for table in admin.list_tables(database).await.map_err(|error| error.to_string())? {
                println!("{table}");
            }
        }
        TableCommand::Describe { name } => {
            let path = table_path(name);
            let description =
                admin.describe_table(&path).await.map_err(|error| error.to_string())?;
            print_description(&description);
        }
        TableCommand::Drop { name, if_exists } => {
            let path = table_path(name);
            admin.drop_table(&path, *if_exists).await.map_err(|error| error.to_string())?;
            println!("dropped table {path}");
        }
    }
    Ok(())
}

/// `ufer table create`.
async fn create(admin: &Admin, args: &CreateTableArgs) -> Result<(), String> {
    let mut properties = Vec::new();
    for property in &args.properties {
        let (key, value) = property
            .split_once('=')
            .ok_or_else(|| format!("--property {property:?} must be KEY=VALUE"))?;
        properties.push((key.trim().to_string(), value.trim().to_string()));
    }
    let definition = TableDefinition {
        schema: args.schema.clone(),
        bucket_count: args.buckets,
        bucket_key: args.bucket_key.clone(),
        primary_key: args.primary_key.clone(),
        partition_by: args.partition_by.clone(),
        properties,
    };
    let path = table_path(&args.name);
    let table_id = admin
        .create_table(&path, definition, args.if_not_exists)
        .await
        .map_err(|error| error.to_string())?;
    println!("created table {path} (id {table_id}, {} bucket(s))", args.buckets);
    Ok(())
}

/// `ufer table describe`: the definition, then a line per bucket (with its lake lag for a
/// lake table), then the damaged ranges.
fn print_description(description: &DescribeTableResponse) {
    let info = &description.info;
    println!("table     {} (id {}, schema id {})", info.path, info.table_id, info.schema_id);
    println!("schema    {}", info.definition.schema);
    println!("buckets   {}", info.definition.bucket_count);
    if !info.definition.bucket_key.is_empty() {
        println!("bucket key {}", info.definition.bucket_key.join(", "));
    }
    for (key, value) in &info.definition.properties {
        println!("property  {key}={value}");
    }
    let lake = crate::table::is_lake_table(&info.definition.properties);
    print!(
        "{:>6} {:>14} {:>14} {:>14} {:>12} {:>8}",
        "bucket", "start offset", "high watermark", "end offset", "bytes", "segments"
    );
    if lake {
        print!(" {:>14} {:>10}", "tiered offset", "lake lag");
    }
    println!();
    for bucket in &description.buckets {
        print!(
            "{:>6} {:>14} {:>14} {:>14} {:>12} {:>8}",
            bucket.bucket,
            bucket.log_start_offset,
            bucket.high_watermark,
            bucket.log_end_offset,
            bucket.size_bytes,
            bucket.segment_count
        );
        if lake {
            // Lag: records in the log end that are not in the lake yet.
            match bucket.tiered_offset {
                Some(tiered) => {
                    print!(" {:>14} {:>10}", tiered, bucket.log_end_offset.saturating_sub(tiered))
                }
                None => print!(" {:>14} {:>10}", "-", "-"),
            }
        }
        println!();
    }
    print_damaged(&description.buckets);
}

/// Offsets damaged on disk that the buckets keep (reads of them fail; reading resumes
/// after them), one line per range.
fn print_damaged(buckets: &[ufer_wire::protocol::messages::BucketStatus]) {
    for bucket in buckets {
        for (first, end) in &bucket.damaged_offsets {
            println!(
                "damaged   bucket {} offsets {first}..{end}: kept on disk, unreadable \
                 (CORRUPT_DATA); reading resumes at {end}",
                bucket.bucket
            );
        }
    }
}

pub async fn run_database(
    connection: &Connection,
    command: &DatabaseCommand,
) -> Result<(), String> {
    let admin = Admin::new(connection.clone());
    match command {
        DatabaseCommand::Create { name } => {
            admin.create_database(name, false).await.map_err(|error| error.to_string())?;
            println!("created database {name}");
        }
        DatabaseCommand::List => {
            for name in admin.list_databases().await.map_err(|error| error.to_string())? {
                println!("{name}");
            }
        }
        DatabaseCommand::Drop { name, cascade } => {
            admin.drop_database(name, false, *cascade).await.map_err(|error| error.to_string())?;
            println!("dropped database {name}");
        }
    }
    Ok(())
}
