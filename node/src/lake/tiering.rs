//! [`LakeService`]: the tiering thread.
//!
//! A glommio executor of its own (pinned when `lake.core` is set, otherwise unbound so it
//! never delays a shard on small machines) that owns a tokio current-thread runtime for
//! iceberg-rust and sqlx: every Iceberg call runs inside `block_on` on this thread, never on
//! a shard core. Reads go to the shard owning each bucket (see [`super::link`]).
//!
//! A round of one table: for each bucket, from its tiered offset (read from the table's
//! current snapshot) up to the high watermark seen by the round's first read (at most
//! [`ROUND_BUCKET_BYTES_MAX`]), decode the batches, convert them to the lake schema and
//! stream them into Parquet data files; then one fast append commits every bucket's files
//! with the new offsets in the snapshot properties, and the owning shards are told the new
//! offsets (retention may then delete what is below them). A round starts `freshness`
//! after the previous one started, or at once while a bucket is still catching up.
//! A failed round (or table set-up) is printed on stderr, counted, forgotten — the next
//! attempt starts again from the lake's snapshot — and retried after [`RETRY_DELAY`].

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use futures_channel::{mpsc, oneshot};
use glommio::{LocalExecutorBuilder, Placement};
use iceberg::io::LocalFsStorageFactory;
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultLocationGenerator, FileNameGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog as _, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalog, SqlCatalogBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use ufer_wire::{BatchDecoder, ChangeType, LogBatch};

use super::link::{TierRead, TierRequest};
use super::metrics::{LakeMetrics, TableLag};
use super::{
    decode_offsets, encode_offsets, DATA_FILE_SIZE_MAX_BYTES, OFFSETS_PROPERTY,
    READ_SIZE_MAX_BYTES, ROUND_BUCKET_BYTES_MAX, TABLE_ID_PROPERTY,
};
use crate::catalog::{Catalog, SharedCatalog};
use crate::config::{LakeConfig, NodeConfig};
use crate::error::NodeError;
use crate::routing::shard_of;
use crate::table::{resolve, LakeSchema, ResolvedTable};

/// How often the thread looks for tables that are due (and for a stop).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long a failed round or table set-up waits before it is tried again.
pub const RETRY_DELAY: Duration = Duration::from_secs(5);

/// I/O memory of the tiering executor: it does no direct I/O of its own.
const LAKE_IO_MEMORY_BYTES: usize = 1024 * 1024;

/// A test hook (environment variable `UFER_LAKE_CRASH_POINT`): abort the process at this
/// point of the first round that tiers records, as a crash would.
const CRASH_POINT_VARIABLE: &str = "UFER_LAKE_CRASH_POINT";

/// Where a crash test stops the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrashPoint {
    /// Records read, no file written.
    BeforeWrite,
    /// Data files written and closed, not committed.
    AfterWrite,
    /// Committed, shards not told.
    AfterCommit,
}

impl CrashPoint {
    fn from_env() -> Option<Self> {
        match std::env::var(CRASH_POINT_VARIABLE).ok()?.as_str() {
            "before-write" => Some(Self::BeforeWrite),
            "after-write" => Some(Self::AfterWrite),
            "after-commit" => Some(Self::AfterCommit),
            _ => None,
        }
    }
}

