//! The lossy file system itself (`ufer_tests::lossy_fs`): what survives a power cut, what a
//! torn cut keeps, injected fsync failures, dead descriptors after a cut, and direct I/O
//! through it, by std and by glommio (which must really be in O_DIRECT mode on it). Needs
//! root and /dev/fuse.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use ufer_tests::lossy_fs::{Cut, LossyFs, BLOCK_SIZE_BYTES};

const BLOCK: usize = BLOCK_SIZE_BYTES as usize;

fn sync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

/// Creates `path` holding `contents`, both durable.
fn durable_file(path: &Path, contents: &[u8]) {
    let mut file = File::create(path).unwrap();
    file.write_all(contents).unwrap();
    file.sync_data().unwrap();
    sync_dir(path.parent().unwrap());
}

fn power_cycle(fs: &LossyFs) {
    fs.power_cut();
    fs.power_on();
}

#[test]
fn written_then_synced_survives_a_power_cut_and_the_rest_is_gone() {
    let fs = LossyFs::mount().unwrap();
    let path = fs.path().join("file");
    let mut file = File::create(&path).unwrap();
    sync_dir(fs.path());
    file.write_all(b"durable").unwrap();
    file.sync_data().unwrap();
    file.write_all(b" and not").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"durable and not", "reads see everything");
    assert_eq!(fs.durable_contents(&path).unwrap(), b"durable");
    drop(file);
    power_cycle(&fs);
    assert_eq!(std::fs::read(&path).unwrap(), b"durable");
    let stats = fs.stats();
    assert_eq!((stats.file_syncs, stats.dir_syncs, stats.power_cuts), (1, 1, 1), "{stats:?}");
}

#[test]
fn a_created_file_or_directory_is_gone_unless_its_directory_was_synced() {
    let fs = LossyFs::mount().unwrap();
    durable_file(&fs.path().join("kept"), b"k");
    // Entry synced, data not: there, empty.
    let mut listed = File::create(fs.path().join("listed")).unwrap();
    sync_dir(fs.path());
    listed.write_all(b"data").unwrap();
    // Data synced, entry not: gone.
    let mut unlisted = File::create(fs.path().join("unlisted")).unwrap();
    unlisted.write_all(b"data").unwrap();
    unlisted.sync_all().unwrap();
    // A directory synced itself, but not its parent: gone with its files.
    let dir = fs.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    durable_file(&dir.join("inner"), b"inner");
    drop((unlisted, listed));
    power_cycle(&fs);
    let mut names: Vec<_> = std::fs::read_dir(fs.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["kept", "listed"]);
    assert_eq!(std::fs::read(fs.path().join("listed")).unwrap(), b"");
    assert_eq!(std::fs::read(fs.path().join("kept")).unwrap(), b"k");
}

#[test]
fn a_rename_or_an_unlink_is_durable_once_its_directory_is_synced() {
    let fs = LossyFs::mount().unwrap();
    let (target, temporary) = (fs.path().join("meta"), fs.path().join("meta.tmp"));
    durable_file(&target, b"old");
    durable_file(&fs.path().join("removed"), b"r");
    let mut file = File::create(&temporary).unwrap();
    file.write_all(b"new").unwrap();
    file.sync_data().unwrap();
    drop(file);
    std::fs::rename(&temporary, &target).unwrap();
    std::fs::remove_file(fs.path().join("removed")).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    power_cycle(&fs);
    assert_eq!(std::fs::read(&target).unwrap(), b"old", "the rename was not durable");
    assert!(!temporary.exists(), "nor was the temporary file's entry");
    assert!(fs.path().join("removed").exists(), "nor the unlink");

    durable_file(&temporary, b"new");
    std::fs::rename(&temporary, &target).unwrap();
    std::fs::remove_file(fs.path().join("removed")).unwrap();
    sync_dir(fs.path());
    power_cycle(&fs);
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    assert!(!temporary.exists() && !fs.path().join("removed").exists());
}

/// Appends `blocks` blocks, block `k` filled with byte `k + 1`, after `durable` durable
/// bytes of zeros-and-ones; returns what reads saw before the cut.
fn durable_then_appended(path: &Path, durable: usize, blocks: usize) -> Vec<u8> {
    let mut file = File::create(path).unwrap();
    sync_dir(path.parent().unwrap());
    file.write_all(&vec![0xEE; durable]).unwrap();
    file.sync_data().unwrap();
    for block in 0..blocks {
        file.write_all(&vec![block as u8 + 1; BLOCK]).unwrap();
    }
    std::fs::read(path).unwrap()
}

