//! Projected reads: a stored batch cut down to some of its columns — in memory when the
//! whole batch was read (its CRC checked first), otherwise by reading its metadata and then
//! only the projected columns' byte ranges, all at once.
//!
//! Invariants: a batch projected in memory passed its CRC check first; a ranged projection
//! reads exactly the ranges the projection names (`seal` asserts they add up); a projection
//! that does not fit the batch is a [`ReadError::Projection`], damage to the batch a
//! [`ReadError::Corrupt`].

use std::path::Path;

use ufer_io::{ReadBytes, SegmentFile};
use ufer_wire::{project, required_prefix_size, LogBatch, Projection};

use crate::log::error::ReadError;

/// Leading bytes read first when projecting a batch by ranges.
pub const PROJECTION_PREFIX_READ_BYTES: usize = 4096;

/// What of a stored batch is in memory already.
#[derive(Debug)]
pub(crate) enum HeldBytes {
    /// The whole batch.
    Whole(ReadBytes),
    /// Its leading bytes (what the scan's window holds from its start).
    Head(ReadBytes),
    /// Nothing.
    Nothing,
}

/// The location of a stored batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredAt<'a> {
    pub(crate) file: &'a SegmentFile,
    pub(crate) position: u64,
    pub(crate) length: u64,
}

/// Projects the stored batch at `at`: in memory if it was read whole, otherwise by reading
/// its metadata and then only the projected columns' byte ranges.
pub(crate) async fn project_stored(
    at: StoredAt<'_>,
    held: HeldBytes,
    projection: &Projection,
) -> Result<Vec<u8>, ReadError> {
    let StoredAt { file, position, length } = at;
    let to_read_error = |error| {
        ReadError::from_projection(error, |reason| ReadError::corrupt(file, position, reason))
    };
    let head = match held {
        HeldBytes::Whole(bytes) => {
            // The whole batch is in memory anyway: check its stored CRC before trusting it.
            if let Err(error) = LogBatch::parse(&bytes) {
                return Err(ReadError::corrupt(file, position, error.to_string()));
            }
            let projected = project(&bytes, projection).map_err(to_read_error)?;
            return Ok(projected.assemble(&bytes));
        }
        HeldBytes::Head(head) => head,
        HeldBytes::Nothing => {
            file.read_at(position, PROJECTION_PREFIX_READ_BYTES.min(length as usize)).await?
        }
    };
    let mut prefix = head;
    let needed = required_prefix_size(&prefix).map_err(to_read_error)?;
    if needed > prefix.len() {
        prefix = file.read_exact_at(position, needed).await?;
    }
    let mut projected = project(&prefix, projection).map_err(to_read_error)?;
    // The ranges are read at once: the disk works on all of them together.
    let reads = projected
        .body_ranges()
        .iter()
        .map(|range| file.read_exact_at(position + range.start as u64, range.len()));
    let parts = futures_util::future::try_join_all(reads).await?;
    projected.seal(parts.iter().map(|part| &part[..]));
    let mut out = Vec::with_capacity(projected.len());
    out.extend_from_slice(projected.head());
    for part in &parts {
        out.extend_from_slice(part);
    }
    Ok(out)
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
