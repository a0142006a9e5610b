//! The workloads, each over the client SDK and real QUIC: `produce` (closed loop, as fast as
//! acknowledgements come), `consume` (a table from its start, with or without projection)
//! `e2e` (open loop at a fixed rate, produce-to-consume latency), `mixed` (writers and
//! tailing readers at once), `kv` (upserts and lookups on a primary-key table) and
//! `round_trip` (single requests, one at a time).

pub mod consume;
pub mod e2e;
pub mod kv;
pub mod mixed;
pub mod produce;
pub mod round_trip;

use ufer_wire::client::{Admin, Connection};
use ufer_wire::protocol::messages::{TableDefinition, TablePath};

use crate::error::BenchError;
use crate::rows::schema_text;

/// Database the benchmark's tables live in.
pub const DATABASE: &str = "default";

/// Creates the benchmark table `name` with `buckets` buckets (round-robin: no bucket key),
/// replacing one left from an earlier run.
pub async fn create_table(
    connection: &Connection,
    name: &str,
    buckets: u32,
) -> Result<TablePath, BenchError> {
    let definition = TableDefinition {
        schema: schema_text(),
        bucket_count: buckets,
        ..TableDefinition::default()
    };
    create_table_as(connection, name, definition).await
}

/// Creates table `name` as `definition` says, replacing one left from an earlier run.
pub async fn create_table_as(
    connection: &Connection,
    name: &str,
    definition: TableDefinition,
) -> Result<TablePath, BenchError> {
    let path = TablePath::new(DATABASE, name);
    let admin = Admin::new(connection.clone());
    admin.drop_table(&path, true).await?;
    admin.create_table(&path, definition, false).await?;
    Ok(path)
}

/// Drops a benchmark table (and its files).
pub async fn drop_table(connection: &Connection, path: &TablePath) -> Result<(), BenchError> {
    Admin::new(connection.clone()).drop_table(path, true).await?;
    Ok(())
}