#[test]
fn a_torn_cut_keeps_a_block_aligned_prefix_of_what_was_appended() {
    let fs = LossyFs::mount().unwrap();
    let path = fs.path().join("log");
    let mut sizes = BTreeSet::new();
    for seed in 0..40 {
        let live = durable_then_appended(&path, 1000, 5);
        fs.power_cut_torn(seed);
        fs.power_on();
        let kept = std::fs::read(&path).unwrap();
        assert_eq!(kept[..], live[..kept.len()], "seed {seed}: a prefix of what was written");
        let size = kept.len();
        assert!(
            size == 1000 || size == live.len() || size.is_multiple_of(BLOCK),
            "seed {seed}: torn at {size}, neither the durable size, a block boundary nor the end"
        );
        sizes.insert(size);
    }
    assert!(sizes.len() >= 4, "cuts land at different places: {sizes:?}");
}

#[test]
fn a_cut_tearing_blocks_keeps_each_written_block_whole_or_not_at_all() {
    let fs = LossyFs::mount().unwrap();
    let path = fs.path().join("log");
    let mut outcomes = BTreeSet::new();
    for seed in 0..40 {
        durable_then_appended(&path, BLOCK, 4);
        fs.power_cut_with(Cut::TornBlocks { seed });
        fs.power_on();
        let kept = std::fs::read(&path).unwrap();
        assert_eq!(kept[..BLOCK], vec![0xEE; BLOCK][..], "the durable block stays");
        let mut outcome = Vec::new();
        for (index, block) in kept[BLOCK..].chunks(BLOCK).enumerate() {
            let written = index as u8 + 1;
            assert!(
                block.iter().all(|&byte| byte == written) || block.iter().all(|&byte| byte == 0),
                "seed {seed}: block {index} is neither what was written nor zeros"
            );
            outcome.push(block[0] != 0);
        }
        outcomes.insert(outcome);
    }
    assert!(outcomes.len() >= 4, "different blocks survive: {outcomes:?}");
}

#[test]
fn an_injected_eio_reaches_fdatasync_and_what_it_was_to_write_is_given_up() {
    let fs = LossyFs::mount().unwrap();
    let victim_path = fs.path().join("victim.log");
    let other_path = fs.path().join("other.log");
    let mut victim = File::create(&victim_path).unwrap();
    let mut other = File::create(&other_path).unwrap();
    sync_dir(fs.path());
    fs.fail_syncs("victim", 1);
    victim.write_all(&[1; BLOCK]).unwrap();
    other.write_all(b"other").unwrap();
    let error = victim.sync_data().unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "{error}");
    other.sync_data().unwrap();
    assert_eq!(fs.durable_contents(&victim_path).unwrap(), b"", "nothing became durable");
    // Linux's behaviour after a failed fsync: the next one succeeds without writing what
    // the failed one gave up.
    victim.write_all(&[2; BLOCK]).unwrap();
    victim.sync_data().unwrap();
    let durable = fs.durable_contents(&victim_path).unwrap();
    assert_eq!(durable.len(), 2 * BLOCK, "the size is durable");
    assert_eq!(durable[..BLOCK], [0; BLOCK], "the given-up block never reached the device");
    assert_eq!(durable[BLOCK..], [2; BLOCK]);
    assert_eq!(std::fs::read(&victim_path).unwrap()[..BLOCK], [1; BLOCK], "reads still see it");
    assert_eq!(fs.stats().failed_syncs, 1);
    drop((victim, other));
    power_cycle(&fs);
    assert_eq!(std::fs::read(&other_path).unwrap(), b"other");
    assert_eq!(std::fs::read(&victim_path).unwrap()[..BLOCK], [0; BLOCK]);

    let dir = fs.path().join("victim-dir");
    std::fs::create_dir(&dir).unwrap();
    sync_dir(fs.path());
    fs.fail_syncs("victim-dir", 1);
    File::create(dir.join("entry")).unwrap();
    let error = File::open(&dir).unwrap().sync_all().unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "{error}");
    assert!(!fs.exists_durably(dir.join("entry")));
}

#[test]
fn a_descriptor_from_before_a_power_cut_stays_dead() {
    let fs = LossyFs::mount().unwrap();
    let path = fs.path().join("file");
    durable_file(&path, b"before");
    let mut file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    fs.power_cut();
    let error = file.write_all(b"after").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "{error}");
    let error = std::fs::read(&path).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "off until powered on: {error}");
    fs.power_on();
    let error = file.write_all(b"after").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "still dead: {error}");
    let mut contents = String::new();
    File::open(&path).unwrap().read_to_string(&mut contents).unwrap();
    assert_eq!(contents, "before");
}

