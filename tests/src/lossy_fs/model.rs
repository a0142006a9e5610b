//! [`Model`]: the whole lossy file system in memory — inodes, directory entries in two
//! layers (live and durable), open handles, the power switch, injected sync failures and
//! counters. The FUSE server (`server`) turns each kernel request into one call here, under
//! one lock, so a power cut never sees a request half applied.
//!
//! Invariants: the root (inode 1) always exists and is a directory; an inode stays in the
//! table while a live entry names it, a handle has it open, or a durable entry names it;
//! `live_links` counts the live entries naming an inode and `durable_links` the durable
//! ones (the root counts one of each for itself); every handle names an inode in the table;
//! `stored_size_bytes` is the sum of every file's two layers. While the power is off every
//! request that opens, reads, writes, syncs or changes anything fails with EIO, so nothing
//! changes between a cut and the power coming back; handles opened before a cut are gone
//! (EIO for ever), so a process that "died with the power" cannot write after it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path};
use std::time::SystemTime;

use crate::lossy_fs::file_contents::{Cut, FileContents};
use crate::rng::Rng;

/// Bytes held for file contents (live and durable layers together); a write or an
/// extension that would pass it fails with ENOSPC. A sync may still pass it, by at most as
/// much again: the memory a mount takes stays under twice this.
pub const CONTENTS_SIZE_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// An inode number. The root is [`ROOT_INO`]; numbers are never reused.
pub type Ino = u64;

/// The root directory's inode.
pub const ROOT_INO: Ino = 1;

/// An error number (`libc::E*`) for the kernel.
pub type Errno = i32;

/// What the counters of a mount have seen since it was mounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful fsync/fdatasync calls on files.
    pub file_syncs: u64,
    /// Successful fsync calls on directories.
    pub dir_syncs: u64,
    /// Syncs that failed with an injected EIO.
    pub failed_syncs: u64,
    /// Read requests.
    pub reads: u64,
    /// Read requests from an O_DIRECT descriptor.
    pub direct_reads: u64,
    /// Write requests.
    pub writes: u64,
    /// Write requests from an O_DIRECT descriptor.
    pub direct_writes: u64,
    /// Power cuts.
    pub power_cuts: u64,
}

/// What kind of inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// An inode's attributes, for the kernel.
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File or directory.
    pub kind: Kind,
    /// Live size in bytes.
    pub size: u64,
    /// Permission bits.
    pub perm: u16,
    /// Live links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last change of contents.
    pub mtime: SystemTime,
}

#[derive(Debug)]
struct DirEntries {
    live: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
    /// The live parent (the root is its own).
    parent: Ino,
}

#[derive(Debug)]
enum Body {
    File(FileContents),
    Dir(DirEntries),
}

#[derive(Debug)]
struct Inode {
    body: Body,
    /// The name it was last given, which injected sync failures match.
    name: OsString,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
    live_links: u32,
    durable_links: u32,
    open_count: u32,
}

#[derive(Debug)]
struct Handle {
    ino: Ino,
}

#[derive(Debug)]
struct SyncFailure {
    name_contains: String,
    remaining: u64,
}