/// Why a tiering round or a table's set-up failed.
#[derive(Debug, thiserror::Error)]
enum TieringError {
    #[error("Iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("{0}")]
    Schema(#[from] crate::table::LakeSchemaError),
    #[error("reading bucket {bucket}: {message}")]
    Read { bucket: u32, message: String },
    #[error("the lake table's snapshot property {OFFSETS_PROPERTY} is not well formed: {0:?}")]
    Offsets(String),
    #[error("the node is stopping")]
    Stopping,
}

/// The running tiering thread.
#[derive(Debug)]
pub struct LakeService {
    join: glommio::ExecutorJoinHandle<()>,
    stopping: Arc<AtomicBool>,
    metrics: Arc<LakeMetrics>,
}

impl LakeService {
    /// Starts the tiering thread of a node whose shards answer on `shards`.
    pub fn start(
        config: &NodeConfig,
        catalog: SharedCatalog,
        shards: Vec<mpsc::UnboundedSender<TierRequest>>,
    ) -> Result<Self, NodeError> {
        let stopping = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(LakeMetrics::default());
        let placement = match config.lake.core {
            Some(core) => Placement::Fixed(core),
            None => Placement::Unbound,
        };
        let context = Context {
            lake: config.lake.clone(),
            data_dir: config.data_dir.clone(),
            log: config.log.clone(),
            catalog,
            shards,
            stopping: stopping.clone(),
            metrics: metrics.clone(),
            crash_point: CrashPoint::from_env(),
        };
        let join = LocalExecutorBuilder::new(placement)
            .name("ufer-lake")
            .io_memory(LAKE_IO_MEMORY_BYTES)
            .spawn(move || async move { run(context).await })
            .map_err(|error| NodeError::Startup(format!("starting the tiering thread: {error}")))?;
        Ok(Self { join, stopping, metrics })
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<LakeMetrics> {
        self.metrics.clone()
    }

    /// Stops it after the round in progress (an unfinished round is simply not committed).
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.join.join();
    }
}

struct Context {
    lake: LakeConfig,
    data_dir: std::path::PathBuf,
    log: ufer_shard::LogConfig,
    catalog: SharedCatalog,
    shards: Vec<mpsc::UnboundedSender<TierRequest>>,
    stopping: Arc<AtomicBool>,
    metrics: Arc<LakeMetrics>,
    crash_point: Option<CrashPoint>,
}

/// One lake-enabled table as the thread knows it.
struct LakeTable {
    resolved: Rc<ResolvedTable>,
    name: String,
    lake: LakeSchema,
    table: Table,
    decoder: BatchDecoder,
    /// Per bucket: records below it are in the lake (from the current snapshot).
    offsets: BTreeMap<u32, u64>,
    next_round: Instant,
}

async fn run(context: Context) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ufer: lake tiering stopped: no tokio runtime: {error}");
            return;
        }
    };
    let mut catalog: Option<SqlCatalog> = None;
    let mut tables: HashMap<u64, LakeTable> = HashMap::new();
    let mut retry_at: HashMap<u64, Instant> = HashMap::new();
    let mut catalog_retry_at = Instant::now();
    let mut seen_catalog = None;
    let mut lake_tables: Vec<Rc<ResolvedTable>> = Vec::new();
    while !context.stopping.load(Ordering::SeqCst) {
        let current = context.catalog.get();
        if seen_catalog.as_ref().is_none_or(|seen| !Arc::ptr_eq(seen, &current)) {
            // The catalog changed: which tables are lake tables now.
            lake_tables = lake_tables_of(&context, &current);
            tables.retain(|id, _| lake_tables.iter().any(|table| table.info.table_id == *id));
            context.metrics.retain_tables(
                &lake_tables.iter().map(|table| table.info.path.to_string()).collect::<Vec<_>>(),
            );
            seen_catalog = Some(current);
        }
        if lake_tables.is_empty() {
            glommio::timer::sleep(POLL_INTERVAL).await;
            continue;
        }
        if catalog.is_none() && Instant::now() >= catalog_retry_at {
            match runtime.block_on(open_catalog(&context, &runtime)) {
                Ok(opened) => catalog = Some(opened),
                Err(error) => {
                    fail(&context, &format!("opening the lake catalog: {error}"));
                    catalog_retry_at = Instant::now() + RETRY_DELAY;
                }
            }
        }
        let Some(iceberg) = &catalog else {
            glommio::timer::sleep(POLL_INTERVAL).await;
            continue;
        };
        tier_due_tables(&context, &runtime, iceberg, &lake_tables, &mut tables, &mut retry_at)
            .await;
        glommio::timer::sleep(POLL_INTERVAL).await;
    }
}

