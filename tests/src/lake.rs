//! Lake test support: waiting until a table is tiered, reading its Iceberg table back with
//! iceberg-rust (the same catalog and warehouse the node uses), and a Python with pyiceberg
//! for reading it as a Python user would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::StringArray;
use arrow_array::{Array, Int32Array, Int64Array, RecordBatch};
use futures_util::TryStreamExt;
use iceberg::io::LocalFsStorageFactory;
use iceberg::{Catalog, CatalogBuilder, TableIdent};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};
use ufer_node::config::LakeConfig;
use ufer_node::lake::{decode_offsets, OFFSETS_PROPERTY};
use ufer_wire::client::{Admin, Connection, UpsertOptions, UpsertWriter};
use ufer_wire::protocol::messages::{BucketStatus, TablePath};

/// Where the test suite keeps its pyiceberg virtual environment (made on first use).
pub const PYICEBERG_VENV: &str = ".cache/ufer-pyiceberg";

/// Waits until `path` has at least `rows_total` durable records and every bucket has all
/// of its durable records in the lake; returns the buckets' states.
pub async fn wait_until_tiered(
    admin: &Admin,
    path: &TablePath,
    rows_total: u64,
    wait_max: Duration,
) -> Vec<BucketStatus> {
    let started = Instant::now();
    loop {
        let buckets = admin.describe_table(path).await.unwrap().buckets;
        let durable: u64 = buckets.iter().map(|bucket| bucket.high_watermark).sum();
        let tiered =
            buckets.iter().all(|bucket| bucket.tiered_offset == Some(bucket.high_watermark));
        if durable >= rows_total && tiered {
            return buckets;
        }
        assert!(
            started.elapsed() < wait_max,
            "not tiered after {wait_max:?}: {durable} of {rows_total} durable; {buckets:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A table read back from the lake.
#[derive(Debug)]
pub struct LakeRead {
    /// Every row.
    pub batches: Vec<RecordBatch>,
    /// The tiered offsets of the current snapshot.
    pub offsets: BTreeMap<u32, u64>,
    /// Paths of the data files the current snapshot references.
    pub data_files: Vec<String>,
}

impl LakeRead {
    /// Rows.
    pub fn row_count(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Each row's `id` (BIGINT) with its bucket and offset; panics on an id seen twice.
    pub fn places(&self) -> BTreeMap<i64, (u32, u64)> {
        let mut places = BTreeMap::new();
        for batch in &self.batches {
            let ids = column::<Int64Array>(batch, "id");
            let buckets = column::<Int32Array>(batch, "__bucket");
            let offsets = column::<Int64Array>(batch, "__offset");
            for row in 0..batch.num_rows() {
                let place = (buckets.value(row) as u32, offsets.value(row) as u64);
                let before = places.insert(ids.value(row), place);
                assert!(before.is_none(), "id {} twice in the lake", ids.value(row));
            }
        }
        places
    }

    /// The `id` (BIGINT) column of every row.
    pub fn ids(&self) -> Vec<i64> {
        self.batches
            .iter()
            .flat_map(|batch| column::<Int64Array>(batch, "id").values().to_vec())
            .collect()
    }
}

/// A column of `batch` by name, as `T`.
pub fn column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has another type"))
}

/// Reads `database.table` of the node with data in `data_dir` (default lake settings) with
/// iceberg-rust; `None` if the lake table does not exist yet.
pub async fn read_lake(data_dir: &Path, database: &str, table: &str) -> Option<LakeRead> {
    let config = LakeConfig::default();
    let catalog = SqlCatalogBuilder::default()
        .uri(config.catalog_uri(data_dir))
        .warehouse_location(config.warehouse(data_dir))
        .sql_bind_style(SqlBindStyle::QMark)
        .with_storage_factory(Arc::new(LocalFsStorageFactory))
        .load(config.catalog_name.clone(), Default::default())
        .await
        .unwrap();
    let ident = TableIdent::from_strs([database, table]).unwrap();
    if !catalog.table_exists(&ident).await.unwrap() {
        return None;
    }
    let table = catalog.load_table(&ident).await.unwrap();
    let offsets = table
        .metadata()
        .current_snapshot()
        .and_then(|snapshot| {
            snapshot.summary().additional_properties.get(OFFSETS_PROPERTY).cloned()
        })
        .map(|text| decode_offsets(&text).unwrap())
        .unwrap_or_default();
    let scan = table.scan().select_all().build().unwrap();
    let data_files: Vec<String> = scan
        .plan_files()
        .await
        .unwrap()
        .map_ok(|task| task.data_file_path().to_string())
        .try_collect()
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = scan.to_arrow().await.unwrap().try_collect().await.unwrap();
    Some(LakeRead { batches, offsets, data_files })
}

/// Parquet files under the lake table's data directory (committed or not).
pub fn parquet_files_on_disk(data_dir: &Path, database: &str, table: &str) -> Vec<PathBuf> {
    let dir = data_dir.join("lake").join("warehouse").join(database).join(table).join("data");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "parquet"))
        .collect();
    files.sort();
    files
}

/// A Python that has pyiceberg (with sqlite) and pyarrow: `UFER_PYICEBERG_PYTHON` if set,
/// otherwise a virtual environment in `~/.cache/ufer-pyiceberg`, made here on first use
/// (`.ci/run` makes it beforehand).
pub fn pyiceberg_python() -> PathBuf {
    if let Ok(python) = std::env::var("UFER_PYICEBERG_PYTHON") {
        return PathBuf::from(python);
    }
    let home = std::env::var("HOME").expect("HOME is set");
    let venv = Path::new(&home).join(PYICEBERG_VENV);
    let python = venv.join("bin").join("python");
    let ready = Command::new(&python)
        .args(["-c", "import pyiceberg.catalog.sql, pyarrow"])
        .status()
        .is_ok_and(|status| status.success());
    if ready {
        return python;
    }
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join("setup-pyiceberg.sh");
    let status = Command::new("bash").arg(&setup).arg(&venv).status().unwrap();
    assert!(status.success(), "{} {} failed", setup.display(), venv.display());
    python
}

/// Writes to a primary-key table `id BIGINT NOT NULL, name STRING` the history the lake
/// tests check: inserts 1 ann, 2 bob, 3 cy; updates 2 to bobby; deletes 3. Its changelog is
/// `+I +I +I -U +U -D` (offsets 0..5); its rows after it are 1 ann and 2 bobby.
pub async fn write_user_history(connection: &Connection, path: &TablePath) {
    let writer = UpsertWriter::new(connection, path, UpsertOptions::default()).await.unwrap();
    let schema = writer.table().schema.arrow().clone();
    let users = |rows: &[(i64, &str)]| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(rows.iter().map(|row| row.0).collect::<Vec<_>>())),
                Arc::new(StringArray::from(rows.iter().map(|row| row.1).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    };
    writer.upsert(&users(&[(1, "ann"), (2, "bob"), (3, "cy")])).await.unwrap();
    writer.upsert(&users(&[(2, "bobby")])).await.unwrap();
    writer.delete(&users(&[(3, "")])).await.unwrap();
}
