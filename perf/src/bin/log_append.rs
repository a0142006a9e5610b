//! Durable-append throughput and latency of one log tablet, side by side with plain
//! O_DIRECT writes of the same bytes on the same file system, in one run.
//!
//! For each batch size and number of concurrent appenders, the cases run interleaved (raw,
//! tablet, raw, tablet, ...) `--reps` times and the medians are reported, because the
//! machines this runs on are shared and noisy. Raw baselines: (a) write + fdatasync per
//! batch (what durability per batch costs without group commit), (b) writes with a single
//! fdatasync at the end (the device's sequential bandwidth).
//!
//! `cargo run -p ufer-perf --release --bin log_append -- [--seconds S] [--reps N] [--dir D]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::{DmaFile, OpenOptions};
use hdrhistogram::Histogram;
use ufer_io::DataDir;
use ufer_perf::{percentiles_us, wide_batch, wide_rows_for, wide_schema};
use ufer_shard::{Clock, LogConfig, LogTablet, SystemClock};
use ufer_wire::{BatchOptions, LogBatchBuilder, WriterStamp};

struct Args {
    seconds: f64,
    reps: usize,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let mut args = Args { seconds: 3.0, reps: 3, dir: std::env::temp_dir() };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => args.seconds = value.parse().expect("--seconds takes a number"),
            "--reps" => args.reps = value.parse().expect("--reps takes a number"),
            "--dir" => args.dir = PathBuf::from(value),
            other => panic!("unknown flag {other}; flags: --seconds S --reps N --dir D"),
        }
    }
    args
}

/// Bytes and batches written in `elapsed`.
#[derive(Clone, Copy, Debug)]
struct Rate {
    bytes: u64,
    batches: u64,
    elapsed: Duration,
}

