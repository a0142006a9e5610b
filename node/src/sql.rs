//! Ad-hoc SQL over ufer tables with DataFusion, and the union read of lake + live log
//! (feature `sql`, on in the `ufer` binary).
//!
//! Like a Fluss client (or a Flink job reading a Fluss table), the querying process reads
//! the lake itself — the node's Iceberg catalog and warehouse — and the rest from the node
//! over QUIC:
//! - a **log table** is the union of its Iceberg table as of the current snapshot (rows
//!   below each bucket's tiered offset, which the snapshot's properties name) and, from
//!   each bucket's tiered offset to its high watermark, the live log. Every durable row is
//!   seen exactly once, tiered or not. Projections reach both sides (the Iceberg scan and
//!   the node's fetches), filters prune the Iceberg scan and are applied to all rows;
//! - a **primary-key table** is its current state, read from the node's KV snapshots.
//!
//! The SQL schema of a log table is its lake schema's table columns (the same on both
//! sides: Iceberg widens TINYINT and SMALLINT to INT, BYTES to large binary, times to
//! microseconds, and the live rows are cast alike). Table names are `database.table`, or
//! the table alone in the `default` database.
//!
//! If retention deletes live records between the snapshot and the live read (only records
//! the lake already holds in a later snapshot), the query is planned again once.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{MemorySchemaProvider, Session, TableProvider};
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use iceberg::io::LocalFsStorageFactory;
use iceberg::{Catalog as _, CatalogBuilder, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalog, SqlCatalogBuilder};
use iceberg_datafusion::IcebergStaticTableProvider;
use ufer_wire::client::{
    Admin, ClientError, Connection, LogScanner, ScanOptions, SnapshotScanner, StartFrom,
};
use ufer_wire::protocol::messages::TablePath;

use crate::config::LakeConfig;
use crate::lake::{decode_offsets, OFFSETS_PROPERTY};
use crate::table::LakeSchema;

