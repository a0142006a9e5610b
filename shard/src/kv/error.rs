//! [`KvError`]: what can go wrong in the KV tablet, each variant saying what the caller can
//! do.

use ufer_io::IoError;

/// A failed KV operation.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// A file operation failed. A failed flush or compaction left the previous snapshot and
    /// every file it names intact; retrying may succeed (disk full: once space returns, see
    /// [`KvError::is_disk_full`]).
    #[error("kv I/O failed: {0}")]
    Io(IoError),
    /// A file of the tablet failed its checks (bit flip, truncation, wrong format). Nothing
    /// wrong was returned; the tablet needs rebuilding from its changelog or a replica.
    #[error("corrupt kv file {file}: {reason}")]
    Corrupt {
        /// The file's name in the tablet's directory.
        file: String,
        /// What was wrong.
        reason: String,
    },
    /// An fsync failed earlier: the durable state is unknown and the tablet refuses all work
    /// (never retry a failed fsync). Stop and reopen from disk.
    #[error("kv tablet refuses work after a failed fsync: {0}")]
    Poisoned(String),
    /// The config does not validate.
    #[error("invalid kv config: {0}")]
    Config(String),
}

impl KvError {
    /// True when the disk is full (an I/O error the caller may retry after freeing space).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, KvError::Io(error) if error.is_disk_full())
    }

    /// True when the failure was a failed fsync (the tablet is now poisoned).
    pub fn is_fatal(&self) -> bool {
        matches!(self, KvError::Io(error) if error.is_fatal())
            || matches!(self, KvError::Poisoned(_))
    }

    pub(crate) fn corrupt(file: &str, reason: impl Into<String>) -> Self {
        KvError::Corrupt { file: file.to_string(), reason: reason.into() }
    }
}

impl From<IoError> for KvError {
    fn from(error: IoError) -> Self {
        KvError::Io(error)
    }
}
