//! The catalog's file, `<data_dir>/catalog/catalog`: read once at start, replaced
//! crash-safely (a new file written and fsynced, renamed over the old one, the directory
//! fsynced) by shard 0 after each change, so a crash leaves the old or the new catalog,
//! never a mix. Also where the tables' files live, `<data_dir>/tables/<table id>/`.
//!
//! Invariant: a table's directory is created only after a durable catalog names the table,
//! so a catalog file missing beside table directories is a loss, never a new node; and a
//! directory is deleted only when the catalog provably dropped its table.

use std::path::{Path, PathBuf};

use ufer_io::{DataDir, IoError};

use crate::catalog::state::Catalog;
use crate::error::NodeError;

/// The catalog's directory in the data directory.
pub const CATALOG_DIR_NAME: &str = "catalog";

/// The catalog file's name in its directory.
pub const CATALOG_FILE_NAME: &str = "catalog";

/// The tables' directory in the data directory (a directory per table id).
pub const TABLES_DIR_NAME: &str = "tables";

/// Where the files of table `table_id` live (a directory per bucket inside).
pub fn table_dir(data_dir: &Path, table_id: u64) -> PathBuf {
    data_dir.join(TABLES_DIR_NAME).join(table_id.to_string())
}

/// The catalog's directory of a node with data in `data_dir`.
pub fn catalog_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(CATALOG_DIR_NAME)
}

/// Reads the catalog of a node with data in `data_dir`; `None` if there is no file and no
/// table data either (a new data directory). Table data without a catalog is an error: an
/// empty catalog in its place would disown every table.
pub fn load(data_dir: &Path) -> Result<Option<Catalog>, NodeError> {
    let loaded = read(data_dir)?;
    let tables = data_dir.join(TABLES_DIR_NAME);
    let has_tables = std::fs::read_dir(&tables).is_ok_and(|mut entries| entries.next().is_some());
    if loaded.is_none() && has_tables {
        let file = catalog_dir(data_dir).join(CATALOG_FILE_NAME);
        return Err(NodeError::Startup(format!(
            "{} holds table data but the catalog file {} is missing; the node does not start, \
             so that no table is lost. To recover: restore {} from a backup, or move {} aside \
             to start with no tables",
            tables.display(),
            file.display(),
            file.display(),
            tables.display()
        )));
    }
    Ok(loaded)
}

/// The catalog file's contents, if there is a file.
fn read(data_dir: &Path) -> Result<Option<Catalog>, NodeError> {
    let path = catalog_dir(data_dir).join(CATALOG_FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => Catalog::decode(&bytes)
            .map(Some)
            .map_err(|error| NodeError::Startup(format!("{}: {error}", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(NodeError::Startup(format!("reading {}: {error}", path.display()))),
    }
}

/// Replaces the catalog file in `dir` (the catalog's directory) with `catalog`.
pub async fn persist(dir: &DataDir, catalog: &Catalog) -> Result<(), IoError> {
    dir.replace_file(CATALOG_FILE_NAME, &catalog.encode()).await
}