/// The lake tables of `catalog`, resolved.
fn lake_tables_of(context: &Context, catalog: &Catalog) -> Vec<Rc<ResolvedTable>> {
    catalog
        .all_tables()
        .filter_map(|info| resolve(info, &context.log).ok())
        .filter(|table| table.lake.is_some())
        .map(Rc::new)
        .collect()
}

/// One pass over `lake_tables`: sets up each that is not in `tables` yet and runs a round of
/// each that is due, until the node stops. A table whose set-up or round fails is tried
/// again at its `retry_at`.
async fn tier_due_tables(
    context: &Context,
    runtime: &tokio::runtime::Runtime,
    iceberg: &SqlCatalog,
    lake_tables: &[Rc<ResolvedTable>],
    tables: &mut HashMap<u64, LakeTable>,
    retry_at: &mut HashMap<u64, Instant>,
) {
    for resolved in lake_tables {
        if context.stopping.load(Ordering::SeqCst) {
            return;
        }
        let table_id = resolved.info.table_id;
        let now = Instant::now();
        if retry_at.get(&table_id).is_some_and(|at| now < *at) {
            continue;
        }
        let table = match tables.entry(table_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                match runtime.block_on(load_table(iceberg, resolved)) {
                    Ok(table) => {
                        tell_shards(context, &table);
                        entry.insert(table)
                    }
                    Err(error) => {
                        fail(
                            context,
                            &format!("setting up lake table {}: {error}", resolved.info.path),
                        );
                        retry_at.insert(table_id, now + RETRY_DELAY);
                        continue;
                    }
                }
            }
        };
        if now < table.next_round {
            continue;
        }
        match tier_round(context, runtime, iceberg, table).await {
            Ok(caught_up) => {
                let freshness = resolved.lake.as_ref().map_or(RETRY_DELAY, |lake| lake.freshness);
                table.next_round = if caught_up { now + freshness } else { Instant::now() };
                retry_at.remove(&table_id);
            }
            Err(TieringError::Stopping) => return,
            Err(error) => {
                fail(context, &format!("tiering {}: {error}", resolved.info.path));
                tables.remove(&table_id);
                retry_at.insert(table_id, Instant::now() + RETRY_DELAY);
            }
        }
    }
}

fn fail(context: &Context, message: &str) {
    LakeMetrics::add(&context.metrics.errors, 1);
    eprintln!("ufer: lake: {message} (retrying in {} s)", RETRY_DELAY.as_secs());
}

async fn open_catalog(
    context: &Context,
    runtime: &tokio::runtime::Runtime,
) -> Result<SqlCatalog, iceberg::Error> {
    let uri = context.lake.catalog_uri(&context.data_dir);
    if context.lake.catalog_uri.is_none() {
        let dir = context.data_dir.join("lake");
        std::fs::create_dir_all(&dir).map_err(|error| {
            iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                format!("creating {}: {error}", dir.display()),
            )
        })?;
    }
    SqlCatalogBuilder::default()
        .uri(uri)
        .warehouse_location(context.lake.warehouse(&context.data_dir))
        .sql_bind_style(SqlBindStyle::QMark)
        .with_storage_factory(Arc::new(LocalFsStorageFactory))
        .with_runtime(iceberg::Runtime::new(runtime))
        .load(context.lake.catalog_name.clone(), HashMap::new())
        .await
}

