//! A small ext4 file system in a file, loop-mounted, for disk-full tests with direct I/O
//! (tmpfs would silently turn direct I/O into buffered I/O). Needs root; unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted ext4 image; unmounted and removed when dropped.
#[derive(Debug)]
pub struct LoopMount {
    _dir: tempfile::TempDir,
    mount_point: PathBuf,
}

impl LoopMount {
    /// Creates and mounts an ext4 file system of `size_bytes`.
    pub fn ext4(size_bytes: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
        let image = dir.path().join("fs.img");
        let mount_point = dir.path().join("mnt");
        std::fs::create_dir(&mount_point).map_err(|error| error.to_string())?;
        let file = std::fs::File::create(&image).map_err(|error| error.to_string())?;
        file.set_len(size_bytes).map_err(|error| error.to_string())?;
        drop(file);
        run("mkfs.ext4", &["-q", "-F", "-m", "0", "-O", "^has_journal", path_str(&image)?])?;
        run("mount", &["-o", "loop", path_str(&image)?, path_str(&mount_point)?])?;
        Ok(Self { _dir: dir, mount_point })
    }

    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let Ok(path) = path_str(&self.mount_point) else { return };
        if let Err(error) = run("umount", &[path]) {
            // A file still open (a test that dropped a tablet instead of closing it) keeps
            // the mount busy: detach it anyway so mounts and loop devices do not pile up
            // across runs, and say so.
            eprintln!("{error}; detaching it lazily");
            let _ = run("umount", &["-l", path]);
        }
    }
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str().ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("{program} could not start: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr)))
    }
}
