//! The segment writer on a real ext4 file: appends of any size read back exactly, group
//! commit shares syncs, reopening continues after the partial last block, sealing trims the
//! padding, and the first file a thread opens may be empty (glommio #605 regression).

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use proptest::prelude::*;
use ufer_io::{DataDir, WriterOptions, BLOCK_SIZE_BYTES};

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|index| (seed.wrapping_mul(31).wrapping_add(index as u64 * 7) >> 3) as u8)
        .collect()
}

#[test]
fn an_empty_first_file_can_be_read_back_on_a_fresh_thread() {
    // Without the sentinel DataDir::open opens first, glommio's iopoll probe reads the empty
    // segment, wrongly enables polled reads, and this read fails with EOPNOTSUPP (os error 95).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let data_dir = DataDir::open(path).await.unwrap();
        let writer = data_dir.create_writer("a.log", WriterOptions::test_min()).await.unwrap();
        let end = writer.append(b"hello").await.unwrap();
        writer.sync_to(end).await.unwrap();
        let bytes = writer.reader().read_exact_at(0, 5).await.unwrap();
        assert_eq!(&bytes[..], b"hello");
    });
}

#[test]
fn a_data_dir_given_a_relative_path_works() {
    // `ufer serve` defaults to `./ufer-data`. glommio fails opening a relative path with EBADF
    // (os error 9), so a DataDir keeps its path absolute.
    let cwd = std::env::current_dir().unwrap();
    let dir = tempfile::tempdir_in(&cwd).unwrap();
    let relative = dir.path().strip_prefix(&cwd).unwrap().join("data");
    assert!(relative.is_relative());
    support::run(move || async move {
        let data_dir = DataDir::open(&relative).await.unwrap();
        assert!(data_dir.path().is_absolute());
        let writer = data_dir.create_writer("a.log", WriterOptions::test_min()).await.unwrap();
        let end = writer.append(b"relative").await.unwrap();
        writer.sync_to(end).await.unwrap();
        writer.close().await.unwrap();
        let reader = data_dir.open_reader("a.log").await.unwrap();
        assert_eq!(&reader.read_exact_at(0, 8).await.unwrap()[..], b"relative");
        reader.close().await.unwrap();
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn appends_of_any_size_read_back_exactly(
        sizes in prop::collection::vec(0usize..20_000, 1..40),
        sync_every in 1usize..6,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        support::run(move || async move {
            let data_dir = DataDir::open(path).await.unwrap();
            let writer = data_dir.create_writer("s.log", WriterOptions::test_min()).await.unwrap();
            let mut expected = Vec::new();
            for (index, size) in sizes.iter().enumerate() {
                let data = pattern(index as u64, *size);
                let end = writer.append(&data).await.unwrap();
                expected.extend_from_slice(&data);
                assert_eq!(end.end, expected.len() as u64);
                if index % sync_every == 0 {
                    writer.sync_to(end).await.unwrap();
                    assert!(writer.durable_size() >= end.end);
                }
            }
            writer.sync().await.unwrap();
            assert_eq!(writer.durable_size(), expected.len() as u64);
            let read = writer.reader().read_exact_at(0, expected.len()).await.unwrap();
            assert!(read[..] == expected[..], "file content differs from what was appended");
            // Unaligned reads in the middle see the same bytes.
            // (The unsealed file is padded to whole blocks: read within the content.)
            let middle = expected.len() / 3;
            let len = 1000.min(expected.len() - middle);
            let read = writer.reader().read_at(middle as u64, len).await.unwrap();
            assert_eq!(&read[..], &expected[middle..middle + len]);
        });
    }
}

#[test]
fn concurrent_appenders_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (syncs, appends) = support::run(move || async move {
        let data_dir = DataDir::open(path).await.unwrap();
        let writer =
            Rc::new(data_dir.create_writer("g.log", WriterOptions::production()).await.unwrap());
        let appended = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for task in 0..64u64 {
            let writer = writer.clone();
            let appended = appended.clone();
            tasks.push(glommio::spawn_local(async move {
                for round in 0..8u64 {
                    let data = pattern(task * 100 + round, 3000);
                    // Appends are synchronous up to the copy: no other append interleaves.
                    let end = writer.append(&data).await.unwrap();
                    appended.borrow_mut().push((end.end, data));
                    writer.sync_to(end).await.unwrap();
                    assert!(writer.durable_size() >= end.end);
                }
            }));
        }
        for task in tasks {
            task.await;
        }
        let mut appended = appended.take();
        appended.sort_by_key(|(end, _)| *end);
        let expected: Vec<u8> = appended.iter().flat_map(|(_, data)| data.clone()).collect();
        let read = writer.reader().read_exact_at(0, expected.len()).await.unwrap();
        assert!(read[..] == expected[..]);
        (writer.sync_count(), appended.len() as u64)
    });
    assert_eq!(appends, 64 * 8);
    assert!(syncs < appends / 4, "{syncs} fdatasyncs for {appends} durable appends");
}

#[test]
fn reopening_continues_after_the_partial_block_and_seal_trims_padding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let data_dir = DataDir::open(path.clone()).await.unwrap();
        let first = pattern(1, 5000);
        let writer = data_dir.create_writer("r.log", WriterOptions::test_min()).await.unwrap();
        writer.append(&first).await.unwrap();
        writer.sync().await.unwrap();
        drop(writer);
        // The file holds whole blocks; only the first 5000 bytes are content.
        let on_disk = std::fs::metadata(path.join("r.log")).unwrap().len();
        assert_eq!(on_disk % BLOCK_SIZE_BYTES, 0);

        let writer = data_dir.open_writer("r.log", 5000, WriterOptions::test_min()).await.unwrap();
        let second = pattern(2, 9000);
        writer.append(&second).await.unwrap();
        let size = writer.seal().await.unwrap();
        assert_eq!(size, 14_000);
        assert_eq!(std::fs::metadata(path.join("r.log")).unwrap().len(), 14_000);
        let read =
            data_dir.open_reader("r.log").await.unwrap().read_exact_at(0, 14_000).await.unwrap();
        assert_eq!(&read[..5000], &first[..]);
        assert_eq!(&read[5000..], &second[..]);
    });
}

#[test]
fn replaced_files_hold_old_or_new_contents_and_temporaries_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    support::run(move || async move {
        let data_dir = DataDir::open(path.clone()).await.unwrap();
        assert_eq!(data_dir.read_file("meta").await.unwrap(), None);
        data_dir.replace_file("meta", b"one").await.unwrap();
        data_dir.replace_file("meta", b"two!").await.unwrap();
        assert_eq!(data_dir.read_file("meta").await.unwrap().as_deref(), Some(&b"two!"[..]));
        // A crash between writing the temporary file and renaming it leaves a temporary.
        std::fs::write(path.join("meta.tmp"), b"half").unwrap();
        let reopened = DataDir::open(path.clone()).await.unwrap();
        assert!(!path.join("meta.tmp").exists());
        assert_eq!(reopened.read_file("meta").await.unwrap().as_deref(), Some(&b"two!"[..]));
    });
}