/// The lake table of `resolved`, created if missing (or replaced if it belongs to a ufer
/// table of the same name that was dropped), with its tiered offsets.
async fn load_table(
    catalog: &SqlCatalog,
    resolved: &Rc<ResolvedTable>,
) -> Result<LakeTable, TieringError> {
    let lake = LakeSchema::new(resolved.schema.arrow(), resolved.primary_key.is_some())?;
    let path = &resolved.info.path;
    let namespace = NamespaceIdent::new(path.database.clone());
    let ident = TableIdent::new(namespace.clone(), path.table.clone());
    let table_id = resolved.info.table_id.to_string();
    if !catalog.namespace_exists(&namespace).await? {
        catalog.create_namespace(&namespace, HashMap::new()).await?;
    }
    let mut existing = None;
    if catalog.table_exists(&ident).await? {
        let table = catalog.load_table(&ident).await?;
        if table.metadata().properties().get(TABLE_ID_PROPERTY) == Some(&table_id) {
            existing = Some(table);
        } else {
            // A dropped ufer table's lake table: its history is not this table's.
            catalog.drop_table(&ident).await?;
        }
    }
    let table = match existing {
        Some(table) => table,
        None => {
            let creation = TableCreation::builder()
                .name(path.table.clone())
                .schema(lake.iceberg.clone())
                .properties([
                    (TABLE_ID_PROPERTY.to_string(), table_id),
                    ("write.parquet.compression-codec".to_string(), "zstd".to_string()),
                ])
                .build();
            catalog.create_table(&namespace, creation).await?
        }
    };
    let offsets = tiered_offsets(&table)?;
    let decoder = BatchDecoder::new(resolved.schema.clone());
    Ok(LakeTable {
        resolved: resolved.clone(),
        name: path.to_string(),
        lake,
        table,
        decoder,
        offsets,
        next_round: Instant::now(),
    })
}

/// The tiered offsets in `table`'s current snapshot (none: nothing tiered).
fn tiered_offsets(table: &Table) -> Result<BTreeMap<u32, u64>, TieringError> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(BTreeMap::new());
    };
    match snapshot.summary().additional_properties.get(OFFSETS_PROPERTY) {
        None => Ok(BTreeMap::new()),
        Some(text) => decode_offsets(text).ok_or_else(|| TieringError::Offsets(text.clone())),
    }
}

/// Tells each bucket's shard what the lake holds of it.
fn tell_shards(context: &Context, table: &LakeTable) {
    let table_id = table.resolved.info.table_id;
    for bucket in 0..table.resolved.info.definition.bucket_count {
        let offset = table.offsets.get(&bucket).copied().unwrap_or(0);
        let owner = shard_of(table_id, bucket, context.shards.len());
        let _ =
            context.shards[owner].unbounded_send(TierRequest::Tiered { table_id, bucket, offset });
    }
}

async fn read_from_shard(
    context: &Context,
    table_id: u64,
    bucket: u32,
    offset: u64,
) -> Result<TierRead, TieringError> {
    let owner = shard_of(table_id, bucket, context.shards.len());
    let (reply, answer) = oneshot::channel();
    let request =
        TierRequest::Read { table_id, bucket, offset, max_bytes: READ_SIZE_MAX_BYTES, reply };
    context.shards[owner].unbounded_send(request).map_err(|_| TieringError::Stopping)?;
    match answer.await {
        Err(_) => Err(TieringError::Stopping),
        Ok(Err(error)) => Err(TieringError::Read { bucket, message: error.to_string() }),
        Ok(Ok(read)) => Ok(read),
    }
}

/// Data file names: bucket, first offset of the round, a random UUID, a sequence number.
/// Never the same twice, in this process or any other.
#[derive(Clone, Debug)]
struct UniqueFileNames {
    prefix: String,
    next: Arc<AtomicU64>,
}

impl UniqueFileNames {
    fn new(bucket: u32, first_offset: u64) -> Self {
        let prefix = format!("{bucket:05}-{first_offset:020}-{}", uuid::Uuid::new_v4());
        Self { prefix, next: Arc::new(AtomicU64::new(0)) }
    }
}

impl FileNameGenerator for UniqueFileNames {
    fn generate_file_name(&self) -> String {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{sequence:05}.{}", self.prefix, DataFileFormat::Parquet)
    }
}

type DataWriter = iceberg::writer::base_writer::data_file_writer::DataFileWriter<
    ParquetWriterBuilder,
    DefaultLocationGenerator,
    UniqueFileNames,
>;

async fn new_writer(
    table: &Table,
    bucket: u32,
    first_offset: u64,
) -> Result<DataWriter, iceberg::Error> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let parquet = ParquetWriterBuilder::new(properties, table.metadata().current_schema().clone());
    let locations = DefaultLocationGenerator::new(table.metadata())?;
    let rolling = RollingFileWriterBuilder::new(
        parquet,
        DATA_FILE_SIZE_MAX_BYTES,
        table.file_io().clone(),
        locations,
        UniqueFileNames::new(bucket, first_offset),
    );
    DataFileWriterBuilder::new(rolling).build(None).await
}

