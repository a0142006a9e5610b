//! [`DataDir`]: one directory of direct-I/O files, and the only way to open them.
//!
//! Opening a `DataDir` works around glommio 0.9's iopoll probe (upstream #605/#670): the
//! first DMA file a thread opens on a device decides, per thread, whether reads use the
//! polled ring, and if that file is empty the probe wrongly says yes and every later read on
//! the device fails with EOPNOTSUPP. `DataDir::open` therefore first opens a non-empty
//! sentinel file, so the probe reads real data. Every file is opened through a `DataDir`.
//!
//! Small metadata files are replaced crash-safely: write a temporary file, fdatasync it,
//! rename it over the old one, fsync the directory. A failed sync of either is fatal
//! ([`IoError::Fatal`]): what reached the device is unknown, and retrying could report
//! success for data that is not there.

use std::io;
use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, Directory, DmaFile, OpenOptions};

use crate::block::BLOCK_SIZE_BYTES;
use crate::error::{os_error, IoError};
use crate::segment_file::SegmentFile;
use crate::segment_writer::{SegmentWriter, WriterOptions};

/// Name of the sentinel file that makes glommio's iopoll probe read real data.
pub const DMA_PROBE_FILE_NAME: &str = ".ufer-dma-probe";

/// Suffix of temporary files while they are written; leftovers are removed on open.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// A directory holding direct-I/O files, opened on the current executor.
#[derive(Clone, Debug)]
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Opens (creating if needed) the directory at `path` for this executor thread, and
    /// removes temporary files a crash left behind.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, IoError> {
        let path = path.into();
        // Kept absolute: glommio fails some operations on a relative path with EBADF (it
        // opens relative to an invalid directory descriptor), and `./ufer-data` is the default.
        let path = std::path::absolute(&path)
            .map_err(|error| IoError::from_io("resolving", &path, error))?;
        // The directories this creates, outermost first: each one's entry in its parent is
        // made durable, or a power cut could take the directory (and every file acknowledged
        // in it) away.
        let created: Vec<PathBuf> =
            path.ancestors().take_while(|dir| !dir.exists()).map(Path::to_path_buf).collect();
        std::fs::create_dir_all(&path)
            .map_err(|error| IoError::from_io("creating", &path, error))?;
        for dir in created.iter().rev() {
            if let Some(parent) = dir.parent() {
                sync_directory(parent).await?;
            }
        }
        let probe = path.join(DMA_PROBE_FILE_NAME);
        let probe_ok = std::fs::metadata(&probe).is_ok_and(|meta| meta.len() >= BLOCK_SIZE_BYTES);
        if !probe_ok {
            std::fs::write(&probe, vec![0xA5u8; BLOCK_SIZE_BYTES as usize])
                .map_err(|error| IoError::from_io("writing", &probe, error))?;
        }
        let file = DmaFile::open(&probe)
            .await
            .map_err(|error| IoError::from_glommio("opening", &probe, error))?;
        file.close().await.map_err(|error| IoError::from_glommio("closing", &probe, error))?;
        let dir = Self { path };
        for name in dir.list()? {
            if name.ends_with(TEMPORARY_SUFFIX) {
                dir.remove(&name).await?;
            }
        }
        Ok(dir)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory.
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Names of the files in the directory (not sorted).
    pub fn list(&self) -> Result<Vec<String>, IoError> {
        let entries = std::fs::read_dir(&self.path)
            .map_err(|error| IoError::from_io("listing", &self.path, error))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| IoError::from_io("listing", &self.path, error))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Creates `name` (which must not exist) for appending, and makes its directory entry
    /// durable.
    pub async fn create_writer(
        &self,
        name: &str,
        options: WriterOptions,
    ) -> Result<SegmentWriter, IoError> {
        assert_own_name(name);
        let path = self.file_path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .dma_open(&path)
            .await
            .map_err(|error| IoError::from_glommio("creating", &path, error))?;
        self.sync().await?;
        SegmentWriter::open(file, path, 0, options).await
    }

    /// Opens the existing `name` for appending after its first `size` bytes (anything after
    /// them is cut off).
    pub async fn open_writer(
        &self,
        name: &str,
        size: u64,
        options: WriterOptions,
    ) -> Result<SegmentWriter, IoError> {
        let path = self.file_path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|error| IoError::from_glommio("opening", &path, error))?;
        SegmentWriter::open(file, path, size, options).await
    }

    /// Opens `name` for reads.
    pub async fn open_reader(&self, name: &str) -> Result<SegmentFile, IoError> {
        let path = self.file_path(name);
        let file = DmaFile::open(&path)
            .await
            .map_err(|error| IoError::from_glommio("opening", &path, error))?;
        Ok(SegmentFile::from_shared(std::rc::Rc::new(file), path))
    }

    /// Removes `name` (no error if it is already gone).
    pub async fn remove(&self, name: &str) -> Result<(), IoError> {
        let path = self.file_path(name);
        match glommio::io::remove(&path).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let error = os_error(error);
                if error.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(IoError::from_io("removing", &path, error))
                }
            }
        }
    }

    /// Makes the directory's entries (creations, renames, removals) durable. A failed
    /// fsync is [`IoError::Fatal`].
    pub async fn sync(&self) -> Result<(), IoError> {
        sync_directory(&self.path).await
    }

    /// Writes the first `size` bytes of `name` to the device again, as reads return them
    /// now, and fdatasyncs them. After a failed fdatasync the kernel may return bytes the
    /// device does not hold (Linux gives the failed blocks up, and a later fdatasync
    /// succeeds without them): a recovery that is to trust what it reads rewrites it first.
    /// A failed sync is [`IoError::Fatal`].
    pub async fn rewrite(&self, name: &str, size: u64) -> Result<(), IoError> {
        let path = self.file_path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|error| IoError::from_glommio("opening", &path, error))?;
        let result = rewrite_blocks(&file, &path, size).await;
        let closed =
            file.close().await.map_err(|error| IoError::from_glommio("closing", &path, error));
        result.and(closed)
    }

    /// Replaces `name` with `contents` so that after a crash the file holds either the old
    /// or the new contents, never a mix: temporary file, fdatasync, rename, fsync directory.
    pub async fn replace_file(&self, name: &str, contents: &[u8]) -> Result<(), IoError> {
        assert_own_name(name);
        let path = self.file_path(name);
        let temporary = self.file_path(&format!("{name}{TEMPORARY_SUFFIX}"));
        let file = BufferedFile::create(&temporary)
            .await
            .map_err(|error| IoError::from_glommio("creating", &temporary, error))?;
        let written = file
            .write_at(contents.to_vec(), 0)
            .await
            .map_err(|error| IoError::from_glommio("writing", &temporary, error))?;
        if written != contents.len() {
            let message = format!("short write: {written} of {} bytes", contents.len());
            let error = io::Error::new(io::ErrorKind::StorageFull, message);
            let _ = file.close().await;
            return Err(IoError::from_io("writing", &temporary, error));
        }
        file.fdatasync()
            .await
            .map_err(|error| IoError::from_glommio("syncing", &temporary, error))?;
        file.close().await.map_err(|error| IoError::from_glommio("closing", &temporary, error))?;
        glommio::io::rename(&temporary, &path)
            .await
            .map_err(|error| IoError::from_glommio("renaming", &temporary, error))?;
        self.sync().await
    }

    /// Reads the whole of a small file, or `None` if it does not exist.
    pub async fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, IoError> {
        let path = self.file_path(name);
        let file = match BufferedFile::open(&path).await {
            Ok(file) => file,
            Err(error) => {
                let error = os_error(error);
                if error.kind() == io::ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(IoError::from_io("opening", &path, error));
            }
        };
        let size = file
            .file_size()
            .await
            .map_err(|error| IoError::from_glommio("sizing", &path, error))?;
        let bytes = file
            .read_at(0, size as usize)
            .await
            .map_err(|error| IoError::from_glommio("reading", &path, error))?;
        let contents = bytes.to_vec();
        file.close().await.map_err(|error| IoError::from_glommio("closing", &path, error))?;
        Ok(Some(contents))
    }
}