/// The file system's state. See the module docs.
#[derive(Debug)]
pub struct Model {
    inodes: HashMap<Ino, Inode>,
    next_ino: Ino,
    handles: HashMap<u64, Handle>,
    next_handle: u64,
    powered: bool,
    /// The cut that [`Model::power_on`] applies.
    pending_cut: Option<Cut>,
    failures: Vec<SyncFailure>,
    stats: Stats,
    stored_size_bytes: u64,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// An empty file system whose empty root is durable.
    pub fn new() -> Self {
        let dir = DirEntries { live: BTreeMap::new(), durable: BTreeMap::new(), parent: ROOT_INO };
        let mut root = Inode::new(Body::Dir(dir), OsString::new(), 0o755, 0, 0);
        root.durable_links = 1;
        Self {
            inodes: HashMap::from([(ROOT_INO, root)]),
            next_ino: ROOT_INO + 1,
            handles: HashMap::new(),
            next_handle: 1,
            powered: true,
            pending_cut: None,
            failures: Vec::new(),
            stats: Stats::default(),
            stored_size_bytes: 0,
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes held for file contents (both layers).
    pub fn stored_size_bytes(&self) -> u64 {
        self.stored_size_bytes
    }

    /// The attributes of live inode `ino`. Answered while the power is off too (see
    /// [`Self::lookup`]).
    pub fn attr(&self, ino: Ino) -> Result<Attr, Errno> {
        let inode = self.live_inode(ino)?;
        let (kind, size) = match &inode.body {
            Body::File(contents) => (Kind::File, contents.live().len() as u64),
            Body::Dir(entries) => (Kind::Dir, entries.live.len() as u64),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            perm: inode.perm,
            nlink: inode.live_links,
            uid: inode.uid,
            gid: inode.gid,
            mtime: inode.mtime,
        })
    }

    /// The live entry `name` in directory `parent`. Answered while the power is off too: it
    /// changes nothing, and glommio panics if the statfs it does after opening a file fails
    /// (statfs walks the path).
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Attr, Errno> {
        let ino = self.dir(parent)?.live.get(name).copied().ok_or(libc::ENOENT)?;
        self.attr(ino)
    }

    /// Creates an empty file or directory `name` in `parent`.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: Kind,
        perm: u16,
        owner: (u32, u32),
    ) -> Result<Attr, Errno> {
        self.check_powered()?;
        if self.dir(parent)?.live.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let body = match kind {
            Kind::File => Body::File(FileContents::default()),
            Kind::Dir => {
                Body::Dir(DirEntries { live: BTreeMap::new(), durable: BTreeMap::new(), parent })
            }
        };
        let ino = self.next_ino;
        self.next_ino += 1;
        let mut inode = Inode::new(body, name.to_os_string(), perm, owner.0, owner.1);
        inode.live_links = 1;
        self.inodes.insert(ino, inode);
        self.dir_mut(parent)?.live.insert(name.to_os_string(), ino);
        self.touch(parent);
        self.attr(ino)
    }

    /// Removes the live entry `name` from `parent`: a file (`kind` File) or an empty
    /// directory (`kind` Dir).
    pub fn remove(&mut self, parent: Ino, name: &OsStr, kind: Kind) -> Result<(), Errno> {
        self.check_powered()?;
        let ino = self.dir(parent)?.live.get(name).copied().ok_or(libc::ENOENT)?;
        match (&self.inode(ino)?.body, kind) {
            (Body::Dir(_), Kind::File) => return Err(libc::EISDIR),
            (Body::File(_), Kind::Dir) => return Err(libc::ENOTDIR),
            (Body::Dir(entries), Kind::Dir) if !entries.live.is_empty() => {
                return Err(libc::ENOTEMPTY)
            }
            _ => {}
        }
        self.dir_mut(parent)?.live.remove(name);
        self.touch(parent);
        self.unlink_live(ino);
        Ok(())
    }