/// One round of `table`. Returns whether every bucket caught up with the high watermark
/// its first read saw.
async fn tier_round(
    context: &Context,
    runtime: &tokio::runtime::Runtime,
    catalog: &SqlCatalog,
    table: &mut LakeTable,
) -> Result<bool, TieringError> {
    let mut offsets = table.offsets.clone();
    let mut files: Vec<DataFile> = Vec::new();
    let mut caught_up = true;
    let mut lag = 0u64;
    let (mut rows_total, mut bytes_total) = (0u64, 0u64);
    for bucket in 0..table.resolved.info.definition.bucket_count {
        let start = offsets.get(&bucket).copied().unwrap_or(0);
        let tiered = tier_bucket(context, runtime, table, bucket, start).await?;
        files.extend(tiered.files);
        caught_up &= tiered.caught_up;
        rows_total += tiered.rows;
        bytes_total += tiered.bytes;
        if tiered.next != start {
            offsets.insert(bucket, tiered.next);
        }
        lag += tiered.lag;
    }
    let commit_ms = ufer_shard::Clock::now_ms(&ufer_shard::SystemClock);
    let previous = context.metrics.lag(&table.name).unwrap_or_default();
    if files.is_empty() {
        // Nothing new (or only empty batches: their offsets are passed again next round).
        context.metrics.set_lag(&table.name, TableLag { records: lag, ..previous });
        return Ok(caught_up);
    }
    if context.crash_point == Some(CrashPoint::AfterWrite) {
        std::process::abort();
    }
    let file_count = files.len() as u64;
    commit(runtime, catalog, table, files, &offsets)?;
    if context.crash_point == Some(CrashPoint::AfterCommit) {
        std::process::abort();
    }
    tell_shards(context, table);
    LakeMetrics::add(&context.metrics.commits, 1);
    LakeMetrics::add(&context.metrics.files, file_count);
    LakeMetrics::add(&context.metrics.rows, rows_total);
    LakeMetrics::add(&context.metrics.batch_bytes, bytes_total);
    context.metrics.set_lag(&table.name, TableLag { records: lag, last_commit_ms: commit_ms });
    Ok(caught_up)
}

/// What a round copied of one bucket.
struct BucketRound {
    /// The offset after the last record copied.
    next: u64,
    /// Records below the high watermark the round's first read saw, not copied.
    lag: u64,
    /// Whether the round reached that high watermark (not stopped by
    /// [`ROUND_BUCKET_BYTES_MAX`]).
    caught_up: bool,
    /// The data files written, closed.
    files: Vec<DataFile>,
    /// Rows written.
    rows: u64,
    /// Bytes of log batches read.
    bytes: u64,
}

/// Copies `bucket` of `table` from offset `start` into data files, up to the high watermark
/// of the first read (at most [`ROUND_BUCKET_BYTES_MAX`]).
async fn tier_bucket(
    context: &Context,
    runtime: &tokio::runtime::Runtime,
    table: &LakeTable,
    bucket: u32,
    start: u64,
) -> Result<BucketRound, TieringError> {
    let table_id = table.resolved.info.table_id;
    let mut next = start;
    let mut target = None;
    let (mut round_bytes, mut rows) = (0u64, 0u64);
    let mut caught_up = true;
    let mut writer: Option<DataWriter> = None;
    loop {
        if context.stopping.load(Ordering::SeqCst) {
            return Err(TieringError::Stopping);
        }
        let read = read_from_shard(context, table_id, bucket, next).await?;
        let target = *target.get_or_insert(read.high_watermark);
        if next < read.log_start_offset {
            // Deleted by retention before it was tiered: nothing to copy.
            LakeMetrics::add(&context.metrics.skipped_records, read.log_start_offset - next);
            eprintln!(
                "ufer: lake: {} bucket {bucket}: records {next}..{} were deleted before they were tiered",
                table.name, read.log_start_offset
            );
            next = read.log_start_offset;
            continue;
        }
        if read.records.is_empty() {
            break;
        }
        round_bytes += read.records.len() as u64;
        let batches = convert(table, bucket, &read, &mut next)?;
        if !batches.is_empty() {
            if context.crash_point == Some(CrashPoint::BeforeWrite) {
                std::process::abort();
            }
            let write = write_batches(&table.table, bucket, start, &mut writer, batches);
            rows += runtime.block_on(write)?;
        }
        if next >= target {
            break;
        }
        if round_bytes >= ROUND_BUCKET_BYTES_MAX {
            caught_up = false;
            break;
        }
    }
    let files = match writer {
        Some(mut writer) => runtime.block_on(writer.close())?,
        None => Vec::new(),
    };
    let lag = target.unwrap_or(next).saturating_sub(next);
    Ok(BucketRound { next, lag, caught_up, files, rows, bytes: round_bytes })
}