impl Rate {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }

    fn batches_per_s(&self) -> f64 {
        self.batches as f64 / self.elapsed.as_secs_f64()
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn batch_of(bytes: usize) -> Vec<u8> {
    let schema = wide_schema();
    let rows = wide_batch(&schema, wide_rows_for(bytes), 7);
    LogBatchBuilder::new(schema, BatchOptions::default())
        .unwrap()
        .build(&rows, None, WriterStamp::NONE)
        .unwrap()
}

/// Raw O_DIRECT sequential writes of `batch_len` (rounded up to blocks) for `seconds`, with
/// an fdatasync after every write (`sync_each`) or once at the end.
async fn raw_writes(dir: &Path, batch_len: usize, seconds: f64, sync_each: bool) -> Rate {
    let data_dir = DataDir::open(dir).await.unwrap();
    let path = data_dir.file_path("raw.bin");
    let file: DmaFile =
        OpenOptions::new().write(true).create(true).truncate(true).dma_open(&path).await.unwrap();
    let len = ufer_io::align_up(batch_len as u64) as usize;
    let mut buffer = file.alloc_dma_buffer(len);
    buffer.as_bytes_mut().fill(0x5A);
    let buffer = Rc::new(buffer);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut position = 0u64;
    let mut batches = 0u64;
    while Instant::now() < deadline {
        file.write_rc_at(buffer.clone(), position).await.unwrap();
        if sync_each {
            file.fdatasync().await.unwrap();
        }
        position += len as u64;
        batches += 1;
    }
    file.fdatasync().await.unwrap();
    let elapsed = started.elapsed();
    file.close().await.unwrap();
    std::fs::remove_file(&path).unwrap();
    Rate { bytes: batches * batch_len as u64, batches, elapsed }
}

/// Durable appends of `batch` from `appenders` concurrent tasks for `seconds`.
async fn tablet_appends(dir: &Path, batch: &[u8], appenders: usize, seconds: f64) -> Rate {
    let mut config = LogConfig::production();
    config.batch_size_max_bytes = 64 * 1024 * 1024;
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let bucket = dir.join("bucket");
    let tablet = Rc::new(LogTablet::open(&bucket, config, clock).await.unwrap());
    let schema = wide_schema();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let batches = Rc::new(Cell::new(0u64));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..appenders {
        let (tablet, batches, schema) = (tablet.clone(), batches.clone(), schema.clone());
        let mut batch = batch.to_vec();
        tasks.push(glommio::spawn_local(async move {
            while Instant::now() < deadline {
                tablet.append_durable(&mut batch, &schema).await.unwrap();
                batches.set(batches.get() + 1);
            }
        }));
    }
    for task in tasks {
        task.await;
    }
    let elapsed = started.elapsed();
    let tablet = Rc::try_unwrap(tablet).expect("appenders are done");
    tablet.close().await.unwrap();
    std::fs::remove_dir_all(&bucket).unwrap();
    Rate { bytes: batches.get() * batch.len() as u64, batches: batches.get(), elapsed }
}

/// Latency of one durable append at a time, and of one raw write + fdatasync.
async fn latencies(dir: &Path, batch: &[u8], samples: usize) -> (Histogram<u64>, Histogram<u64>) {
    let mut tablet_histogram = Histogram::<u64>::new(3).unwrap();
    let mut raw_histogram = Histogram::<u64>::new(3).unwrap();
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let bucket = dir.join("latency");
    let tablet = LogTablet::open(&bucket, LogConfig::production(), clock).await.unwrap();
    let schema = wide_schema();
    let mut owned = batch.to_vec();
    let data_dir = DataDir::open(dir).await.unwrap();
    let path = data_dir.file_path("raw-latency.bin");
    let file: DmaFile =
        OpenOptions::new().write(true).create(true).truncate(true).dma_open(&path).await.unwrap();
    let len = ufer_io::align_up(batch.len() as u64) as usize;
    let buffer = Rc::new(file.alloc_dma_buffer(len));
    for sample in 0..samples {
        let started = Instant::now();
        tablet.append_durable(&mut owned, &schema).await.unwrap();
        tablet_histogram.record(started.elapsed().as_nanos() as u64).unwrap();
        let started = Instant::now();
        file.write_rc_at(buffer.clone(), (sample * len) as u64).await.unwrap();
        file.fdatasync().await.unwrap();
        raw_histogram.record(started.elapsed().as_nanos() as u64).unwrap();
    }
    tablet.close().await.unwrap();
    file.close().await.unwrap();
    std::fs::remove_dir_all(&bucket).unwrap();
    std::fs::remove_file(&path).unwrap();
    (tablet_histogram, raw_histogram)
}

fn main() {
    let args = parse_args();
    let work = tempfile::tempdir_in(&args.dir).unwrap();
    let dir = work.path().to_path_buf();
    println!(
        "log_append: {} s per case, {} interleaved repetitions, medians; dir {} ({})",
        args.seconds,
        args.reps,
        args.dir.display(),
        file_system_of(&args.dir)
    );
    println!(
        "{:>9} {:>9} | {:>12} {:>12} | {:>14} {:>9} | {:>14} {:>9}",
        "batch",
        "appenders",
        "tablet MB/s",
        "batches/s",
        "raw+sync MB/s",
        "ratio",
        "raw bw MB/s",
        "ratio"
    );
    for batch_bytes in [16 * 1024, 1024 * 1024] {
        let batch = batch_of(batch_bytes);
        for appenders in [1usize, 8] {
            let (seconds, reps, dir, owned) = (args.seconds, args.reps, dir.clone(), batch.clone());
            let rates = ufer_io::executor::run_on_new_thread(move || async move {
                let batch = owned;
                let mut rates = Vec::new();
                for _ in 0..reps {
                    let raw_sync = raw_writes(&dir, batch.len(), seconds, true).await;
                    let tablet = tablet_appends(&dir, &batch, appenders, seconds).await;
                    let raw_bandwidth = raw_writes(&dir, batch.len(), seconds, false).await;
                    rates.push((tablet, raw_sync, raw_bandwidth));
                }
                rates
            })
            .unwrap();
            let tablet = median(rates.iter().map(|rate| rate.0.mb_per_s()).collect());
            let tablet_batches = median(rates.iter().map(|rate| rate.0.batches_per_s()).collect());
            let raw_sync = median(rates.iter().map(|rate| rate.1.mb_per_s()).collect());
            let raw_bandwidth = median(rates.iter().map(|rate| rate.2.mb_per_s()).collect());
            let spread: Vec<String> =
                rates.iter().map(|rate| format!("{:.0}", rate.0.mb_per_s())).collect();
            println!(
                "{:>9} {:>9} | {:>12.1} {:>12.0} | {:>14.1} {:>8.2}x | {:>14.1} {:>8.2}x   (tablet runs: {})",
                human(batch.len()),
                appenders,
                tablet,
                tablet_batches,
                raw_sync,
                tablet / raw_sync,
                raw_bandwidth,
                tablet / raw_bandwidth,
                spread.join(", ")
            );
        }
    }
    for batch_bytes in [16 * 1024, 1024 * 1024] {
        let batch = batch_of(batch_bytes);
        let dir = dir.clone();
        let (tablet, raw) = ufer_io::executor::run_on_new_thread(move || async move {
            latencies(&dir, &batch, 2_000).await
        })
        .unwrap();
        println!(
            "latency of one durable append, {}: tablet {}",
            human(batch_bytes),
            percentiles_us(&tablet)
        );
        println!(
            "latency of one raw write + fdatasync, {}: {}",
            human(batch_bytes),
            percentiles_us(&raw)
        );
    }
}

fn human(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn file_system_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (device, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            canonical
                .starts_with(mount_point)
                .then(|| (mount_point.len(), format!("{kind} on {device}")))
        })
        .max()
        .map(|(_, description)| description)
        .unwrap_or_else(|| "unknown file system".into())
}