    /// Renames `parent/name` to `new_parent/new_name`, replacing what is there unless
    /// `no_replace`.
    pub fn rename(
        &mut self,
        (parent, name): (Ino, &OsStr),
        (new_parent, new_name): (Ino, &OsStr),
        no_replace: bool,
    ) -> Result<(), Errno> {
        self.check_powered()?;
        let ino = self.dir(parent)?.live.get(name).copied().ok_or(libc::ENOENT)?;
        let replaced = self.dir(new_parent)?.live.get(new_name).copied();
        if let Some(replaced) = replaced {
            if replaced == ino {
                return Ok(());
            }
            if no_replace {
                return Err(libc::EEXIST);
            }
            match (&self.inode(ino)?.body, &self.inode(replaced)?.body) {
                (Body::File(_), Body::Dir(_)) => return Err(libc::EISDIR),
                (Body::Dir(_), Body::File(_)) => return Err(libc::ENOTDIR),
                (_, Body::Dir(entries)) if !entries.live.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
        }
        self.dir_mut(parent)?.live.remove(name);
        self.dir_mut(new_parent)?.live.insert(new_name.to_os_string(), ino);
        self.touch(parent);
        self.touch(new_parent);
        let inode = self.inode_mut(ino)?;
        inode.name = new_name.to_os_string();
        if let Body::Dir(entries) = &mut inode.body {
            entries.parent = new_parent;
        }
        if let Some(replaced) = replaced {
            self.unlink_live(replaced);
        }
        Ok(())
    }

    /// The live entries of directory `ino`, with `.` and `..` first.
    pub fn entries(&self, ino: Ino) -> Result<Vec<(Ino, Kind, OsString)>, Errno> {
        self.check_powered()?;
        let dir = self.dir(ino)?;
        let mut entries =
            vec![(ino, Kind::Dir, OsString::from(".")), (dir.parent, Kind::Dir, "..".into())];
        for (name, &child) in &dir.live {
            let kind = match self.inode(child)?.body {
                Body::File(_) => Kind::File,
                Body::Dir(_) => Kind::Dir,
            };
            entries.push((child, kind, name.clone()));
        }
        Ok(entries)
    }

    /// Opens live inode `ino` (a file, or a directory when `kind` is Dir). Returns the
    /// handle.
    pub fn open(&mut self, ino: Ino, kind: Kind) -> Result<u64, Errno> {
        self.check_powered()?;
        let inode = self.live_inode(ino)?;
        match (&inode.body, kind) {
            (Body::Dir(_), Kind::File) => return Err(libc::EISDIR),
            (Body::File(_), Kind::Dir) => return Err(libc::ENOTDIR),
            _ => {}
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(handle, Handle { ino });
        self.inode_mut(ino)?.open_count += 1;
        Ok(handle)
    }

    /// Closes `handle`; a handle from before a power cut is already gone.
    pub fn release(&mut self, handle: u64) {
        let Some(Handle { ino, .. }) = self.handles.remove(&handle) else { return };
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.open_count = inode.open_count.saturating_sub(1);
        }
        self.collect(ino);
    }

    /// Reads through `handle`; `direct` is whether the request came from an O_DIRECT
    /// descriptor.
    pub fn read(
        &mut self,
        handle: u64,
        offset: u64,
        size: usize,
        direct: bool,
    ) -> Result<Vec<u8>, Errno> {
        self.check_powered()?;
        let ino = self.handle(handle)?;
        self.stats.reads += 1;
        self.stats.direct_reads += u64::from(direct);
        Ok(self.file(ino)?.read(offset, size).to_vec())
    }

    /// Writes through `handle`; `direct` as for [`Self::read`].
    pub fn write(
        &mut self,
        handle: u64,
        offset: u64,
        data: &[u8],
        direct: bool,
    ) -> Result<u32, Errno> {
        self.check_powered()?;
        let ino = self.handle(handle)?;
        self.stats.writes += 1;
        self.stats.direct_writes += u64::from(direct);
        let end = offset.checked_add(data.len() as u64).ok_or(libc::EFBIG)?;
        let size = self.file(ino)?.live().len() as u64;
        self.reserve(end.saturating_sub(size))?;
        self.change_file(ino, |contents| contents.write(offset, data))?;
        self.touch(ino);
        Ok(data.len() as u32)
    }

    /// Sets the size of live file `ino` (through `handle` if the kernel gave one).
    pub fn set_size(&mut self, ino: Ino, handle: Option<u64>, size: u64) -> Result<(), Errno> {
        self.check_powered()?;
        if let Some(handle) = handle {
            self.handle(handle)?;
        }
        self.live_inode(ino)?;
        let old = self.file(ino)?.live().len() as u64;
        self.reserve(size.saturating_sub(old))?;
        self.change_file(ino, |contents| contents.set_size(size))?;
        self.touch(ino);
        Ok(())
    }

    /// fallocate: mode 0 extends the file to `offset + length` with zeros; KEEP_SIZE does
    /// nothing (space is not modelled); other modes are not supported.
    pub fn allocate(
        &mut self,
        handle: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<(), Errno> {
        self.check_powered()?;
        let ino = self.handle(handle)?;
        let end = offset.checked_add(length).ok_or(libc::EFBIG)?;
        match mode {
            0 => {
                let size = self.file(ino)?.live().len() as u64;
                if end > size {
                    self.reserve(end - size)?;
                    self.change_file(ino, |contents| contents.set_size(end))?;
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            _ => Err(libc::EOPNOTSUPP),
        }
    }

    /// fsync or fdatasync of a file through `handle`, or of a directory (its entries).
    pub fn sync(&mut self, handle: u64) -> Result<(), Errno> {
        self.check_powered()?;
        let ino = self.handle(handle)?;
        let fail = self.take_failure(ino);
        if fail {
            self.stats.failed_syncs += 1;
        }
        if matches!(self.inode(ino)?.body, Body::File(_)) {
            if fail {
                return self.change_file(ino, FileContents::fail_sync).and(Err(libc::EIO));
            }
            self.stats.file_syncs += 1;
            return self.change_file(ino, FileContents::sync);
        }
        if fail {
            return Err(libc::EIO);
        }
        self.stats.dir_syncs += 1;
        self.sync_dir(ino)
    }

    /// The next `count` syncs (file or directory) of an inode whose name contains
    /// `name_contains` fail with EIO.
    pub fn fail_syncs(&mut self, name_contains: &str, count: u64) {
        self.failures.push(SyncFailure { name_contains: name_contains.into(), remaining: count });
    }

    /// Cuts the power: every handle is gone, and every request that opens, reads, writes,
    /// syncs or changes anything fails with EIO until [`Self::power_on`], which puts every
    /// file and directory back to what is durable (with what `cut` keeps of the rest).
    ///
    /// Nothing can change while the power is off, so going back then is the same as going
    /// back now; meanwhile lookups still see the names the dead process knew (glommio
    /// panics if a file it just opened cannot be found by its path). A second cut before
    /// the power is back changes nothing.
    pub fn power_cut(&mut self, cut: Cut) {
        if !self.powered {
            return;
        }
        self.powered = false;
        self.pending_cut = Some(cut);
        self.stats.power_cuts += 1;
        self.handles.clear();
    }

    /// Turns the power back on after [`Self::power_cut`], with every file and directory as
    /// the cut left it.
    pub fn power_on(&mut self) {
        if let Some(cut) = self.pending_cut.take() {
            self.go_back_to_durable(cut);
        }
        self.powered = true;
    }

    /// Every file and directory back to what is durable, with what `cut` keeps of the rest.
    fn go_back_to_durable(&mut self, cut: Cut) {
        let reached = self.durable_tree();
        self.inodes.retain(|ino, _| reached.contains_key(ino));
        let seed = match cut {
            Cut::Clean => 0,
            Cut::TornPrefix { seed } | Cut::TornBlocks { seed } => seed,
        };
        let mut rng = Rng::new(seed);
        let mut inos: Vec<Ino> = self.inodes.keys().copied().collect();
        // In a fixed order, so a seed replays the same cut.
        inos.sort_unstable();
        for ino in inos {
            let Some(inode) = self.inodes.get_mut(&ino) else { continue };
            let (links, parent) = reached[&ino];
            inode.live_links = links;
            inode.durable_links = links;
            inode.open_count = 0;
            match &mut inode.body {
                Body::File(contents) => contents.power_cut(cut, &mut rng),
                Body::Dir(entries) => {
                    entries.live = entries.durable.clone();
                    entries.parent = parent;
                }
            }
        }
        self.stored_size_bytes = self
            .inodes
            .values()
            .map(|inode| match &inode.body {
                Body::File(contents) => contents.stored_size(),
                Body::Dir(_) => 0,
            })
            .sum();
        self.failures.clear();
    }

    /// The live file at `path` (relative to the root), or `None`.
    pub fn live_contents(&self, path: &Path) -> Option<&[u8]> {
        let ino = self.resolve(path, |entries| &entries.live)?;
        match &self.inodes.get(&ino)?.body {
            Body::File(contents) => Some(contents.live()),
            Body::Dir(_) => None,
        }
    }

    /// The file a clean power cut would leave at `path`, or `None` if there would be none.
    pub fn durable_contents(&self, path: &Path) -> Option<&[u8]> {
        let ino = self.resolve(path, |entries| &entries.durable)?;
        match &self.inodes.get(&ino)?.body {
            Body::File(contents) => Some(contents.durable()),
            Body::Dir(_) => None,
        }
    }

    /// Whether `path` would exist after a clean power cut.
    pub fn exists_durably(&self, path: &Path) -> bool {
        self.resolve(path, |entries| &entries.durable).is_some()
    }

    fn resolve(
        &self,
        path: &Path,
        layer: impl Fn(&DirEntries) -> &BTreeMap<OsString, Ino>,
    ) -> Option<Ino> {
        let mut ino = ROOT_INO;
        for component in path.components() {
            match component {
                Component::Normal(name) => match &self.inodes.get(&ino)?.body {
                    Body::Dir(entries) => ino = *layer(entries).get(name)?,
                    Body::File(_) => return None,
                },
                Component::CurDir => {}
                _ => return None,
            }
        }
        Some(ino)
    }

    /// Every inode a durable entry reaches from the root: its durable link count and the
    /// first directory found naming it. Each directory is walked once, so the durable
    /// entries of directories synced at different times cannot loop.
    fn durable_tree(&self) -> HashMap<Ino, (u32, Ino)> {
        let mut reached = HashMap::from([(ROOT_INO, (1, ROOT_INO))]);
        let mut pending = vec![ROOT_INO];
        while let Some(dir) = pending.pop() {
            let Some(Inode { body: Body::Dir(entries), .. }) = self.inodes.get(&dir) else {
                continue;
            };
            for &child in entries.durable.values() {
                let Some(inode) = self.inodes.get(&child) else { continue };
                let entry = reached.entry(child).or_insert((0, dir));
                entry.0 += 1;
                if entry.0 == 1 && matches!(inode.body, Body::Dir(_)) {
                    pending.push(child);
                }
            }
        }
        reached
    }

    fn sync_dir(&mut self, ino: Ino) -> Result<(), Errno> {
        let entries = match &mut self.inode_mut(ino)?.body {
            Body::Dir(entries) => entries,
            Body::File(_) => return Err(libc::ENOTDIR),
        };
        let now = entries.live.clone();
        let before = std::mem::replace(&mut entries.durable, now.clone());
        for child in now.values() {
            if let Some(inode) = self.inodes.get_mut(child) {
                inode.durable_links += 1;
            }
        }
        for child in before.values() {
            if let Some(inode) = self.inodes.get_mut(child) {
                inode.durable_links = inode.durable_links.saturating_sub(1);
            }
            self.collect(*child);
        }
        Ok(())
    }

    fn unlink_live(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.live_links = inode.live_links.saturating_sub(1);
        }
        self.collect(ino);
    }

    /// Drops inodes nothing holds any more (no live or durable entry, no handle), and with
    /// a dropped directory its durable entries' links.
    fn collect(&mut self, ino: Ino) {
        let mut pending = vec![ino];
        while let Some(ino) = pending.pop() {
            let Some(inode) = self.inodes.get(&ino) else { continue };
            let held = inode.live_links > 0 || inode.durable_links > 0 || inode.open_count > 0;
            if ino == ROOT_INO || held {
                continue;
            }
            let Some(inode) = self.inodes.remove(&ino) else { continue };
            match inode.body {
                Body::File(contents) => self.stored_size_bytes -= contents.stored_size(),
                Body::Dir(entries) => {
                    for child in entries.durable.into_values() {
                        if let Some(inode) = self.inodes.get_mut(&child) {
                            inode.durable_links = inode.durable_links.saturating_sub(1);
                        }
                        pending.push(child);
                    }
                }
            }
        }
    }

    fn take_failure(&mut self, ino: Ino) -> bool {
        let Some(inode) = self.inodes.get(&ino) else { return false };
        let name = inode.name.to_string_lossy();
        let Some(failure) = self
            .failures
            .iter_mut()
            .find(|failure| failure.remaining > 0 && name.contains(failure.name_contains.as_str()))
        else {
            return false;
        };
        failure.remaining -= 1;
        true
    }

    fn reserve(&self, growth: u64) -> Result<(), Errno> {
        if self.stored_size_bytes.saturating_add(growth) > CONTENTS_SIZE_MAX_BYTES {
            return Err(libc::ENOSPC);
        }
        Ok(())
    }

    /// Applies `change` to file `ino`, keeping `stored_size_bytes` true.
    fn change_file(
        &mut self,
        ino: Ino,
        change: impl FnOnce(&mut FileContents),
    ) -> Result<(), Errno> {
        let Body::File(contents) = &mut self.inode_mut(ino)?.body else {
            return Err(libc::EISDIR);
        };
        let before = contents.stored_size();
        change(contents);
        let after = contents.stored_size();
        self.stored_size_bytes = self.stored_size_bytes + after - before;
        Ok(())
    }

    fn touch(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.mtime = SystemTime::now();
        }
    }

    fn check_powered(&self) -> Result<(), Errno> {
        if self.powered {
            Ok(())
        } else {
            Err(libc::EIO)
        }
    }

    fn handle(&self, handle: u64) -> Result<Ino, Errno> {
        self.handles.get(&handle).map(|handle| handle.ino).ok_or(libc::EIO)
    }

    fn inode(&self, ino: Ino) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    /// An inode that a live entry names or a handle holds open.
    fn live_inode(&self, ino: Ino) -> Result<&Inode, Errno> {
        let inode = self.inode(ino)?;
        if ino == ROOT_INO || inode.live_links > 0 || inode.open_count > 0 {
            Ok(inode)
        } else {
            Err(libc::ENOENT)
        }
    }

    fn dir(&self, ino: Ino) -> Result<&DirEntries, Errno> {
        match &self.live_inode(ino)?.body {
            Body::Dir(entries) => Ok(entries),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirEntries, Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(entries) => Ok(entries),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file(&self, ino: Ino) -> Result<&FileContents, Errno> {
        match &self.inode(ino)?.body {
            Body::File(contents) => Ok(contents),
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }
}

impl Inode {
    fn new(body: Body, name: OsString, perm: u16, uid: u32, gid: u32) -> Self {
        Self {
            body,
            name,
            perm,
            uid,
            gid,
            mtime: SystemTime::now(),
            live_links: 0,
            durable_links: 0,
            open_count: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: (u32, u32) = (0, 0);

    fn file(model: &mut Model, parent: Ino, name: &str, data: &[u8]) -> Ino {
        let ino = model.create(parent, OsStr::new(name), Kind::File, 0o644, OWNER).unwrap().ino;
        let handle = model.open(ino, Kind::File).unwrap();
        model.write(handle, 0, data, false).unwrap();
        model.sync(handle).unwrap();
        model.release(handle);
        ino
    }

    fn sync_dir(model: &mut Model, ino: Ino) {
        let handle = model.open(ino, Kind::Dir).unwrap();
        model.sync(handle).unwrap();
        model.release(handle);
    }

    fn cycle(model: &mut Model) {
        model.power_cut(Cut::Clean);
        model.power_on();
    }

    #[test]
    fn an_unlinked_open_file_is_readable_until_closed_and_then_its_bytes_are_dropped() {
        let mut model = Model::new();
        let ino = file(&mut model, ROOT_INO, "a", b"bytes");
        sync_dir(&mut model, ROOT_INO);
        let handle = model.open(ino, Kind::File).unwrap();
        model.remove(ROOT_INO, OsStr::new("a"), Kind::File).unwrap();
        assert_eq!(model.read(handle, 0, 10, false).unwrap(), b"bytes");
        model.release(handle);
        assert_eq!(model.attr(ino).unwrap_err(), libc::ENOENT);
        assert_eq!(model.stored_size_bytes(), 10, "a durable entry still names it: kept");
        sync_dir(&mut model, ROOT_INO);
        assert_eq!(model.stored_size_bytes(), 0, "nothing names it any more");
    }

    #[test]
    fn a_rename_across_directories_synced_only_at_the_target_leaves_both_names() {
        let mut model = Model::new();
        let from = model.create(ROOT_INO, OsStr::new("from"), Kind::Dir, 0o755, OWNER).unwrap();
        let to = model.create(ROOT_INO, OsStr::new("to"), Kind::Dir, 0o755, OWNER).unwrap();
        file(&mut model, from.ino, "f", b"x");
        for dir in [from.ino, to.ino, ROOT_INO] {
            sync_dir(&mut model, dir);
        }
        model.rename((from.ino, OsStr::new("f")), (to.ino, OsStr::new("g")), false).unwrap();
        sync_dir(&mut model, to.ino);
        cycle(&mut model);
        let old = model.lookup(from.ino, OsStr::new("f")).unwrap();
        let new = model.lookup(to.ino, OsStr::new("g")).unwrap();
        assert_eq!((old.ino, old.nlink), (new.ino, 2), "one file under two names");
        model.remove(from.ino, OsStr::new("f"), Kind::File).unwrap();
        assert_eq!(model.live_contents(Path::new("to/g")).unwrap(), b"x");
    }

    #[test]
    fn a_removed_directory_comes_back_with_its_durable_entries() {
        let mut model = Model::new();
        let dir = model.create(ROOT_INO, OsStr::new("d"), Kind::Dir, 0o755, OWNER).unwrap();
        file(&mut model, dir.ino, "f", b"kept");
        sync_dir(&mut model, dir.ino);
        sync_dir(&mut model, ROOT_INO);
        model.remove(dir.ino, OsStr::new("f"), Kind::File).unwrap();
        model.remove(ROOT_INO, OsStr::new("d"), Kind::Dir).unwrap();
        assert!(model.exists_durably(Path::new("d/f")));
        cycle(&mut model);
        assert_eq!(model.live_contents(Path::new("d/f")).unwrap(), b"kept");
    }

    #[test]
    fn while_the_power_is_off_nothing_changes_and_old_handles_stay_dead() {
        let mut model = Model::new();
        let ino = file(&mut model, ROOT_INO, "a", b"durable");
        let handle = model.open(ino, Kind::File).unwrap();
        model.write(handle, 7, b" not", false).unwrap();
        model.power_cut(Cut::Clean);
        assert_eq!(model.write(handle, 0, b"x", false).unwrap_err(), libc::EIO);
        let name = OsStr::new("b");
        assert_eq!(model.create(ROOT_INO, name, Kind::File, 0o644, OWNER).unwrap_err(), libc::EIO);
        assert_eq!(model.lookup(ROOT_INO, OsStr::new("a")).unwrap().size, 11, "as it was");
        model.power_on();
        assert_eq!(model.lookup(ROOT_INO, OsStr::new("a")).unwrap_err(), libc::ENOENT);
        assert_eq!(model.read(handle, 0, 1, false).unwrap_err(), libc::EIO);
    }
}
