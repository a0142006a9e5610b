//! [`Server`]: the FUSE side of the lossy file system. Each kernel request becomes one call
//! on the shared [`Model`], made under its lock (so a power cut, which takes the same lock,
//! never lands inside a request), and the answer goes back to the kernel.
//!
//! Files are opened with FOPEN_DIRECT_IO (and FOPEN_NOFLUSH) and entries and attributes are
//! cached for zero seconds, so every read, write, size and lookup reaches the model: no
//! kernel page cache or attribute cache can show what a power cut dropped. A descriptor the
//! caller put in O_DIRECT mode (as glommio does with `fcntl` after opening) is seen in the
//! flags of its read and write requests, which the model counts.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::lossy_fs::file_contents::BLOCK_SIZE_BYTES;
use crate::lossy_fs::model::{self, Attr, Kind, Model, CONTENTS_SIZE_MAX_BYTES};

/// How long the kernel may trust an entry or attribute: not at all, since a power cut
/// changes both behind its back.
const TTL: Duration = Duration::ZERO;

/// How files are opened. FOPEN_DIRECT_IO: every read and write reaches the model (no page
/// cache). FOPEN_NOFLUSH: a close sends no FLUSH, whose answer the closing thread would wait
/// for; the server is a thread of the same process, so a descriptor still open when the
/// process exits would otherwise be flushed by an exiting thread waiting for a server that
/// is gone (the process hangs). RELEASE, which still comes, is not waited for.
const FILE_OPEN_FLAGS: FopenFlags = FopenFlags::FOPEN_DIRECT_IO.union(FopenFlags::FOPEN_NOFLUSH);

/// Inodes `statfs` reports (the model has no limit of its own on them).
const INODE_COUNT_REPORTED: u64 = 1 << 20;

/// The file system the kernel talks to.
#[derive(Debug)]
pub struct Server {
    model: Arc<Mutex<Model>>,
}

impl Server {
    /// A server of `model`.
    pub fn new(model: Arc<Mutex<Model>>) -> Self {
        Self { model }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        lock(&self.model)
    }
}

/// Locks `model`; a panic elsewhere while it was held does not stop the file system.
pub fn lock(model: &Mutex<Model>) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(PoisonError::into_inner)
}

fn errno(code: model::Errno) -> Errno {
    Errno::from_i32(code)
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.size.div_ceil(512),
        atime: attr.mtime,
        mtime: attr.mtime,
        ctime: attr.mtime,
        crtime: SystemTime::UNIX_EPOCH,
        kind: file_type(attr.kind),
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: BLOCK_SIZE_BYTES as u32,
        flags: 0,
    }
}

fn reply_entry(result: Result<Attr, model::Errno>, reply: ReplyEntry) {
    match result {
        Ok(attr) => reply.entry(&TTL, &file_attr(&attr), Generation(0)),
        Err(code) => reply.error(errno(code)),
    }
}

fn reply_empty(result: Result<(), model::Errno>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(code) => reply.error(errno(code)),
    }
}

fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

fn is_direct(flags: OpenFlags) -> bool {
    flags.0 & libc::O_DIRECT != 0
}

impl Filesystem for Server {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let result = self.model().lookup(parent.0, name);
        reply_entry(result, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.model().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(code) => reply.error(errno(code)),
        }
    }

    /// Only the size is modelled; mode, owner and times are accepted and not kept.
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = {
            let mut model = self.model();
            let resized = match size {
                Some(size) => model.set_size(ino.0, fh.map(|fh| fh.0), size),
                None => Ok(()),
            };
            resized.and_then(|()| model.attr(ino.0))
        };
        match result {
            Ok(attr) => reply.attr(&TTL, &file_attr(&attr)),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(Errno::EPERM);
            return;
        }
        let owner = (req.uid(), req.gid());
        let result = self.model().create(parent.0, name, Kind::File, perm(mode, umask), owner);
        reply_entry(result, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let owner = (req.uid(), req.gid());
        let result = self.model().create(parent.0, name, Kind::Dir, perm(mode, umask), owner);
        reply_entry(result, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self.model().remove(parent.0, name, Kind::File);
        reply_empty(result, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self.model().remove(parent.0, name, Kind::Dir);
        reply_empty(result, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            reply.error(Errno::EINVAL);
            return;
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let result = self.model().rename((parent.0, name), (new_parent.0, new_name), no_replace);
        reply_empty(result, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model().open(ino.0, Kind::File) {
            Ok(handle) => reply.opened(FileHandle(handle), FILE_OPEN_FLAGS),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = self.model().read(fh.0, offset, size as usize, is_direct(flags));
        match result {
            Ok(data) => reply.data(&data),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.model().write(fh.0, offset, data, is_direct(flags)) {
            Ok(written) => reply.written(written),
            Err(code) => reply.error(errno(code)),
        }
    }

    /// A close makes nothing durable.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.model().release(fh.0);
        reply.ok();
    }

    /// fsync and fdatasync alike make the contents and the size durable.
    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.model().sync(fh.0);
        reply_empty(result, reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.model().open(ino.0, Kind::Dir) {
            Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.model().entries(ino.0) {
            Ok(entries) => entries,
            Err(code) => return reply.error(errno(code)),
        };
        for (index, (child, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
            let next = index as u64 + 1;
            if reply.add(INodeNo(*child), next, file_type(*kind), name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.model().release(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.model().sync(fh.0);
        reply_empty(result, reply);
    }

    /// Answered even while the power is off, like lookups: glommio's `DmaFile::open` unwraps
    /// the result of statfs (a panic, not an error, in a process meant to see only EIO).
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let stored = self.model().stored_size_bytes();
        let blocks = CONTENTS_SIZE_MAX_BYTES / BLOCK_SIZE_BYTES;
        let free = CONTENTS_SIZE_MAX_BYTES.saturating_sub(stored) / BLOCK_SIZE_BYTES;
        let block = BLOCK_SIZE_BYTES as u32;
        reply.statfs(
            blocks,
            free,
            free,
            INODE_COUNT_REPORTED,
            INODE_COUNT_REPORTED,
            block,
            255,
            block,
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let owner = (req.uid(), req.gid());
        let result = {
            let mut model = self.model();
            model.create(parent.0, name, Kind::File, perm(mode, umask), owner).and_then(|attr| {
                let handle = model.open(attr.ino, Kind::File)?;
                Ok((attr, handle))
            })
        };
        match result {
            Ok((attr, handle)) => reply.created(
                &TTL,
                &file_attr(&attr),
                Generation(0),
                FileHandle(handle),
                FILE_OPEN_FLAGS,
            ),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self.model().allocate(fh.0, offset, length, mode);
        reply_empty(result, reply);
    }
}