/// The DataFusion catalog ufer's databases are schemas of.
pub const SQL_CATALOG: &str = "ufer";

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The node refused or could not be reached.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The query is wrong, or failed while running.
    #[error("{0}")]
    Query(#[from] DataFusionError),
    /// The lake could not be read.
    #[error("lake: {0}")]
    Lake(#[from] iceberg::Error),
    /// A table's definition has no lake schema.
    #[error("{0}")]
    Schema(#[from] crate::table::LakeSchemaError),
    /// Schemas did not line up.
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Where the querying process finds the lake.
#[derive(Clone, Debug)]
pub struct LakeLocation {
    /// Iceberg SQL catalog URI.
    pub catalog_uri: String,
    /// Warehouse location.
    pub warehouse: String,
    /// Catalog name.
    pub catalog_name: String,
}

impl LakeLocation {
    /// The lake of a node with `config` and data in `data_dir`.
    pub fn of_node(config: &LakeConfig, data_dir: &Path) -> Self {
        Self {
            catalog_uri: config.catalog_uri(data_dir),
            warehouse: config.warehouse(data_dir),
            catalog_name: config.catalog_name.clone(),
        }
    }
}

/// Runs SQL over the tables of one node (must run inside a tokio runtime).
#[derive(Debug)]
pub struct SqlEngine {
    connection: Connection,
    lake: LakeLocation,
}

impl SqlEngine {
    /// An engine over the node behind `connection` whose lake is at `lake`.
    pub fn new(connection: Connection, lake: LakeLocation) -> Self {
        Self { connection, lake }
    }

    /// Runs `query`; returns the result's schema and rows.
    pub async fn query(&self, query: &str) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        match self.query_once(query).await {
            Err(SqlError::Query(error)) if is_moved_past(&error) => self.query_once(query).await,
            other => other,
        }
    }

    async fn query_once(&self, query: &str) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(SQL_CATALOG, crate::catalog::DEFAULT_DATABASE)
            .with_create_default_catalog_and_schema(true)
            .with_information_schema(true);
        let context = SessionContext::new_with_config(config);
        let admin = Admin::new(self.connection.clone());
        // The lake is read only for lake-enabled tables (a node without any may have none).
        let mut catalog = None;
        let sql_catalog = context.catalog(SQL_CATALOG).ok_or_else(|| {
            DataFusionError::Internal("the default catalog was not created".into())
        })?;
        for database in admin.list_databases().await? {
            if sql_catalog.schema(&database).is_none() {
                sql_catalog.register_schema(&database, Arc::new(MemorySchemaProvider::new()))?;
            }
            for table in admin.list_tables(&database).await? {
                let path = TablePath::new(&database, &table);
                let provider = self.provider(&mut catalog, &path).await?;
                let name = datafusion::sql::TableReference::full(
                    SQL_CATALOG,
                    database.as_str(),
                    table.as_str(),
                );
                context.register_table(name, provider)?;
            }
        }
        let frame = context.sql(query).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok((schema, batches))
    }

    async fn open_catalog(&self) -> Result<SqlCatalog, iceberg::Error> {
        SqlCatalogBuilder::default()
            .uri(self.lake.catalog_uri.clone())
            .warehouse_location(self.lake.warehouse.clone())
            .sql_bind_style(SqlBindStyle::QMark)
            .with_storage_factory(Arc::new(LocalFsStorageFactory))
            .load(self.lake.catalog_name.clone(), Default::default())
            .await
    }

    async fn provider(
        &self,
        catalog: &mut Option<SqlCatalog>,
        path: &TablePath,
    ) -> Result<Arc<dyn TableProvider>, SqlError> {
        let table = ufer_wire::client::Table::open(&self.connection, path).await?;
        if !table.info.definition.primary_key.is_empty() {
            return Ok(Arc::new(KvTable {
                connection: self.connection.clone(),
                path: path.clone(),
                schema: table.schema.arrow().clone(),
            }));
        }
        let lake_schema = LakeSchema::new(table.schema.arrow(), false)?;
        let columns: Vec<usize> = (0..lake_schema.table_column_count()).collect();
        let mut union = UnionTable {
            connection: self.connection.clone(),
            path: path.clone(),
            schema: Arc::new(lake_schema.arrow.project(&columns)?),
            lake: None,
            offsets: BTreeMap::new(),
        };
        if !crate::table::is_lake_table(&table.info.definition.properties) {
            return Ok(Arc::new(union));
        }
        let catalog = match catalog {
            Some(catalog) => catalog,
            None => catalog.insert(self.open_catalog().await?),
        };
        let ident = TableIdent::new(
            iceberg::NamespaceIdent::new(path.database.clone()),
            path.table.clone(),
        );
        if !catalog.table_exists(&ident).await? {
            // Nothing tiered yet: the whole table is in the log.
            return Ok(Arc::new(union));
        }
        let iceberg_table = catalog.load_table(&ident).await?;
        let owner = iceberg_table.metadata().properties().get(crate::lake::TABLE_ID_PROPERTY);
        let Some(snapshot) = iceberg_table.metadata().current_snapshot().cloned() else {
            return Ok(Arc::new(union));
        };
        if owner != Some(&table.info.table_id.to_string()) {
            // A dropped table's lake table, not yet replaced by this one's.
            return Ok(Arc::new(union));
        }
        if let Some(text) = snapshot.summary().additional_properties.get(OFFSETS_PROPERTY) {
            union.offsets = decode_offsets(text).ok_or_else(|| {
                DataFusionError::Execution(format!("bad {OFFSETS_PROPERTY}: {text:?}"))
            })?;
        }
        let provider = IcebergStaticTableProvider::try_new_from_table_snapshot(
            iceberg_table,
            snapshot.snapshot_id(),
        )
        .await?;
        // The snapshot's Arrow schema (field ids included) on both sides of the union.
        let full = provider.schema();
        let indexes: Vec<usize> = union
            .schema
            .fields()
            .iter()
            .map(|field| full.index_of(field.name()))
            .collect::<Result<_, _>>()?;
        union.schema = Arc::new(full.project(&indexes)?);
        union.lake = Some((provider, indexes));
        Ok(Arc::new(union))
    }
}

const MOVED_PAST: &str = "the log moved past the lake snapshot";

fn is_moved_past(error: &DataFusionError) -> bool {
    error.to_string().contains(MOVED_PAST)
}

fn external(error: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

/// A log table: its lake snapshot, then its live log.
#[derive(Debug)]
struct UnionTable {
    connection: Connection,
    path: TablePath,
    /// Table columns with the lake's types (and, with a snapshot, its field metadata).
    schema: SchemaRef,
    /// The Iceberg table as of the snapshot, and the lake column of each table column.
    lake: Option<(IcebergStaticTableProvider, Vec<usize>)>,
    /// Per bucket: the snapshot holds the records below it.
    offsets: BTreeMap<u32, u64>,
}

impl UnionTable {
    /// The live records from each bucket's tiered offset to its high watermark now, only
    /// the columns at `fetched` (indexes into the table's schema), cast to the lake's types.
    async fn read_live(&self, fetched: &[usize]) -> Result<Vec<RecordBatch>, DataFusionError> {
        let names: Vec<String> =
            fetched.iter().map(|index| self.schema.field(*index).name().clone()).collect();
        let target = Arc::new(self.schema.project(fetched)?);
        let admin = Admin::new(self.connection.clone());
        let buckets = admin.describe_table(&self.path).await.map_err(external)?.buckets;
        let options = ScanOptions {
            columns: Some(names),
            max_wait: std::time::Duration::from_millis(50),
            ..ScanOptions::default()
        };
        let mut scanner = LogScanner::new(self.connection.clone(), &self.path, options)
            .await
            .map_err(external)?;
        let mut remaining: BTreeMap<u32, u64> = BTreeMap::new();
        for bucket in &buckets {
            let from = self.offsets.get(&bucket.bucket).copied().unwrap_or(0);
            if bucket.log_start_offset > from {
                return Err(DataFusionError::Execution(format!(
                    "{MOVED_PAST} in bucket {} (log starts at {}, the lake ends at {from})",
                    bucket.bucket, bucket.log_start_offset
                )));
            }
            if bucket.high_watermark > from {
                scanner
                    .subscribe(&[bucket.bucket], StartFrom::Offset(from))
                    .await
                    .map_err(external)?;
                remaining.insert(bucket.bucket, bucket.high_watermark);
            }
        }
        let mut batches = Vec::new();
        let mut rows_read: BTreeMap<u32, u64> = BTreeMap::new();
        let mut open = remaining.clone();
        while !open.is_empty() {
            for scanned in scanner.poll().await.map_err(external)? {
                let Some(end) = open.get(&scanned.bucket).copied() else { continue };
                let rows = scanned.rows.num_rows() as u64;
                let keep = end.saturating_sub(scanned.base_offset).min(rows) as usize;
                if keep > 0 {
                    batches.push(conform(&scanned.rows.slice(0, keep), &target)?);
                    *rows_read.entry(scanned.bucket).or_default() += keep as u64;
                }
            }
            // Only after the whole answer: one poll returns several parts of a bucket, and
            // the scanner's position is already past all of them.
            let positions = scanner.positions();
            open.retain(|bucket, end| positions.get(bucket).is_none_or(|position| position < end));
        }
        // Offsets are dense: anything else means retention moved a bucket past the snapshot
        // while it was read (the scanner then goes on from the earliest record kept).
        for (bucket, end) in remaining {
            let from = self.offsets.get(&bucket).copied().unwrap_or(0);
            let read = rows_read.get(&bucket).copied().unwrap_or(0);
            if read != end - from {
                return Err(DataFusionError::Execution(format!(
                    "{MOVED_PAST} in bucket {bucket} (read {read} live rows of offsets {from}..{end})"
                )));
            }
        }
        Ok(batches)
    }
}

/// `batch`'s columns cast to `target`'s types, under `target`'s schema.
fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| -> Result<ArrayRef, DataFusionError> {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                Ok(arrow_cast::cast(column, field.data_type())?)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(target.clone(), columns, &options)?)
}

#[async_trait]
impl TableProvider for UnionTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        // The lake scan prunes with them; every row is filtered again above the union.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let projection: Vec<usize> =
            projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::with_capacity(2);
        if let Some((lake, indexes)) = &self.lake {
            let lake_projection: Vec<usize> =
                projection.iter().map(|index| indexes[*index]).collect();
            inputs.push(lake.scan(state, Some(&lake_projection), filters, limit).await?);
        }
        // The node sends only the projected columns (one, if none: rows still count).
        let fetched: Vec<usize> = if projection.is_empty() {
            vec![0]
        } else {
            let mut sorted = projection.clone();
            sorted.sort_unstable();
            sorted.dedup();
            sorted
        };
        let live = self.read_live(&fetched).await?;
        let fetched_schema = Arc::new(self.schema.project(&fetched)?);
        let within: Vec<usize> = projection
            .iter()
            .map(|index| fetched.iter().position(|at| at == index).unwrap_or(0))
            .collect();
        let memory =
            MemorySourceConfig::try_new(&[live], fetched_schema, Some(within))?.with_limit(limit);
        inputs.push(DataSourceExec::from_data_source(memory));
        UnionExec::try_new(inputs)
    }
}

/// A primary-key table: its current rows, from the node's KV snapshots.
#[derive(Debug)]
struct KvTable {
    connection: Connection,
    path: TablePath,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for KvTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let scanner = SnapshotScanner::new(&self.connection, &self.path).await.map_err(external)?;
        let rows: Vec<RecordBatch> = scanner
            .all()
            .await
            .map_err(external)?
            .into_iter()
            .flat_map(|bucket| bucket.rows)
            .map(|batch| {
                // The snapshot's batches carry the table's schema, maybe without its metadata.
                RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
            })
            .collect::<Result<_, _>>()?;
        let memory =
            MemorySourceConfig::try_new(&[rows], self.schema.clone(), projection.cloned())?
                .with_limit(limit);
        Ok(DataSourceExec::from_data_source(memory))
    }
}

/// Prints `batches` as a text table (headers even with no rows).
pub fn format_table(
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<String, arrow_schema::ArrowError> {
    Ok(arrow_cast::pretty::pretty_format_batches_with_schema(Arc::new(schema.clone()), batches)?
        .to_string())
}
