//! [`LogTablet`]: the log of one bucket — appends with offsets and commit timestamps,
//! durable by group commit; reads by offset with optional projection; offset lookups by
//! time; retention of whole sealed segments.
//!
//! This file holds the tablet itself: what it owns, opening it, and what it tells about
//! itself. Its work is spread over the modules beside it, each an `impl LogTablet` block:
//! `append` (appends, durability, rollback after a failure, idempotent writers), `roll`
//! (sealing the active segment), `retention`, `read` (with `read_plan`, `projection` and
//! `segment_view`) and `offsets` (offsets by time).
//!
//! Invariants: offsets are dense from the log start offset to the log end offset; every
//! offset below the high watermark is durable, and reads never go past it; commit
//! timestamps never decrease; only the active (last) segment is written; retention deletes
//! only whole sealed segments, oldest first; a segment spans at most 2^32 offsets (its
//! index holds 32-bit relative offsets). Appends, rolls, rollbacks and retention are
//! serialized by the append lock; the high watermark and the cache of open sealed files are
//! updated in place, without awaiting, by whichever task notices. After an
//! [`AppendError::Fatal`](crate::log::error::AppendError::Fatal) (a failed fdatasync
//! anywhere) the tablet refuses every append.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use glommio::sync::Semaphore;
use ufer_io::DataDir;

use crate::clock::Clock;
use crate::log::config::LogConfig;
use crate::log::damage::DamagedRange;
use crate::log::error::OpenError;
use crate::log::state::State;
use crate::log::tail_cache::TailCache;

/// The log of one bucket, owned by one shard.
pub struct LogTablet {
    pub(crate) dir: DataDir,
    pub(crate) config: LogConfig,
    pub(crate) clock: Rc<dyn Clock>,
    pub(crate) state: RefCell<State>,
    /// Serializes appends, rolls, rollbacks and retention.
    pub(super) append_lock: Semaphore,
    pub(super) leader_epoch: Cell<u32>,
    /// Set by the first fatal error; every later append fails with it.
    pub(super) fatal: RefCell<Option<String>>,
    /// The newest small batches, for tailing readers.
    pub(super) tail: RefCell<TailCache>,
    /// Retention keeps every segment holding offsets at or past this one (a primary-key
    /// bucket's changelog after its last KV snapshot). `u64::MAX`: no floor.
    pub(super) retention_floor: Cell<u64>,
    /// Retention keeps every segment holding offsets at or past this one: a lake-enabled
    /// table's records not yet tiered. `u64::MAX`: no floor.
    pub(super) lake_floor: Cell<u64>,
}

impl std::fmt::Debug for LogTablet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogTablet")
            .field("dir", &self.dir.path())
            .field("log_start_offset", &self.log_start_offset())
            .field("high_watermark", &self.high_watermark())
            .field("log_end_offset", &self.log_end_offset())
            .finish_non_exhaustive()
    }
}

impl LogTablet {
    /// Opens the log in `path`, recovering it (see `recovery`), or creates an empty one.
    pub async fn open(
        path: impl AsRef<Path>,
        config: LogConfig,
        clock: Rc<dyn Clock>,
    ) -> Result<Self, OpenError> {
        config.validate().map_err(OpenError::Config)?;
        let dir = DataDir::open(path.as_ref()).await?;
        let state = crate::log::recovery::recover(&dir, &config).await?;
        let tail_cache_bytes = config.tail_cache_bytes;
        Ok(Self {
            dir,
            config,
            clock,
            state: RefCell::new(state),
            append_lock: Semaphore::new(1),
            leader_epoch: Cell::new(0),
            fatal: RefCell::new(None),
            tail: RefCell::new(TailCache::new(tail_cache_bytes)),
            retention_floor: Cell::new(u64::MAX),
            lake_floor: Cell::new(u64::MAX),
        })
    }

    /// The bucket directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Sets the leader epoch stamped into appended batches.
    pub fn set_leader_epoch(&self, epoch: u32) {
        self.leader_epoch.set(epoch);
    }

    /// The earliest offset in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.state.borrow().log_start_offset()
    }

    /// Offsets below this are durable and readable.
    pub fn high_watermark(&self) -> u64 {
        let mut state = self.state.borrow_mut();
        state.refresh_high_watermark();
        state.high_watermark
    }

    /// The offset the next append gets (durable or not).
    pub fn log_end_offset(&self) -> u64 {
        self.state.borrow().active.segment.end_offset
    }

    /// The damaged offset ranges recovery kept (followed by valid batches), oldest first:
    /// reads of them fail with a corruption error until a replica repairs them.
    pub fn damaged_ranges(&self) -> Vec<DamagedRange> {
        let state = self.state.borrow();
        let segments = state.sealed.iter().chain([&state.active.segment]);
        segments.flat_map(|segment| segment.damaged.iter().cloned()).collect()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.state.borrow().sealed.len() + 1
    }

    /// Bytes of batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().size_bytes()
    }
}
