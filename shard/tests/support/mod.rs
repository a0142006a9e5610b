//! Shared pieces of the log tablet tests: an executor per test, a table schema and its
//! batches, and reading a whole log back as rows.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ufer_shard::{Clock, LogConfig, LogTablet, ManualClock, ReadRequest};
use ufer_wire::{
    aligned_copy, BatchDecoder, BatchOptions, BatchSchema, LogBatch, LogBatchBuilder, WriterStamp,
};

/// Runs `body` on a fresh glommio executor thread; a panic there fails the test with its
/// message.
pub fn run<T, F, Fut>(body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    ufer_io::executor::run_on_new_thread(body).unwrap_or_else(|error| panic!("{error}"))
}

/// The test table: `id BIGINT NOT NULL, name STRING, n BIGINT`.
pub fn schema() -> BatchSchema {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]);
    BatchSchema::new(1, Arc::new(schema)).unwrap()
}

/// A batch of `rows` rows with ids `first_id..`.
pub fn batch(first_id: i64, rows: usize) -> Vec<u8> {
    let schema = schema();
    let ids: Vec<i64> = (first_id..first_id + rows as i64).collect();
    let names: Vec<String> = ids.iter().map(|id| format!("row-{id}")).collect();
    let record_batch = RecordBatch::try_new(
        schema.arrow().clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from(ids.iter().map(|id| id * 10).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    LogBatchBuilder::new(schema, BatchOptions::default())
        .unwrap()
        .build(&record_batch, None, WriterStamp::NONE)
        .unwrap()
}

/// A tablet in `path` with the test config and a manual clock at `now_ms`.
pub async fn open(path: &std::path::Path, config: LogConfig, clock: &ManualClock) -> LogTablet {
    let clock: Rc<dyn Clock> = Rc::new(clock.clone());
    LogTablet::open(path, config, clock).await.unwrap()
}

/// Every row id in the log from `from`, read in steps of `max_bytes`, with the offsets the
/// batches say they hold.
pub async fn read_ids(tablet: &LogTablet, from: u64, max_bytes: usize) -> Vec<(u64, i64)> {
    let decoder = BatchDecoder::new(schema());
    let mut offset = from;
    let mut rows = Vec::new();
    loop {
        let read = tablet.read(ReadRequest::new(offset, max_bytes)).await.unwrap();
        if read.chunks.is_empty() {
            assert_eq!(offset, read.high_watermark);
            return rows;
        }
        for chunk in &read.chunks {
            let decoded = decoder.decode(&aligned_copy(chunk.as_bytes())).unwrap();
            let ids = decoded.record_batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            for (index, id) in ids.values().iter().enumerate() {
                let record_offset = decoded.base_offset() + index as u64;
                if record_offset >= offset {
                    rows.push((record_offset, *id));
                }
            }
        }
        assert!(read.next_offset > offset);
        offset = read.next_offset;
    }
}

/// Base offsets and lengths of the batches in a read.
pub fn batch_offsets(chunks: &[ufer_shard::ReadChunk]) -> Vec<(u64, usize)> {
    chunks
        .iter()
        .map(|chunk| {
            let batch = LogBatch::parse(chunk.as_bytes()).unwrap();
            (batch.base_offset(), batch.len())
        })
        .collect()
}

/// Segment files of a bucket directory, oldest first, with their base offsets.
pub fn segment_files(dir: &std::path::Path) -> Vec<(u64, std::path::PathBuf)> {
    let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.to_string();
            match ufer_io::parse_file_name(&name) {
                Some((base, ufer_io::FileKind::Segment)) => Some((base, path)),
                _ => None,
            }
        })
        .collect();
    files.sort();
    files
}

/// (position, length, base offset) of each batch in a segment file.
pub fn batches_in(file: &std::path::Path) -> Vec<(usize, usize, u64)> {
    let bytes = std::fs::read(file).unwrap();
    let mut at = 0;
    let mut batches = Vec::new();
    while at < bytes.len() {
        let Ok(batch) = LogBatch::parse(&bytes[at..]) else { break };
        batches.push((at, batch.len(), batch.base_offset()));
        at += batch.len();
    }
    batches
}

/// Flips one bit of a file.
pub fn flip_bit(file: &std::path::Path, position: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[position] ^= 0x04;
    std::fs::write(file, bytes).unwrap();
}

/// A batch of `rows` rows from `first_id`, stamped as batch `sequence` of writer `writer_id`.
pub fn writer_batch(first_id: i64, rows: usize, writer_id: i64, sequence: i32) -> Vec<u8> {
    let schema = schema();
    let ids: Vec<i64> = (first_id..first_id + rows as i64).collect();
    let record_batch = RecordBatch::try_new(
        schema.arrow().clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from(ids.iter().map(|id| format!("w{id}")).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(ids)),
        ],
    )
    .unwrap();
    let stamp = WriterStamp { writer_id, batch_sequence: sequence };
    LogBatchBuilder::new(schema, BatchOptions::default())
        .unwrap()
        .build(&record_batch, None, stamp)
        .unwrap()
}