/// Writes `batches` into the bucket's data files, opening `writer` for the first; returns
/// the rows written.
async fn write_batches(
    table: &Table,
    bucket: u32,
    first_offset: u64,
    writer: &mut Option<DataWriter>,
    batches: Vec<RecordBatch>,
) -> Result<u64, iceberg::Error> {
    if writer.is_none() {
        *writer = Some(new_writer(table, bucket, first_offset).await?);
    }
    let mut rows = 0u64;
    if let Some(writer) = writer.as_mut() {
        for batch in batches {
            rows += batch.num_rows() as u64;
            writer.write(batch).await?;
        }
    }
    Ok(rows)
}

/// Commits `files` to `table` in one fast append whose snapshot records `offsets`, and
/// takes the tiered offsets from the new snapshot.
fn commit(
    runtime: &tokio::runtime::Runtime,
    catalog: &SqlCatalog,
    table: &mut LakeTable,
    files: Vec<DataFile>,
    offsets: &BTreeMap<u32, u64>,
) -> Result<(), TieringError> {
    let properties = HashMap::from([
        (OFFSETS_PROPERTY.to_string(), encode_offsets(offsets)),
        (TABLE_ID_PROPERTY.to_string(), table.resolved.info.table_id.to_string()),
    ]);
    let transaction = Transaction::new(&table.table);
    let append =
        transaction.fast_append().add_data_files(files).set_snapshot_properties(properties);
    let transaction = append.apply(transaction)?;
    table.table = runtime.block_on(transaction.commit(catalog))?;
    // The commit is what counts: what the snapshot now says is what the lake holds.
    table.offsets = tiered_offsets(&table.table)?;
    Ok(())
}

/// The lake rows of the batches in `read` from offset `next` on; moves `next` past them.
fn convert(
    table: &LakeTable,
    bucket: u32,
    read: &TierRead,
    next: &mut u64,
) -> Result<Vec<RecordBatch>, TieringError> {
    let bad = |message: String| TieringError::Read { bucket, message };
    let mut batches = Vec::new();
    let mut at = 0usize;
    while at < read.records.len() {
        let length = LogBatch::parse(&read.records.as_slice()[at..])
            .map_err(|error| bad(error.to_string()))?
            .len();
        let decoded = table
            .decoder
            .decode(&read.records.slice_with_length(at, length))
            .map_err(|error| bad(error.to_string()))?;
        at += length;
        let base = decoded.base_offset();
        let rows = decoded.record_batch.num_rows();
        let end = base + (rows as u64).max(1);
        if end <= *next {
            continue;
        }
        let skip = next.saturating_sub(base) as usize;
        if rows > skip {
            let change_types: Vec<ChangeType> =
                (skip..rows).map(|row| decoded.change_type(row)).collect();
            let part = decoded.record_batch.slice(skip, rows - skip);
            let timestamp = decoded.header.commit_timestamp.get();
            batches.push(table.lake.convert(
                &part,
                bucket,
                base + skip as u64,
                timestamp,
                &change_types,
            )?);
        }
        *next = end;
    }
    Ok(batches)
}