/// Makes the entries of the directory at `path` durable; a failed fsync is
/// [`IoError::Fatal`].
async fn sync_directory(path: &Path) -> Result<(), IoError> {
    let dir = Directory::open(path)
        .await
        .map_err(|error| IoError::from_glommio("opening", path, error))?;
    if let Err(error) = dir.sync().await {
        return Err(IoError::Fatal {
            path: path.to_path_buf(),
            reason: format!("directory fsync failed: {}", os_error(error)),
        });
    }
    dir.close().await.map_err(|error| IoError::from_glommio("closing", path, error))
}

/// Bytes rewritten at a time by [`DataDir::rewrite`].
const REWRITE_CHUNK_BYTES: u64 = 1024 * 1024;

/// Reads `[0, size)` of `file` (rounded up to whole blocks) and writes it back in place,
/// then fdatasyncs.
async fn rewrite_blocks(file: &DmaFile, path: &Path, size: u64) -> Result<(), IoError> {
    let end = size.div_ceil(BLOCK_SIZE_BYTES) * BLOCK_SIZE_BYTES;
    let mut position = 0;
    while position < end {
        let length = (end - position).min(REWRITE_CHUNK_BYTES) as usize;
        let read = file
            .read_at_aligned(position, length)
            .await
            .map_err(|error| IoError::from_glommio("reading", path, error))?;
        let mut buffer = file.alloc_dma_buffer(length);
        buffer.as_bytes_mut().fill(0);
        buffer.as_bytes_mut()[..read.len()].copy_from_slice(&read);
        let written = file
            .write_at(buffer, position)
            .await
            .map_err(|error| IoError::from_glommio("rewriting", path, error))?;
        if written != length {
            let message = format!("short write: {written} of {length} bytes at {position}");
            return Err(IoError::from_io("rewriting", path, io::Error::other(message)));
        }
        position += length as u64;
    }
    file.fdatasync().await.map_err(|error| IoError::Fatal {
        path: path.to_path_buf(),
        reason: format!("fdatasync after rewriting failed: {}", os_error(error)),
    })
}

/// Names given to `create_writer` and `replace_file` come from our code: one file directly
/// in this directory, neither the probe sentinel nor a temporary name, which `open` would
/// delete after a crash.
fn assert_own_name(name: &str) {
    assert!(!name.is_empty() && !name.contains('/'), "a file name, not a path: {name:?}");
    assert!(!name.ends_with(TEMPORARY_SUFFIX), "{name:?} would be removed as a leftover");
    assert_ne!(name, DMA_PROBE_FILE_NAME, "the probe sentinel is never written");
}
