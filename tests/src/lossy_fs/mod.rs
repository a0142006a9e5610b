//! A FUSE file system for power-loss and fsync-failure tests (in the manner of LazyFS): it
//! keeps every file in memory in two layers, what reads see now (*live*) and what survives
//! a power cut (*durable*), and loses on a power cut everything that was not made durable.
//!
//! What it models:
//! - **File data.** `fsync` and `fdatasync` of a file make its live contents and size
//!   durable (the two are not told apart). Writes, `ftruncate`/`set_len` and `fallocate`
//!   change only the live layer. Closing a file makes nothing durable.
//! - **Directory entries, strictly (POSIX).** Creating, removing or renaming an entry
//!   changes only the live layer of its directory; an `fsync` of the directory makes all of
//!   that directory's entries durable at once, and nothing else does: not an fsync of the
//!   file (unlike ext4, whose journal commit often carries the entry along), not an fsync
//!   of a child or parent. A new directory is an entry of its parent like a file; its own
//!   entries become durable when it is fsynced. A rename is durable once the directory (or
//!   both directories) holding the old and new names are fsynced: if only the new one is,
//!   a power cut leaves the file under both names (a hard link). A file whose entry is
//!   durable but whose data never was comes back empty.
//! - **Power cuts.** [`LossyFs::power_cut`] forgets every open handle (a descriptor from
//!   before the cut fails with EIO for ever: its process died with the power) and turns the
//!   file system off — every request that opens, reads, writes, syncs or changes anything
//!   fails with EIO, so what still runs of the old process changes nothing — until
//!   [`LossyFs::power_on`], which puts every file and directory back to its durable state.
//!   (Lookups and attributes still answer while it is off, with the names the old process
//!   knew: glommio panics rather than fail when a file it just opened is not found by its
//!   path.) The cut takes the lock every request is applied under: it never lands inside a
//!   request.
//! - **Torn writes** ([`Cut`]). [`LossyFs::power_cut_torn`] (`Cut::TornPrefix`) keeps, per
//!   file, a random prefix of the bytes appended past its durable size, ending on a 4 KiB
//!   boundary or at the end of what was written; `Cut::TornBlocks` keeps each block
//!   written since the last sync or not, independently, with zeros in dropped blocks below
//!   a kept one. Neither ever produces a byte that was not written (or a zero of an
//!   extension or hole); bytes below the durable size keep their durable values in
//!   `TornPrefix`.
//! - **fsync failures.** [`LossyFs::fail_syncs`] makes the next syncs of matching files or
//!   directories fail with EIO. As on Linux, a failed file sync gives up the blocks it was
//!   to write: reads still see them, a later successful sync does not make them durable,
//!   and a power cut drops them; writing them again makes them dirty again.
//! - **Counters** ([`Stats`]): syncs, failed syncs, reads and writes, and how many of those
//!   came from an O_DIRECT descriptor (glommio's DMA files are O_DIRECT, set with `fcntl`
//!   after the open, so the open request does not show it; every read and write does).
//!
//! What it does not model: metadata beyond names, kinds and sizes (modes, owners and
//! times are not durable and `chmod` is not kept); hard links and symlinks (refused);
//! `RENAME_EXCHANGE` and hole punching (EINVAL, EOPNOTSUPP); lost or reordered directory
//! operations within one directory (a directory's entries become durable all at once);
//! disk space beyond [`CONTENTS_SIZE_MAX_BYTES`] (ENOSPC past it); memory-mapped files.
//!
//! Every file is opened with FOPEN_DIRECT_IO and nothing is cached by the kernel, so all
//! I/O — O_DIRECT or buffered — reaches the model. glommio opens DMA files on it in real
//! direct-I/O mode (it falls back to buffered I/O only on tmpfs).
//!
//! The file system is served by a thread of the test process (fuser mounts it with
//! mount(2) as root, so neither libfuse nor `fusermount3` is needed). What runs on it may
//! be a glommio executor of the same process — cut the power, stop it, then power on — or a
//! child process: kill it, then [`LossyFs::power_cycle`].
//!
//! Use (as root):
//!
//! ```no_run
//! use ufer_tests::lossy_fs::LossyFs;
//! use std::io::Write;
//!
//! let fs = LossyFs::mount().unwrap();
//! let path = fs.path().join("a");
//! let mut file = std::fs::File::create(&path).unwrap();
//! file.write_all(b"kept").unwrap();
//! file.sync_data().unwrap();
//! std::fs::File::open(fs.path()).unwrap().sync_all().unwrap(); // the entry too
//! file.write_all(b" lost").unwrap();
//! drop(file);
//! fs.power_cut();
//! fs.power_on();
//! assert_eq!(std::fs::read(&path).unwrap(), b"kept");
//! ```

mod file_contents;
mod model;
mod mount;
mod server;

pub use file_contents::{Cut, BLOCK_SIZE_BYTES};
pub use model::{Stats, CONTENTS_SIZE_MAX_BYTES};
pub use mount::LossyFs;
