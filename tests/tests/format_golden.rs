//! Golden fixtures of the on-disk formats, committed under `tests/fixtures/`: batches
//! (plain, with change types and statistics, LZ4, ZSTD, projected) and a whole bucket
//! directory (segments, offset and time indexes), plus a damaged copy of it. The plain and
//! projected batches are compared byte for byte, so any change to the batch format fails
//! here; the compressed batches and the bucket directories are read back, so a change that
//! breaks reading old files fails here. After a deliberate format change, regenerate with
//! `UFER_REGENERATE_FIXTURES=1 cargo test -p ufer-tests --test format_golden` and bump the
//! format version.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::rc::Rc;

use arrow_array::{Array, Int64Array};
use ufer_shard::{Clock, LogConfig, LogTablet, ManualClock, OffsetSpec, ReadRequest};
use ufer_tests::table;
use ufer_wire::header::stamp_server_fields;
use ufer_wire::{aligned_copy, BatchDecoder, ChangeType, Compression, LogBatch, Projection};

fn fixtures() -> PathBuf {
    // Read at run time: a test binary reused from a build in another clone (CI shares one
    // target directory) would otherwise look in that clone, which may be gone.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap();
    Path::new(&manifest_dir).join("fixtures")
}

fn regenerate() -> bool {
    std::env::var("UFER_REGENERATE_FIXTURES").is_ok_and(|value| value == "1")
}

const CHANGE_TYPES: [ChangeType; 10] = [
    ChangeType::Insert,
    ChangeType::Insert,
    ChangeType::UpdateBefore,
    ChangeType::UpdateAfter,
    ChangeType::Delete,
    ChangeType::Insert,
    ChangeType::AppendOnly,
    ChangeType::UpdateBefore,
    ChangeType::UpdateAfter,
    ChangeType::Delete,
];

fn stamped(compression: Compression) -> Vec<u8> {
    let mut batch = table::batch(100, 10, compression, Some(&CHANGE_TYPES));
    stamp_server_fields(&mut batch, 42, 1_700_000_000_000, 3);
    batch
}

