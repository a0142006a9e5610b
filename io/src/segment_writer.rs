//! [`SegmentWriter`]: an append-only file written with direct I/O and made durable by group
//! commit.
//!
//! Appends are copied into an aligned write buffer (the only copy on the append path). A
//! flush writes every filled buffer plus the active one, rounded up to whole blocks, then
//! one `fdatasync` makes everything appended before the flush durable: many appends, one
//! sync. The partial last block is kept in memory and written again, grown, by the next
//! flush. Flushes are serialized, so a block is never in two writes at once.
//!
//! Invariants: `durable_size <= appended_size`, and both lie on append boundaries; bytes
//! below `durable_size` are on the device;
//! the file holds no bytes between `durable_size` and its end that a flush did not write (a
//! failed write truncates the file back to `durable_size` before anything else happens).
//! After a failed write every append not yet durable is discarded (callers learn it from
//! [`SegmentWriter::sync_to`]); after a failed `fdatasync` the writer refuses all work.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use futures_util::future::join_all;
use glommio::io::{DmaBuffer, DmaFile};
use glommio::sync::Semaphore;

use crate::block::{align_down, align_up, BLOCK_SIZE_BYTES};
use crate::error::IoError;
use crate::notifier::Notifier;
use crate::segment_file::SegmentFile;

/// Limits of one writer's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Size of each aligned write buffer; a multiple of the block size.
    pub buffer_size_bytes: usize,
    /// Filled buffers that may wait for a flush before an append has to write them itself.
    pub queued_buffer_count_max: usize,
}

impl WriterOptions {
    /// Production sizes: 1 MiB buffers, up to 8 waiting (8 MiB in flight per writer).
    pub const fn production() -> Self {
        Self { buffer_size_bytes: 1024 * 1024, queued_buffer_count_max: 8 }
    }

    /// Tiny sizes for tests, so buffer rolls and queue-full paths run constantly.
    pub const fn test_min() -> Self {
        Self { buffer_size_bytes: 2 * BLOCK_SIZE_BYTES as usize, queued_buffer_count_max: 2 }
    }
}

const _: () = assert!(WriterOptions::production()
    .buffer_size_bytes
    .is_multiple_of(BLOCK_SIZE_BYTES as usize));
const _: () =
    assert!(WriterOptions::test_min().buffer_size_bytes.is_multiple_of(BLOCK_SIZE_BYTES as usize));

/// Where an append ended, to wait for its durability with [`SegmentWriter::sync_to`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendEnd {
    /// File size after the append.
    pub end: u64,
    /// Rollback generation the append belongs to: a failed write discards it.
    generation: u64,
}

/// A direct-I/O append-only file with group commit. Shared by the tasks of one shard
/// through `&self`. Each append is copied whole before any other task runs, so appends
/// never interleave; callers that number them (the log tablet) order them under a lock.
pub struct SegmentWriter {
    file: Rc<DmaFile>,
    path: PathBuf,
    options: WriterOptions,
    state: RefCell<State>,
    flush_lock: Semaphore,
    durable_size: Cell<u64>,
    generation: Cell<u64>,
    fatal: RefCell<Option<String>>,
    sync_count: Cell<u64>,
    /// True while a caller of `sync_to` leads a sync.
    sync_leader: Cell<bool>,
    /// Wakes the callers waiting for the leader's sync.
    sync_round: Notifier,
}

/// Marks its holder as the sync leader; on drop (done, failed or cancelled) hands over by
/// waking every waiter.
struct SyncLeader<'a>(&'a SegmentWriter);

impl<'a> SyncLeader<'a> {
    fn elect(writer: &'a SegmentWriter) -> Self {
        assert!(!writer.sync_leader.get(), "one sync leader at a time");
        writer.sync_leader.set(true);
        Self(writer)
    }
}

impl Drop for SyncLeader<'_> {
    fn drop(&mut self) {
        assert!(self.0.sync_leader.get(), "only the elected leader hands over");
        self.0.sync_leader.set(false);
        self.0.sync_round.notify_all();
    }
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.path)
            .field("durable_size", &self.durable_size.get())
            .field("appended_size", &self.state.borrow().appended_size)
            .finish_non_exhaustive()
    }
}

