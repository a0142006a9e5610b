//! The catalog's file, `<data_dir>/catalog/catalog`: read once at start, replaced
//! crash-safely (a new file written and fsynced, renamed over the old one, the directory
//! fsynced) by shard 0 after each change, so a crash leaves the old or the new catalog,
//! never a mix.

use std::path::{Path, PathBuf};

use ufer_io::{DataDir, IoError};

use crate::catalog::state::Catalog;
use crate::error::NodeError;

/// The catalog's directory in the data directory.
pub const CATALOG_DIR_NAME: &str = "catalog";

/// The catalog file's name in its directory.
pub const CATALOG_FILE_NAME: &str = "catalog";

/// The catalog's directory of a node with data in `data_dir`.
pub fn catalog_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(CATALOG_DIR_NAME)
}

/// Reads the catalog of a node with data in `data_dir`; `None` if there is no file.
pub fn load(data_dir: &Path) -> Result<Option<Catalog>, NodeError> {
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