/// Compares `bytes` with the fixture `name` (or writes it when regenerating).
fn golden(name: &str, bytes: &[u8]) {
    let path = fixtures().join(name);
    if regenerate() {
        std::fs::create_dir_all(fixtures()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let stored = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(stored == bytes, "{name} differs from the golden fixture: the batch format changed");
}

fn check_decodes_to_the_rows(name: &str, projected_columns: Option<&[usize]>) {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    let batch = LogBatch::parse(&bytes).unwrap();
    assert_eq!(batch.base_offset(), 42);
    assert_eq!(batch.commit_timestamp(), 1_700_000_000_000);
    assert_eq!(batch.header().leader_epoch.get(), 3);
    assert_eq!(batch.change_types().collect::<Vec<_>>(), CHANGE_TYPES);
    let (schema, expected) = match projected_columns {
        None => (table::schema(), table::record_batch(100, 10)),
        Some(columns) => {
            let projection = Projection::new(table::schema(), columns).unwrap();
            (
                projection.projected_schema().clone(),
                table::record_batch(100, 10).project(columns).unwrap(),
            )
        }
    };
    let decoded = BatchDecoder::new(schema).decode(&aligned_copy(&bytes)).unwrap();
    assert_eq!(decoded.record_batch, expected, "{name}");
}

#[test]
fn batch_fixtures_are_byte_identical_and_decode() {
    let plain = stamped(Compression::None);
    golden("log_batch_v1.bin", &plain);
    check_decodes_to_the_rows("log_batch_v1.bin", None);
    let statistics = LogBatch::parse(&plain).unwrap().statistics().unwrap();
    assert_eq!(statistics.len(), 2);
    assert_eq!(
        statistics[0].bounds,
        Some((100i64.to_le_bytes().to_vec(), 109i64.to_le_bytes().to_vec()))
    );

    let projection = Projection::new(table::schema(), &[0, 2]).unwrap();
    golden("log_batch_v1_projected.bin", &ufer_wire::project_batch(&plain, &projection).unwrap());
    check_decodes_to_the_rows("log_batch_v1_projected.bin", Some(&[0, 2]));

    // Compressed bytes depend on the codec library's version, so these fixtures are only
    // read back (they pin the framing, not the compressor).
    for (name, compression) in [
        ("log_batch_v1_lz4.bin", Compression::Lz4Frame),
        ("log_batch_v1_zstd.bin", Compression::Zstd),
    ] {
        if regenerate() {
            std::fs::write(fixtures().join(name), stamped(compression)).unwrap();
        }
        check_decodes_to_the_rows(name, None);
    }
}

/// The bucket fixture: 30 batches of 3 rows, one every 10 ms from t = 1_000_000, in
/// segments of at most 4 KiB.
async fn write_bucket(path: &Path) {
    let clock = ManualClock::new(1_000_000);
    let shared: Rc<dyn Clock> = Rc::new(clock.clone());
    let tablet = LogTablet::open(path, LogConfig::test_min(), shared).await.unwrap();
    for index in 0..30 {
        let mut batch = table::batch(index * 3, 3, Compression::None, None);
        tablet.append_durable(&mut batch, &table::schema()).await.unwrap();
        clock.advance(10);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

async fn read_ids(tablet: &LogTablet) -> Vec<i64> {
    let decoder = BatchDecoder::new(table::schema());
    let read = tablet.read(ReadRequest::new(tablet.log_start_offset(), 1 << 20)).await.unwrap();
    let mut ids = Vec::new();
    for chunk in &read.chunks {
        let decoded = decoder.decode(&aligned_copy(chunk.as_bytes())).unwrap();
        let column = decoded.record_batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(column.null_count(), 0);
        ids.extend(column.values().iter().copied());
    }
    ids
}

#[test]
fn the_bucket_fixture_opens_and_reads_back() {
    let fixture = fixtures().join("bucket_v1");
    let torn = fixtures().join("bucket_v1_damaged");
    if regenerate() {
        let _ = std::fs::remove_dir_all(&fixture);
        let _ = std::fs::remove_dir_all(&torn);
        let path = fixture.clone();
        ufer_tests::run_on_executor(move || async move { write_bucket(&path).await });
        std::fs::remove_file(fixture.join(ufer_io::data_dir::DMA_PROBE_FILE_NAME)).unwrap();
        // The damaged copy: a torn last batch and a garbage offset index.
        copy_dir(&fixture, &torn);
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&torn)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
            .collect();
        segments.sort();
        let active = segments.last().unwrap();
        let bytes = std::fs::read(active).unwrap();
        let mut last_batch = (0, 0);
        while let Ok(batch) = LogBatch::parse(&bytes[last_batch.0 + last_batch.1..]) {
            last_batch = (last_batch.0 + last_batch.1, batch.len());
        }
        let torn_size = (last_batch.0 + last_batch.1 / 2) as u64;
        std::fs::OpenOptions::new().write(true).open(active).unwrap().set_len(torn_size).unwrap();
        std::fs::write(segments[0].with_extension("index"), b"garbage").unwrap();
    }
    let files = std::fs::read_dir(&fixture).unwrap().count();
    assert!(
        files >= 7,
        "the fixture has several sealed segments with both indexes ({files} files)"
    );

    let work = tempfile::tempdir().unwrap();
    let (intact, damaged) = (work.path().join("intact"), work.path().join("damaged"));
    copy_dir(&fixture, &intact);
    copy_dir(&torn, &damaged);
    ufer_tests::run_on_executor(move || async move {
        let clock: Rc<dyn Clock> = Rc::new(ManualClock::new(2_000_000));
        let tablet = LogTablet::open(&intact, LogConfig::test_min(), clock.clone()).await.unwrap();
        assert_eq!(tablet.high_watermark(), 90);
        assert_eq!(read_ids(&tablet).await, (0..90).collect::<Vec<_>>());
        assert_eq!(tablet.list_offsets(OffsetSpec::Timestamp(1_000_055)).await.unwrap(), 18);

        let tablet = LogTablet::open(&damaged, LogConfig::test_min(), clock).await.unwrap();
        assert_eq!(tablet.high_watermark(), 87, "the torn last batch is cut");
        assert_eq!(read_ids(&tablet).await, (0..87).collect::<Vec<_>>());
    });
}
