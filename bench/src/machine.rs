//! What a run was measured on: cores, CPU, kernel, the data directory's file system and the
//! socket buffer ceiling, read from /proc so the figures carry their context.

use std::path::Path;

use serde::Serialize;

/// Facts about this machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// CPU model name.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// File system type of the node's data directory (if local).
    pub data_file_system: String,
    /// `net.core.rmem_max`, the cap on UDP receive buffers.
    pub rmem_max_bytes: u64,
}

impl Machine {
    /// Reads the facts; `data_dir` is the node's data directory if it is on this machine.
    pub fn read(data_dir: Option<&Path>) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split(':').nth(1))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        Self {
            cores: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            data_file_system: data_dir
                .map(|dir| file_system_of(dir, &read("/proc/mounts")))
                .unwrap_or_default(),
            rmem_max_bytes: read("/proc/sys/net/core/rmem_max").trim().parse().unwrap_or(0),
        }
    }
}

/// The type of the mount in `mounts` (the /proc/mounts format) holding `path`: the one
/// with the longest mount point that is a prefix of it.
fn file_system_of(path: &Path, mounts: &str) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point).then(|| (mount_point.len(), kind.to_string()))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, kind)| kind)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_mount_point_names_the_file_system() {
        let mounts =
            "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n/dev/loop0 /tmp/x xfs rw 0 0\n";
        assert_eq!(file_system_of(Path::new("/tmp/x/data"), mounts), "xfs");
        assert_eq!(file_system_of(Path::new("/tmp/y"), mounts), "tmpfs");
        assert_eq!(file_system_of(Path::new("/var/lib"), mounts), "ext4");
        assert!(Machine::read(None).cores >= 1);
    }
}
