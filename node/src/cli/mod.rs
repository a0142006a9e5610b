//! The `ufer` command line: `serve` runs a node; every other command talks to one through
//! the client SDK.

pub mod args;
pub mod client;
pub(crate) mod consume;
mod demo;
mod input;
mod pk;
mod produce;
mod serve;
#[cfg(feature = "sql")]
mod sql;
mod table;

use args::{Cli, Command};
use client::connect;

/// What `ufer sql` says when this binary has no SQL engine.
#[cfg(not(feature = "sql"))]
const SQL_NOT_BUILT: &str = "this ufer was built without the SQL engine (DataFusion, cargo \
     feature `sql`): run `cargo run --release -p ufer-node --features sql -- sql QUERY`, or \
     build it with `cargo build --release -p ufer-node --features sql`";

/// Runs a parsed command line; the error is printed by `main`.
pub fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Serve(serve) => serve::run(&cli, serve),
        Command::Demo => demo::run(),
        _ => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|error| format!("starting the client runtime: {error}"))?;
            runtime.block_on(run_client(&cli))
        }
    }
}

async fn run_client(cli: &Cli) -> Result<(), String> {
    let connection = connect(cli)?;
    let result = match &cli.command {
        Command::Table(command) => table::run(&connection, command).await,
        Command::Database(command) => table::run_database(&connection, command).await,
        Command::Produce(produce) => produce::run(&connection, produce).await,
        Command::Consume(consume) => consume::run(&connection, consume).await,
        Command::Upsert(upsert) => pk::upsert(&connection, upsert).await,
        Command::Lookup(lookup) => pk::lookup(&connection, lookup).await,
        Command::Scan(scan) => pk::scan(&connection, scan).await,
        #[cfg(feature = "sql")]
        Command::Sql(sql) => sql::run(cli, &connection, sql).await,
        #[cfg(not(feature = "sql"))]
        Command::Sql(_) => Err(SQL_NOT_BUILT.to_string()),
        Command::Serve(_) | Command::Demo => Ok(()),
    };
    connection.close().await;
    result
}
