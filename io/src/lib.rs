//! `ufer-io`: direct-I/O files on glommio and io_uring.
//!
//! Everything below the log and KV formats: block alignment, an append-only segment writer
//! with group commit, positional aligned reads, crash-safe replacement of small files, and
//! file naming. Like every crate of the workspace it has no `unsafe` code (the workspace
//! forbids it); should a measured need arise, it would come here behind a safe API.
//!
//! Files are opened through a [`DataDir`], which works around a glommio probe bug, and all
//! operations run on the calling glommio executor.

pub mod block;
pub mod data_dir;
pub mod disk_probe;
pub mod error;
pub mod executor;
pub mod naming;
pub mod notifier;
pub mod quic_runtime;
pub mod segment_file;
pub mod segment_writer;

pub use block::{align_down, align_up, BLOCK_SIZE_BYTES};
pub use data_dir::DataDir;
pub use error::IoError;
pub use naming::{file_name, parse_file_name, FileKind};
pub use notifier::Notifier;
pub use segment_file::{bytes_read_on_this_thread, ReadBytes, SegmentFile};
pub use segment_writer::{AppendEnd, SegmentWriter, WriterOptions};