struct State {
    /// The buffer appends go to; allocated on the first append after a flush.
    active: Option<DmaBuffer>,
    /// File position of the active buffer's first byte; block-aligned.
    active_position: u64,
    /// Bytes of the active region filled (the tail block counts even before `active` exists).
    active_fill: usize,
    /// Completely filled buffers and their positions, oldest first.
    full: VecDeque<(u64, DmaBuffer)>,
    /// The bytes of the partial block at `active_position`, while `active` is `None`.
    tail: Box<[u8]>,
    /// The partial block at `align_down(durable_size)`, to restart from after a failure.
    durable_tail: Box<[u8]>,
    /// Logical file size: every byte appended.
    appended_size: u64,
}

impl SegmentWriter {
    /// Wraps `file`, whose first `size` bytes are valid content (the file is truncated to
    /// them). The partial last block is read back so appends continue after it.
    pub(crate) async fn open(
        file: DmaFile,
        path: PathBuf,
        size: u64,
        options: WriterOptions,
    ) -> Result<Self, IoError> {
        assert!(options.buffer_size_bytes.is_multiple_of(BLOCK_SIZE_BYTES as usize));
        assert!(options.buffer_size_bytes > 0 && options.queued_buffer_count_max > 0);
        let file_size = file
            .file_size()
            .await
            .map_err(|error| IoError::from_glommio("sizing", &path, error))?;
        if file_size != size {
            file.truncate(size)
                .await
                .map_err(|error| IoError::from_glommio("truncating", &path, error))?;
        }
        // What a crashed process wrote may still sit in the device cache: make it durable
        // before anyone relies on it.
        if size > 0 || file_size != size {
            file.fdatasync()
                .await
                .map_err(|error| IoError::from_glommio("syncing", &path, error))?;
        }
        let block_start = align_down(size);
        let tail_len = (size - block_start) as usize;
        let mut tail = vec![0u8; BLOCK_SIZE_BYTES as usize].into_boxed_slice();
        if tail_len > 0 {
            let read = file
                .read_at_aligned(block_start, BLOCK_SIZE_BYTES as usize)
                .await
                .map_err(|error| IoError::from_glommio("reading the tail of", &path, error))?;
            if read.len() < tail_len {
                return Err(IoError::from_io(
                    "reading the tail of",
                    &path,
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short read"),
                ));
            }
            tail[..tail_len].copy_from_slice(&read[..tail_len]);
        }
        let state = State {
            active: None,
            active_position: block_start,
            active_fill: tail_len,
            full: VecDeque::new(),
            durable_tail: tail.clone(),
            tail,
            appended_size: size,
        };
        let writer = Self {
            file: Rc::new(file),
            path,
            options,
            state: RefCell::new(state),
            flush_lock: Semaphore::new(1),
            durable_size: Cell::new(size),
            generation: Cell::new(0),
            fatal: RefCell::new(None),
            sync_count: Cell::new(0),
            sync_leader: Cell::new(false),
            sync_round: Notifier::default(),
        };
        writer.assert_invariants(&writer.state.borrow());
        Ok(writer)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes appended so far (durable or not).
    pub fn appended_size(&self) -> u64 {
        self.state.borrow().appended_size
    }

    /// Where everything appended so far ends: wait for it with [`Self::sync_to`].
    pub fn appended_end(&self) -> AppendEnd {
        AppendEnd { end: self.appended_size(), generation: self.generation.get() }
    }

    /// Bytes known to be on the device.
    pub fn durable_size(&self) -> u64 {
        self.durable_size.get()
    }

    /// `fdatasync` calls made by flushes so far (group commit makes this far smaller than
    /// the number of durable appends).
    pub fn sync_count(&self) -> u64 {
        self.sync_count.get()
    }

    /// A reader of the same file, for positional reads of durable bytes.
    pub fn reader(&self) -> SegmentFile {
        SegmentFile::from_shared(self.file.clone(), self.path.clone())
    }

    /// Appends `data`. It becomes durable with a later flush; wait with [`Self::sync_to`].
    /// Awaits only when too many filled buffers wait for a flush.
    pub async fn append(&self, data: &[u8]) -> Result<AppendEnd, IoError> {
        self.check_fatal()?;
        let generation = self.generation.get();
        // Make room first, then copy the whole append without awaiting: no flush ever sees
        // half an append, so durable sizes (and rollbacks) fall on append boundaries. The
        // queue may grow past its limit by one append's worth of buffers.
        while self.state.borrow().full.len() >= self.options.queued_buffer_count_max {
            self.flush(None).await?;
        }
        if self.generation.get() != generation {
            return Err(IoError::Discarded { path: self.path.clone() });
        }
        let mut state = self.state.borrow_mut();
        let appended_before = state.appended_size;
        let mut rest = data;
        while !rest.is_empty() {
            let copied = self.copy_into_active(&mut state, rest);
            rest = &rest[copied..];
        }
        assert_eq!(
            state.appended_size - appended_before,
            data.len() as u64,
            "an append is copied whole, without an await"
        );
        self.assert_invariants(&state);
        Ok(AppendEnd { end: state.appended_size, generation })
    }

    /// Waits until the append that ended at `end` is durable, flushing and syncing if no
    /// flush in progress covers it. Concurrent callers share flushes (group commit).
    ///
    /// One caller at a time leads a sync; the others wait for it to finish and are all woken
    /// together, and only those still not covered start the next one. (Queueing every caller
    /// on the flush lock instead makes each find new appends waiting and sync again: one
    /// fdatasync per append under load.)
    pub async fn sync_to(&self, end: AppendEnd) -> Result<(), IoError> {
        loop {
            self.check_fatal()?;
            if self.generation.get() != end.generation {
                return Err(IoError::Discarded { path: self.path.clone() });
            }
            if self.durable_size.get() >= end.end {
                return Ok(());
            }
            if self.sync_leader.get() {
                let seen = self.sync_round.epoch();
                self.sync_round.changed(seen).await;
                continue;
            }
            let _leader = SyncLeader::elect(self);
            self.flush(Some(end.end)).await?;
        }
    }

    /// Makes everything appended so far durable.
    pub async fn sync(&self) -> Result<u64, IoError> {
        let end = AppendEnd { end: self.appended_size(), generation: self.generation.get() };
        self.sync_to(end).await?;
        Ok(end.end)
    }

    /// Makes everything durable and trims the file to its exact size (the last block was
    /// padded). The writer stays usable; this is how a segment is sealed.
    pub async fn seal(&self) -> Result<u64, IoError> {
        let size = self.sync().await?;
        let _permit = self
            .flush_lock
            .acquire_permit(1)
            .await
            .map_err(|error| IoError::from_glommio("waiting to seal", &self.path, error))?;
        self.check_fatal()?;
        // Callers seal under their own append lock: an append after the sync would be cut
        // off by the truncation below, and a sync of it would make durable what is cut.
        assert_eq!(self.appended_size(), size, "nothing is appended while a segment seals");
        assert_eq!(self.durable_size(), size, "a seal truncates at the durable size");
        if let Err(error) = self.file.truncate(size).await {
            return Err(IoError::from_glommio("truncating", &self.path, error));
        }
        self.file.fdatasync().await.map_err(|error| self.fail_sync(error))?;
        Ok(size)
    }

    /// Closes the file if no reader still holds it. Appends not yet synced are lost: sync
    /// first.
    pub async fn close(self) -> Result<(), IoError> {
        DmaFile::close_rc(self.file)
            .await
            .map(|_| ())
            .map_err(|error| IoError::from_glommio("closing", &self.path, error))
    }

    /// Copies as much of `data` as fits into the active buffer; moves a filled buffer to
    /// the queue. Returns the bytes copied.
    fn copy_into_active(&self, state: &mut State, data: &[u8]) -> usize {
        let capacity = self.options.buffer_size_bytes;
        assert!(state.active_fill < capacity, "a filled active buffer moves to the queue");
        if state.active.is_none() {
            let mut buffer = self.file.alloc_dma_buffer(capacity);
            let tail_len = state.active_fill;
            assert!(tail_len < BLOCK_SIZE_BYTES as usize, "without a buffer only a tail is held");
            assert_eq!(buffer.len(), capacity, "a write buffer has the asked size");
            let address = buffer.as_ptr() as usize;
            assert!(
                address.is_multiple_of(BLOCK_SIZE_BYTES as usize),
                "O_DIRECT buffers are aligned"
            );
            buffer.as_bytes_mut()[..tail_len].copy_from_slice(&state.tail[..tail_len]);
            state.active = Some(buffer);
        }
        let fill = state.active_fill;
        let copied = data.len().min(capacity - fill);
        if let Some(active) = state.active.as_mut() {
            active.as_bytes_mut()[fill..fill + copied].copy_from_slice(&data[..copied]);
        }
        state.active_fill += copied;
        state.appended_size += copied as u64;
        if state.active_fill == capacity {
            let full = state.active.take();
            assert!(full.is_some(), "a buffer was filled, so it exists");
            if let Some(full) = full {
                state.full.push_back((state.active_position, full));
            }
            state.active_position += capacity as u64;
            state.active_fill = 0;
        }
        copied
    }

    /// Writes every filled buffer; with `sync_to`, also the active one followed by one
    /// `fdatasync`, unless a flush that ran while this one waited already made `sync_to`
    /// durable. One flush at a time.
    async fn flush(&self, sync_to: Option<u64>) -> Result<(), IoError> {
        let _permit = self
            .flush_lock
            .acquire_permit(1)
            .await
            .map_err(|error| IoError::from_glommio("waiting to flush", &self.path, error))?;
        self.check_fatal()?;
        if sync_to.is_some_and(|end| self.durable_size.get() >= end) {
            return Ok(());
        }
        let sync = sync_to.is_some();
        assert!(!sync || self.sync_leader.get(), "only the sync leader flushes to sync");
        let (writes, target, tail_len) = self.take_writes(sync);
        if writes.is_empty() && (!sync || target <= self.durable_size.get()) {
            return Ok(());
        }
        let results = join_all(
            writes
                .iter()
                .map(|(position, buffer)| self.file.write_rc_at(buffer.clone(), *position)),
        )
        .await;
        for (result, (_, buffer)) in results.into_iter().zip(&writes) {
            let error = match result {
                Ok(written) if written == buffer.len() => continue,
                Ok(written) => IoError::from_io(
                    "writing",
                    &self.path,
                    std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        format!("short write: {written} of {} bytes", buffer.len()),
                    ),
                ),
                Err(error) => IoError::from_glommio("writing", &self.path, error),
            };
            drop(writes);
            return Err(self.roll_back(error).await);
        }
        if !sync {
            return Ok(());
        }
        self.sync_count.set(self.sync_count.get() + 1);
        if let Err(error) = self.file.fdatasync().await {
            return Err(self.fail_sync(error));
        }
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        state.durable_tail[..tail_len].copy_from_slice(&state.tail[..tail_len]);
        assert!(target >= self.durable_size.get(), "durability never goes back");
        // Only a flush rolls appends back, and flushes are serialized.
        assert!(target <= state.appended_size, "durable_size <= appended_size");
        assert_eq!(align_down(target) + tail_len as u64, target, "the tail ends at the target");
        self.durable_size.set(target);
        self.assert_invariants(state);
        Ok(())
    }

