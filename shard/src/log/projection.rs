//! Projected reads: a stored batch cut down to some of its columns, in memory, after its
//! stored CRC was checked.
//!
//! Invariants: every projected batch passed its CRC check first, so a damaged column is
//! never served under the fresh CRC of the projected batch; a projection that does not fit
//! the batch is a [`ReadError::Projection`], damage to the batch a [`ReadError::Corrupt`].

use std::path::Path;

use ufer_io::{ReadBytes, SegmentFile};
use ufer_wire::{project, LogBatch, Projection};

use crate::log::error::ReadError;

/// The location of a stored batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredAt<'a> {
    pub(crate) file: &'a SegmentFile,
    pub(crate) position: u64,
    pub(crate) length: u64,
}

/// Projects the stored batch at `at` in memory, after checking its stored CRC: a batch not
/// `held` in memory already is read whole first. (Reading only the projected columns' byte ranges saved
/// disk reads but could not check them: a damaged column was served under a fresh CRC.
/// Per-column checksums in the batch would let such reads check what they read.)
pub(crate) async fn project_stored(
    at: StoredAt<'_>,
    held: Option<ReadBytes>,
    projection: &Projection,
) -> Result<Vec<u8>, ReadError> {
    let StoredAt { file, position, length } = at;
    let bytes = match held {
        Some(bytes) => bytes,
        None => file.read_exact_at(position, length as usize).await?,
    };
    if let Err(error) = LogBatch::parse(&bytes) {
        return Err(ReadError::corrupt(file, position, error.to_string()));
    }
    let projected = project(&bytes, projection).map_err(|error| {
        ReadError::from_projection(error, |reason| ReadError::corrupt(file, position, reason))
    })?;
    Ok(projected.assemble(&bytes))
}

/// Projects a batch from the tail cache of the log in `path` (it was checked when appended).
pub(crate) fn project_cached(
    bytes: &[u8],
    projection: &Projection,
    path: &Path,
) -> Result<Vec<u8>, ReadError> {
    let projected = project(bytes, projection).map_err(|error| {
        ReadError::from_projection(error, |reason| ReadError::Corrupt {
            path: path.to_path_buf(),
            position: 0,
            reason: format!("a cached batch: {reason}"),
        })
    })?;
    Ok(projected.assemble(bytes))
}
