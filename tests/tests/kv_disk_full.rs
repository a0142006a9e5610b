//! Disk full during a KV flush, on a real loop-mounted ext4 file system with direct I/O: the
//! flush fails with a typed disk-full error, the previous snapshot stays the durable state
//! (in place and after a reopen), nothing half-written is left, reads still see every applied
//! mutation, and once space returns the flush succeeds. Needs root (mount).

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ufer_io::DataDir;
use ufer_shard::{KvConfig, KvTablet};
use ufer_tests::loop_mount::LoopMount;

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

fn kv_file_count(path: &std::path::Path) -> usize {
    std::fs::read_dir(path)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name().to_string_lossy().ends_with(".kv"))
        .count()
}

#[test]
fn a_flush_that_hits_a_full_disk_keeps_the_previous_snapshot() {
    let mount = LoopMount::ext4(16 * 1024 * 1024)
        .unwrap_or_else(|error| panic!("this test needs root to loop-mount ext4: {error}"));
    let root = mount.path().to_path_buf();
    ufer_tests::run_on_executor(move || async move {
        let path = root.join("kv");
        let dir = DataDir::open(&path).await.unwrap();
        let config = KvConfig { memtable_size_max_bytes: 64 * 1024 * 1024, ..KvConfig::test_min() };
        let tablet = KvTablet::open(&dir, config.clone()).await.unwrap();
        tablet.apply(1, [(key(0), Some(b"first".to_vec()))]);
        assert_eq!(tablet.flush().await.unwrap(), 1);
        let files_before = kv_file_count(&path);

        // Fill the disk, leaving about 1 MiB, then apply 4 MiB of values.
        let filler = root.join("filler");
        let free = free_bytes(&root);
        std::fs::write(&filler, vec![1u8; (free - 1024 * 1024) as usize]).unwrap();
        let value = vec![7u8; 4096];
        for i in 1..=1024u64 {
            tablet.apply(i + 1, [(key(i), Some(value.clone()))]);
        }
        let error = tablet.flush().await.unwrap_err();
        assert!(error.is_disk_full(), "{error}");
        assert_eq!(tablet.snapshot_log_offset(), 1);
        assert_eq!(kv_file_count(&path), files_before, "the half-written file is gone");
        assert_eq!(tablet.get(&key(1024)).await.unwrap(), Some(value.clone()));
        assert_eq!(tablet.get(&key(0)).await.unwrap(), Some(b"first".to_vec()));

        std::fs::remove_file(&filler).unwrap();
        assert_eq!(tablet.flush().await.unwrap(), 1025);
        tablet.close().await.unwrap();
        let tablet = KvTablet::open(&dir, config).await.unwrap();
        assert_eq!(tablet.snapshot_log_offset(), 1025);
        assert_eq!(tablet.get(&key(1024)).await.unwrap(), Some(value));
        tablet.close().await.unwrap();
    });
    drop(mount);
}

/// Free bytes of the file system holding `path` (`df` output, in 1 KiB blocks).
fn free_bytes(path: &std::path::Path) -> u64 {
    let output =
        std::process::Command::new("df").args(["--output=avail", "-k"]).arg(path).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let kib: u64 = text.lines().nth(1).unwrap().trim().parse().unwrap();
    kib * 1024
}