    /// Takes the buffers a flush writes: the filled ones, and with `sync` the active one
    /// (whose partial last block is kept as the new tail). Returns them with the size they
    /// make durable and the length of the tail block at that size.
    fn take_writes(&self, sync: bool) -> (Vec<(u64, Rc<DmaBuffer>)>, u64, usize) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let mut writes: Vec<(u64, Rc<DmaBuffer>)> =
            state.full.drain(..).map(|(position, buffer)| (position, Rc::new(buffer))).collect();
        if sync {
            if let Some(mut active) = state.active.take() {
                let fill = state.active_fill;
                let tail_start = align_down(fill as u64) as usize;
                let tail_len = fill - tail_start;
                state.tail[..tail_len].copy_from_slice(&active.as_bytes()[tail_start..fill]);
                let end = align_up(fill as u64) as usize;
                active.as_bytes_mut()[fill..end].fill(0);
                active.trim_to_size(end);
                writes.push((state.active_position, Rc::new(active)));
                state.active_position += tail_start as u64;
                state.active_fill = tail_len;
            }
        }
        let target = state.appended_size;
        assert_eq!(target - state.active_position, state.active_fill as u64);
        self.assert_writes(&writes);
        (writes, target, state.active_fill)
    }

    /// The buffers of one flush are O_DIRECT writes (whole blocks at block-aligned
    /// positions) of one contiguous range that starts no earlier than the block holding
    /// `durable_size`: bytes below it are never written again.
    fn assert_writes(&self, writes: &[(u64, Rc<DmaBuffer>)]) {
        let durable_block = align_down(self.durable_size.get());
        assert!(
            writes.first().is_none_or(|(position, _)| *position >= durable_block),
            "a flush starts at or after the durable block {durable_block}"
        );
        for (position, buffer) in writes {
            assert!(position.is_multiple_of(BLOCK_SIZE_BYTES), "write positions are block-aligned");
            let len = buffer.len() as u64;
            assert!(
                len > 0 && len.is_multiple_of(BLOCK_SIZE_BYTES),
                "writes are whole blocks: {len}"
            );
        }
        for pair in writes.windows(2) {
            let ((position, buffer), (next, _)) = (&pair[0], &pair[1]);
            assert_eq!(position + buffer.len() as u64, *next, "a flush writes one range");
        }
    }

    /// The writer's state between operations (module docs): `durable_size <= appended_size`;
    /// the active region starts on a block boundary and ends at `appended_size`; it is
    /// never full (a full buffer moves to the queue), and without a buffer it is at most a
    /// tail block; queued buffers are full and end where the active region starts.
    fn assert_invariants(&self, state: &State) {
        let capacity = self.options.buffer_size_bytes;
        assert!(self.durable_size.get() <= state.appended_size, "durable_size <= appended_size");
        assert!(
            state.active_position.is_multiple_of(BLOCK_SIZE_BYTES),
            "the active region is block-aligned"
        );
        assert_eq!(
            state.active_position + state.active_fill as u64,
            state.appended_size,
            "the active region ends at appended_size"
        );
        assert!(state.active_fill < capacity, "the active buffer is never full");
        assert!(
            state.active.is_some() || state.active_fill < BLOCK_SIZE_BYTES as usize,
            "without an active buffer only a partial tail block is held"
        );
        if let Some((position, buffer)) = state.full.back() {
            assert_eq!(buffer.len(), capacity, "queued buffers are full");
            assert_eq!(
                position + capacity as u64,
                state.active_position,
                "queued buffers end where the active region starts"
            );
        }
    }

    /// After a failed write: forgets every append past `durable_size`, cuts the file back to
    /// it durably, and returns the error for the caller. If the cut or its sync fails too, the
    /// writer is dead.
    async fn roll_back(&self, error: IoError) -> IoError {
        let durable = self.durable_size.get();
        {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            state.full.clear();
            state.active = None;
            state.active_position = align_down(durable);
            state.active_fill = (durable - state.active_position) as usize;
            state.tail.copy_from_slice(&state.durable_tail);
            state.appended_size = durable;
            self.assert_invariants(state);
        }
        self.generation.set(self.generation.get() + 1);
        if let Err(truncate_error) = self.file.truncate(durable).await {
            let reason = format!(
                "{error}; then truncating back failed: {}",
                crate::error::os_error(truncate_error)
            );
            *self.fatal.borrow_mut() = Some(reason.clone());
            return IoError::Fatal { path: self.path.clone(), reason };
        }
        // The cut durable too: otherwise a power cut could bring back blocks of the failed
        // write, and a batch answered "not stored" would be there after a restart.
        if let Err(sync_error) = self.file.fdatasync().await {
            let reason = format!(
                "{error}; then syncing the cut failed: {}",
                crate::error::os_error(sync_error)
            );
            *self.fatal.borrow_mut() = Some(reason.clone());
            return IoError::Fatal { path: self.path.clone(), reason };
        }
        error
    }

    fn fail_sync(&self, error: glommio::GlommioError<()>) -> IoError {
        let reason = crate::error::os_error(error).to_string();
        *self.fatal.borrow_mut() = Some(reason.clone());
        IoError::Fatal { path: self.path.clone(), reason }
    }

    fn check_fatal(&self) -> Result<(), IoError> {
        match self.fatal.borrow().as_ref() {
            Some(reason) => Err(IoError::Fatal { path: self.path.clone(), reason: reason.clone() }),
            None => Ok(()),
        }
    }
}
