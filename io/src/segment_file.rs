//! [`SegmentFile`]: positional reads of a direct-I/O file.
//!
//! Reads go through io_uring with O_DIRECT: whole blocks are read into an aligned buffer
//! and the asked range is a view of it, so a batch that starts at a 64-byte multiple of the
//! file starts at a 64-byte aligned address in memory and decodes in place.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaFile, ReadResult};

use crate::error::IoError;

thread_local! {
    static BYTES_READ: Cell<u64> = const { Cell::new(0) };
}

/// Bytes asked of [`SegmentFile`] reads on this thread (this executor) so far: with the
/// bytes served, the read amplification of a shard.
pub fn bytes_read_on_this_thread() -> u64 {
    BYTES_READ.with(Cell::get)
}

/// Bytes read from a file: a view into an aligned, reference-counted read buffer.
pub type ReadBytes = ReadResult;

/// A file opened for positional direct-I/O reads. Cheap to clone.
#[derive(Clone)]
pub struct SegmentFile {
    file: Rc<DmaFile>,
    path: PathBuf,
}

impl std::fmt::Debug for SegmentFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SegmentFile {
    pub(crate) fn from_shared(file: Rc<DmaFile>, path: PathBuf) -> Self {
        Self { file, path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `len` bytes at `position`; fewer at the end of the file.
    pub async fn read_at(&self, position: u64, len: usize) -> Result<ReadBytes, IoError> {
        BYTES_READ.with(|read| read.set(read.get() + len as u64));
        self.file
            .read_at(position, len)
            .await
            .map_err(|error| IoError::from_glommio("reading", &self.path, error))
    }

    /// Reads exactly `len` bytes at `position`, or fails with `UnexpectedEof`.
    pub async fn read_exact_at(&self, position: u64, len: usize) -> Result<ReadBytes, IoError> {
        let bytes = self.read_at(position, len).await?;
        if bytes.len() < len {
            let message = format!("{} of {len} bytes at {position}", bytes.len());
            let error = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, message);
            return Err(IoError::from_io("reading", &self.path, error));
        }
        Ok(bytes)
    }

    /// Closes the file if this is its last handle (otherwise only drops this handle).
    /// Prefer this to dropping: a dropped file is closed by the reactor later, and not at
    /// all if the executor stops first.
    pub async fn close(self) -> Result<(), IoError> {
        DmaFile::close_rc(self.file)
            .await
            .map(|_| ())
            .map_err(|error| IoError::from_glommio("closing", &self.path, error))
    }

    /// The file's current size.
    pub async fn size(&self) -> Result<u64, IoError> {
        self.file
            .file_size()
            .await
            .map_err(|error| IoError::from_glommio("sizing", &self.path, error))
    }
}
