//! `ufer sql`: a query over the node's tables, printed as a table, JSON lines or CSV.

use std::path::PathBuf;

use ufer_wire::client::Connection;

use super::args::{Cli, Format, SqlArgs};
use super::client::DATA_DIR_DEFAULT;
use super::consume::Printer;
use crate::config::LakeConfig;
use crate::sql::{format_table, LakeLocation, SqlEngine};

/// Runs the query and prints its rows.
pub(crate) async fn run(cli: &Cli, connection: &Connection, args: &SqlArgs) -> Result<(), String> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT));
    let data_dir = std::path::absolute(&data_dir).map_err(|error| error.to_string())?;
    let config = LakeConfig {
        catalog_uri: args.lake_catalog_uri.clone(),
        warehouse: args.lake_warehouse.clone(),
        catalog_name: args.lake_catalog_name.clone(),
        core: None,
    };
    let engine = SqlEngine::new(connection.clone(), LakeLocation::of_node(&config, &data_dir));
    let (schema, batches) = engine.query(&args.query).await.map_err(|error| error.to_string())?;
    if args.format == Format::Table {
        // Headers even when no row matched.
        println!("{}", format_table(&schema, &batches).map_err(|error| error.to_string())?);
        return Ok(());
    }
    let mut printer = Printer::new(args.format);
    for batch in &batches {
        printer.print(batch)?;
    }
    printer.flush()
}
