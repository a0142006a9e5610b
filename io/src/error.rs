//! [`IoError`]: what can go wrong with a file, sorted by what the caller can do about it.

use std::io;
use std::path::{Path, PathBuf};

/// A failed file operation.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The file system is full. Appends not yet durable were discarded; the writer accepts
    /// new appends once space returns. Reads are unaffected.
    #[error("disk full while {op} {path}: {source}")]
    DiskFull {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error from the kernel.
        source: io::Error,
    },
    /// Another I/O error. For a write, appends not yet durable were discarded.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error from the kernel.
        source: io::Error,
    },
    /// `fdatasync` failed: what is on the device is unknown, so the writer refuses all
    /// further work and the process must stop and recover from disk (never retry a failed
    /// fsync).
    #[error("fdatasync of {path} failed ({reason}); the file's durable state is unknown")]
    Fatal {
        /// The file.
        path: PathBuf,
        /// The first failure.
        reason: String,
    },
    /// The append was discarded because a write before it failed; it is not in the file.
    #[error("append to {path} was discarded after an earlier write failed")]
    Discarded {
        /// The file.
        path: PathBuf,
    },
}

impl IoError {
    /// Classifies an error from the kernel for `op` on `path`.
    pub fn from_io(op: &'static str, path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        if source.raw_os_error() == Some(libc::ENOSPC)
            || source.kind() == io::ErrorKind::StorageFull
        {
            IoError::DiskFull { op, path, source }
        } else {
            IoError::Io { op, path, source }
        }
    }

    /// Same as [`IoError::from_io`] for an error from glommio, keeping the OS error code.
    pub fn from_glommio<T>(op: &'static str, path: &Path, error: glommio::GlommioError<T>) -> Self {
        Self::from_io(op, path, os_error(error))
    }

    /// True for [`IoError::DiskFull`].
    pub fn is_disk_full(&self) -> bool {
        matches!(self, IoError::DiskFull { .. })
    }

    /// True for [`IoError::Fatal`].
    pub fn is_fatal(&self) -> bool {
        matches!(self, IoError::Fatal { .. })
    }
}

/// The `io::Error` inside a glommio error, with its OS error code (glommio's own conversion
/// drops the code of errors it annotated).
pub fn os_error<T>(error: glommio::GlommioError<T>) -> io::Error {
    match error {
        glommio::GlommioError::IoError(source) => source,
        glommio::GlommioError::EnhancedIoError { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}