/// `size` bytes at a 4 KiB-aligned address, without unsafe code.
fn aligned(buffer: &mut Vec<u8>, size: usize) -> &mut [u8] {
    buffer.resize(size + BLOCK, 0);
    let start = buffer.as_ptr().align_offset(BLOCK);
    &mut buffer[start..start + size]
}

#[test]
fn o_direct_aligned_reads_and_writes_reach_the_file_system() {
    let fs = LossyFs::mount().unwrap();
    let path = fs.path().join("direct");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .unwrap();
    sync_dir(fs.path());
    let mut write_buffer = Vec::new();
    let data = aligned(&mut write_buffer, 2 * BLOCK);
    data.iter_mut().enumerate().for_each(|(index, byte)| *byte = (index % 251) as u8);
    file.write_all_at(data, BLOCK as u64).unwrap();
    file.sync_data().unwrap();
    let mut read_buffer = Vec::new();
    let read = aligned(&mut read_buffer, 2 * BLOCK);
    file.read_exact_at(read, BLOCK as u64).unwrap();
    assert_eq!(read, &write_buffer[write_buffer.as_ptr().align_offset(BLOCK)..][..2 * BLOCK]);
    let stats = fs.stats();
    assert!(stats.direct_writes >= 1 && stats.direct_reads >= 1, "{stats:?}");
    let durable = fs.durable_contents(&path).unwrap();
    assert_eq!(durable.len(), 3 * BLOCK);
    assert_eq!(durable[..BLOCK], [0; BLOCK], "the hole before the write reads as zeros");
}

/// The `flags:` line of /proc/self/fdinfo for `fd`, in octal as the kernel prints it.
fn descriptor_flags(fd: i32) -> i32 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let flags = info.lines().find_map(|line| line.strip_prefix("flags:")).unwrap();
    i32::from_str_radix(flags.trim(), 8).unwrap()
}

#[test]
fn glommio_does_direct_io_on_it_through_ufer_io() {
    use std::os::fd::AsRawFd;
    let fs = LossyFs::mount().unwrap();
    let dir_path = fs.path().join("data");
    // The directory's own entry made durable here: this test is about the I/O in it.
    std::fs::create_dir(&dir_path).unwrap();
    sync_dir(fs.path());
    let appended: Vec<u8> = (0..10_000u32).map(|index| (index % 253) as u8).collect();
    let (flags, read_back) = ufer_tests::run_on_executor({
        let (dir_path, appended) = (dir_path.clone(), appended.clone());
        move || async move {
            let dir = ufer_io::DataDir::open(&dir_path).await.unwrap();
            let writer =
                dir.create_writer("segment", ufer_io::WriterOptions::test_min()).await.unwrap();
            writer.append(&appended).await.unwrap();
            writer.sync().await.unwrap();
            let read = writer.reader().read_exact_at(0, appended.len()).await.unwrap().to_vec();
            writer.close().await.unwrap();
            let probe =
                glommio::io::DmaFile::open(dir.file_path(ufer_io::data_dir::DMA_PROBE_FILE_NAME))
                    .await
                    .unwrap();
            let flags = descriptor_flags(probe.as_raw_fd());
            probe.close().await.unwrap();
            (flags, read)
        }
    });
    assert_ne!(flags & libc::O_DIRECT, 0, "glommio's descriptor is O_DIRECT: {flags:o}");
    assert!(read_back == appended, "the appends read back");
    let stats = fs.stats();
    // DataDir::open writes its probe file with std::fs::write; everything else is glommio's.
    assert_eq!(stats.writes, stats.direct_writes + 1, "the writer's are O_DIRECT: {stats:?}");
    assert!(stats.direct_writes >= 2, "{stats:?}");
    assert_eq!(stats.reads, stats.direct_reads, "the reader's are O_DIRECT: {stats:?}");
    assert!(stats.direct_reads >= 1, "{stats:?}");
    // The writer pads its last block with zeros until the segment is sealed.
    let durable = fs.durable_contents(dir_path.join("segment")).unwrap();
    assert_eq!(durable.len(), appended.len().next_multiple_of(BLOCK));
    assert!(durable.starts_with(&appended), "the synced appends are durable");
    assert!(fs.exists_durably(dir_path.join("segment")), "create_writer syncs the directory");
    assert!(
        std::fs::metadata(dir_path.join(ufer_io::data_dir::DMA_PROBE_FILE_NAME)).unwrap().len()
            >= 4096,
        "DataDir::open wrote its DMA probe file"
    );
}
