//! [`LossyFs`]: a mounted lossy file system and the test's controls over it — power cuts,
//! injected sync failures, counters and a look at what is durable. Mounting needs root and
//! `/dev/fuse`; the mount is served by a thread of the test process and is unmounted when
//! the `LossyFs` is dropped (also while a failing test unwinds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use fuser::{BackgroundSession, MountOption};

use crate::lossy_fs::file_contents::Cut;
use crate::lossy_fs::model::{Model, Stats};
use crate::lossy_fs::server::{lock, Server};

/// A mounted lossy file system. See the `lossy_fs` module docs for what it models.
#[derive(Debug)]
pub struct LossyFs {
    model: Arc<Mutex<Model>>,
    session: Option<BackgroundSession>,
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl LossyFs {
    /// Mounts an empty lossy file system on a new temporary directory.
    pub fn mount() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let mount_point = dir.path().join("mnt");
        std::fs::create_dir(&mount_point).map_err(|error| error.to_string())?;
        let model = Arc::new(Mutex::new(Model::new()));
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("ufer-lossy".into()),
            MountOption::Subtype("ufer-lossy".into()),
            MountOption::NoAtime,
        ];
        let session = fuser::spawn_mount(Server::new(model.clone()), &mount_point, &config)
            .map_err(|error| {
                format!("mounting the lossy file system (needs root and /dev/fuse): {error}")
            })?;
        Ok(Self { model, session: Some(session), mount_point, _dir: dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Cuts the power with nothing torn: when it is back on, every file and directory is as
    /// it was when last made durable. Until [`Self::power_on`] the file system is off:
    /// every request that opens, reads, writes, syncs or changes anything fails with EIO
    /// (lookups still answer, with the names as they were). Stop whatever ran on it before
    /// turning the power back on, as the cut would have.
    pub fn power_cut(&self) {
        self.power_cut_with(Cut::Clean);
    }

    /// [`Self::power_cut`], keeping a random prefix of each file's appended bytes that were
    /// not durable ([`Cut::TornPrefix`]).
    pub fn power_cut_torn(&self, seed: u64) {
        self.power_cut_with(Cut::TornPrefix { seed });
    }

    /// [`Self::power_cut`] keeping what `cut` says of the bytes not durable.
    pub fn power_cut_with(&self, cut: Cut) {
        lock(&self.model).power_cut(cut);
    }

    /// Turns the power back on after a cut, with every file and directory as the cut left
    /// it. Descriptors opened before the cut stay dead.
    pub fn power_on(&self) {
        lock(&self.model).power_on();
    }

    /// A power cut and the power back on at once: for when nothing of what ran on the file
    /// system is still running (a child process that was killed).
    pub fn power_cycle(&self, cut: Cut) {
        let mut model = lock(&self.model);
        model.power_cut(cut);
        model.power_on();
    }

    /// Makes the next `count` fsync/fdatasync calls on files or directories whose name
    /// contains `name_contains` fail with EIO (the data they were to make durable is given
    /// up, as Linux does). A power cut clears what is left of the count.
    pub fn fail_syncs(&self, name_contains: &str, count: u64) {
        lock(&self.model).fail_syncs(name_contains, count);
    }

    /// What the file system has seen since it was mounted.
    pub fn stats(&self) -> Stats {
        lock(&self.model).stats()
    }

    /// Bytes held for file contents, live and durable together.
    pub fn stored_size_bytes(&self) -> u64 {
        lock(&self.model).stored_size_bytes()
    }

    /// What reads of the file at `path` (absolute under the mount, or relative to it) see
    /// now, or `None` if there is no such file.
    pub fn live_contents(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        lock(&self.model).live_contents(&self.relative(path.as_ref())).map(<[u8]>::to_vec)
    }

    /// What the file at `path` would hold after a clean power cut now, or `None` if it
    /// would not exist.
    pub fn durable_contents(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        lock(&self.model).durable_contents(&self.relative(path.as_ref())).map(<[u8]>::to_vec)
    }

    /// Whether `path` (a file or a directory) would exist after a clean power cut now.
    pub fn exists_durably(&self, path: impl AsRef<Path>) -> bool {
        lock(&self.model).exists_durably(&self.relative(path.as_ref()))
    }

    fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(&self.mount_point).unwrap_or(path).to_path_buf()
    }
}

impl Drop for LossyFs {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else { return };
        if let Err(error) = session.umount_and_join() {
            // A descriptor still open (a test that panicked, or dropped a file instead of
            // closing it) keeps the mount busy: detach it so mounts do not pile up across
            // runs; the serving thread ends when the last descriptor closes.
            eprintln!("unmounting {}: {error}; detaching it lazily", self.mount_point.display());
            let detached = Command::new("umount").arg("-l").arg(&self.mount_point).output();
            if let Err(error) = detached {
                eprintln!("umount -l could not start: {error}");
            }
        }
    }
}
