//! Durable-append throughput and latency of one log tablet, side by side with plain O_DIRECT
//! writes of the same bytes on the same file system, in one run.
//!
//! Everything runs on one glommio executor thread (pinned with `--cpu`), in a fresh
//! temporary directory that is removed at the end. For each batch size and number of
//! concurrent appenders, three measurements run interleaved, `--reps` times over, and the
//! medians are reported with every run's figure, because the machines this runs on are
//! shared and noisy:
//!
//! - raw + sync: one task writes the batch (padded to whole blocks) with O_DIRECT at the end
//!   of a new file and calls fdatasync, batch after batch: what durability per batch costs
//!   without group commit;
//! - tablet: `LogTablet::append_durable` from K concurrent tasks (`LogConfig::production()`,
//!   1 GiB segments): CRC and structure checks, copy into the aligned write buffer, group
//!   commit;
//! - raw, no sync: the same writes with one fdatasync at the end: the device's sequential
//!   bandwidth at this write size (one write in flight).
//!
//! Then the latency of one durable append (one appender, one batch at a time), each sample
//! alternating with one raw write + fdatasync of the same bytes.
//!
//! The executor gets `ufer_io`'s default I/O memory (4 MiB) unless `--io-memory-mib` says
//! otherwise. A production writer may hold up to 9 MiB of buffers, so with several 1 MiB
//! appenders some buffers come from the ordinary allocator instead of glommio's registered
//! pool; in runs on the development VM, 32 MiB made 8 appenders of 1 MiB about a quarter
//! faster while leaving one appender unchanged.
//!
//! `cargo run -p ufer-perf --release --bin log_append -- [--batch-bytes N[,N..]]
//! [--appenders K[,K..]] [--seconds S] [--reps R] [--dir D] [--cpu C] [--io-memory-mib M]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::{DmaFile, OpenOptions};
use hdrhistogram::Histogram;
use ufer_io::DataDir;
use ufer_perf::{
    human_duration, human_size, ExecutorOptions, LatencySummary, Rate, Spread, WideTable,
};
use ufer_shard::{Clock, LogConfig, LogTablet, SystemClock};
use ufer_wire::{BatchSchema, Compression};

const USAGE: &str = "flags: --batch-bytes N[,N..] (k/m suffixes; default 16k,1m) \
    --appenders K[,K..] (default 1,8) --seconds S (per run, default 5) \
    --reps R (default 3) --dir D (default the temp dir) --cpu C (pin; default unpinned) \
    --io-memory-mib M (glommio's registered I/O memory; default ufer_io's, 4)";

struct Args {
    batch_sizes: Vec<usize>,
    appender_counts: Vec<usize>,
    seconds: f64,
    reps: usize,
    dir: PathBuf,
    executor: ExecutorOptions,
}

fn parse_args() -> Args {
    let mut args = Args {
        batch_sizes: vec![16 * 1024, 1024 * 1024],
        appender_counts: vec![1, 8],
        seconds: 5.0,
        reps: 3,
        dir: std::env::temp_dir(),
        executor: ExecutorOptions::default(),
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = iter.next().unwrap_or_else(|| panic!("{flag} needs a value; {USAGE}"));
        let number = |what: &str| -> f64 {
            value.parse().unwrap_or_else(|_| panic!("{flag} takes {what}, not {value:?}"))
        };
        match flag.as_str() {
            "--batch-bytes" => args.batch_sizes = value.split(',').map(parse_size).collect(),
            "--appenders" => args.appender_counts = value.split(',').map(parse_count).collect(),
            "--seconds" => args.seconds = number("a number of seconds"),
            "--reps" => args.reps = number("a count") as usize,
            "--dir" => args.dir = PathBuf::from(value),
            "--cpu" => args.executor.cpu = Some(number("a CPU number") as usize),
            "--io-memory-mib" => {
                args.executor.io_memory_bytes = (number("MiB") * 1024.0 * 1024.0) as usize;
            }
            other => panic!("unknown flag {other}; {USAGE}"),
        }
    }
    assert!(args.seconds > 0.0 && args.reps > 0, "--seconds and --reps must be positive");
    args
}

/// `16384`, `16k`, `1m` (KiB and MiB).
fn parse_size(text: &str) -> usize {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.strip_suffix('k') {
        Some(digits) => (digits, 1024),
        None => match lower.strip_suffix('m') {
            Some(digits) => (digits, 1024 * 1024),
            None => (lower.as_str(), 1),
        },
    };
    let value: usize = digits.parse().unwrap_or_else(|_| panic!("bad size {text:?}"));
    assert!(value > 0, "sizes must be positive");
    value * unit
}

fn parse_count(text: &str) -> usize {
    let count: usize = text.trim().parse().unwrap_or_else(|_| panic!("bad count {text:?}"));
    assert!(count > 0, "counts must be positive");
    count
}

/// A benchmark batch of the wide table, at most `target` bytes.
struct TestBatch {
    target: usize,
    bytes: Vec<u8>,
}

fn main() {
    let args = parse_args();
    let table = WideTable::new().expect("the wide table's schema is supported");
    let batches: Vec<TestBatch> = args
        .batch_sizes
        .iter()
        .map(|&target| {
            let rows = table.rows_for_size(target).expect("sizing the batch");
            let bytes = table.log_batch(rows, 7, Compression::None).expect("building the batch");
            TestBatch { target, bytes }
        })
        .collect();
    let work = tempfile::Builder::new()
        .prefix("ufer-perf-log_append-")
        .tempdir_in(&args.dir)
        .expect("creating the benchmark directory");
    println!(
        "log_append: {} s per run, {} interleaved repetitions, medians; {} ({}); {} CPUs; {}; \
         {} MiB I/O memory",
        args.seconds,
        args.reps,
        work.path().display(),
        file_system_of(&args.dir),
        std::thread::available_parallelism().map_or(0, |count| count.get()),
        args.executor
            .cpu
            .map_or("executor unpinned".into(), |cpu| format!("executor pinned to CPU {cpu}")),
        args.executor.io_memory_bytes as f64 / (1024.0 * 1024.0),
    );
    let dir = work.path().to_path_buf();
    let (executor, seconds, reps, counts) =
        (args.executor, args.seconds, args.reps, args.appender_counts.clone());
    ufer_perf::run_on_new_thread(executor, move || async move {
        let data_dir = DataDir::open(&dir).await.expect("opening the benchmark directory");
        let schema = table.schema().clone();
        throughput_table(&data_dir, &schema, &batches, &counts, seconds, reps).await;
        latency_table(&data_dir, &schema, &batches, seconds).await;
    })
    .expect("the benchmark failed");
    work.close().expect("removing the benchmark directory");
}

/// Measures and prints every (batch size, appenders) case.
async fn throughput_table(
    dir: &DataDir,
    schema: &BatchSchema,
    batches: &[TestBatch],
    appender_counts: &[usize],
    seconds: f64,
    reps: usize,
) {
    println!();
    println!("Durable appends: tablet vs raw O_DIRECT write + fdatasync per batch (MB = 10^6 B)");
    println!("(raw: one writer, each batch padded to whole 4 KiB blocks; ratio = tablet / raw)");
    print!("{:>9} {:>4} | {:>11} {:>9} | ", "batch", "apps", "tablet MB/s", "batches/s");
    print!("{:>11} {:>9} | {:>7} | ", "raw+sync", "batches/s", "ratio");
    println!("{:>11} {:>7} | runs, MB/s: tablet; raw+sync", "raw no-sync", "ratio");
    let mut noise = Vec::new();
    for batch in batches {
        for &appenders in appender_counts {
            let runs = measure_case(dir, schema, batch, appenders, seconds, reps).await;
            noise.extend(runs.print(batch, appenders));
        }
    }
    let noise = Spread::of(noise);
    println!(
        "Spread of repetitions, (max - min) / median over all cases: median {:.0}%, worst {:.0}%",
        noise.median * 100.0,
        noise.max * 100.0
    );
}

/// The runs of one (batch size, appenders) case.
struct CaseRuns {
    tablet: Vec<Rate>,
    raw_sync: Vec<Rate>,
    raw_no_sync: Vec<Rate>,
}

/// Runs raw + sync, tablet, raw without sync, `reps` times in turn.
async fn measure_case(
    dir: &DataDir,
    schema: &BatchSchema,
    batch: &TestBatch,
    appenders: usize,
    seconds: f64,
    reps: usize,
) -> CaseRuns {
    let mut runs = CaseRuns { tablet: vec![], raw_sync: vec![], raw_no_sync: vec![] };
    for rep in 0..reps {
        let name = format!("raw-{}-{appenders}-{rep}", batch.target);
        runs.raw_sync.push(raw_writes(dir, &name, &batch.bytes, seconds, true).await);
        let bucket = dir.file_path(&format!("bucket-{}-{appenders}-{rep}", batch.target));
        runs.tablet.push(tablet_appends(&bucket, schema, &batch.bytes, appenders, seconds).await);
        runs.raw_no_sync.push(raw_writes(dir, &name, &batch.bytes, seconds, false).await);
    }
    runs
}

impl CaseRuns {
    /// Prints the medians, ratios and every run; returns the relative range of each series.
    fn print(&self, batch: &TestBatch, appenders: usize) -> [f64; 3] {
        let mb_per_s = |rates: &[Rate]| Spread::of(rates.iter().map(Rate::mb_per_s));
        let batches_per_s = |rates: &[Rate]| Spread::of(rates.iter().map(Rate::batches_per_s));
        let list = |rates: &[Rate]| {
            rates.iter().map(|rate| format!("{:.0}", rate.mb_per_s())).collect::<Vec<_>>().join(" ")
        };
        let (tablet, raw_sync, raw_no_sync) =
            (mb_per_s(&self.tablet), mb_per_s(&self.raw_sync), mb_per_s(&self.raw_no_sync));
        print!("{:>9} {:>4} | ", human_size(batch.bytes.len()), appenders);
        print!("{:>11.1} {:>9.0} | ", tablet.median, batches_per_s(&self.tablet).median);
        print!("{:>11.1} {:>9.0} | ", raw_sync.median, batches_per_s(&self.raw_sync).median);
        print!("{:>6.2}x | ", tablet.median / raw_sync.median);
        print!("{:>11.1} {:>6.2}x | ", raw_no_sync.median, tablet.median / raw_no_sync.median);
        println!("{}; {}", list(&self.tablet), list(&self.raw_sync));
        [tablet, raw_sync, raw_no_sync].map(|spread| spread.relative_range())
    }
}

/// Sequential O_DIRECT writes of `batch`'s size, padded to whole blocks, at the end of a
/// new file for `seconds`, with an fdatasync after every write (`sync_each`) or once at the
/// end (`ufer_io::disk_probe`, which ufer-bench prints beside its figures too).
async fn raw_writes(
    dir: &DataDir,
    name: &str,
    batch: &[u8],
    seconds: f64,
    sync_each: bool,
) -> Rate {
    let duration = Duration::from_secs_f64(seconds);
    let measured = ufer_io::disk_probe::durable_writes(dir, name, batch.len(), duration, sync_each)
        .await
        .expect("raw writes");
    Rate { bytes: measured.bytes, batches: measured.writes, elapsed: measured.elapsed }
}

/// `batch` in an aligned buffer of whole blocks, zero padded.
fn block_padded(file: &DmaFile, batch: &[u8]) -> glommio::io::DmaBuffer {
    let len = ufer_io::align_up(batch.len() as u64) as usize;
    let mut buffer = file.alloc_dma_buffer(len);
    let bytes = buffer.as_bytes_mut();
    bytes[..batch.len()].copy_from_slice(batch);
    bytes[batch.len()..].fill(0);
    buffer
}

/// Durable appends of `batch` from `appenders` concurrent tasks for `seconds`, to a new
/// tablet in `bucket` (removed afterwards).
async fn tablet_appends(
    bucket: &Path,
    schema: &BatchSchema,
    batch: &[u8],
    appenders: usize,
    seconds: f64,
) -> Rate {
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let tablet = LogTablet::open(bucket, LogConfig::production(), clock).await.expect("tablet");
    let tablet = Rc::new(tablet);
    let batches = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|_| {
            let (tablet, batches, schema) = (tablet.clone(), batches.clone(), schema.clone());
            // Each appender owns its copy: an append stamps offsets into the batch.
            let mut batch = batch.to_vec();
            glommio::spawn_local(async move {
                while Instant::now() < deadline {
                    tablet.append_durable(&mut batch, &schema).await.expect("durable append");
                    batches.set(batches.get() + 1);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
    let elapsed = started.elapsed();
    let tablet = Rc::try_unwrap(tablet).expect("the appenders are done");
    tablet.close().await.expect("closing the tablet");
    std::fs::remove_dir_all(bucket).expect("removing the tablet");
    Rate { bytes: batches.get() * batch.len() as u64, batches: batches.get(), elapsed }
}

/// Measures and prints the latency of one durable append against one raw write + sync.
async fn latency_table(dir: &DataDir, schema: &BatchSchema, batches: &[TestBatch], seconds: f64) {
    println!();
    println!(
        "Latency of one durable append (1 appender, one batch at a time, {seconds} s each), \
         alternating with one raw O_DIRECT write + fdatasync of the same bytes"
    );
    print!("{:>9} {:>7} | ", "batch", "samples");
    print!("{:>10} {:>9} {:>9} {:>9} | ", "tablet p50", "p99", "p99.9", "max");
    print!("{:>10} {:>9} {:>9} {:>9} | ", "raw p50", "p99", "p99.9", "max");
    println!("{:>6} {:>6}", "p50 x", "p99 x");
    for batch in batches {
        let (tablet, raw) = latencies(dir, schema, batch, seconds).await;
        let row = |summary: &LatencySummary| {
            let [p50, p99, p999, max] =
                [summary.p50, summary.p99, summary.p999, summary.max].map(human_duration);
            format!("{p50:>10} {p99:>9} {p999:>9} {max:>9}")
        };
        println!(
            "{:>9} {:>7} | {} | {} | {:>5.2}x {:>5.2}x",
            human_size(batch.bytes.len()),
            tablet.sample_count,
            row(&tablet),
            row(&raw),
            tablet.p50.as_secs_f64() / raw.p50.as_secs_f64(),
            tablet.p99.as_secs_f64() / raw.p99.as_secs_f64(),
        );
    }
}

/// Alternates one durable append and one raw write + fdatasync until each has run about
/// `seconds`; returns (tablet, raw) latency summaries.
async fn latencies(
    dir: &DataDir,
    schema: &BatchSchema,
    batch: &TestBatch,
    seconds: f64,
) -> (LatencySummary, LatencySummary) {
    let bucket = dir.file_path(&format!("latency-bucket-{}", batch.target));
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let tablet = LogTablet::open(&bucket, LogConfig::production(), clock).await.expect("tablet");
    let raw_name = format!("latency-raw-{}", batch.target);
    let raw_path = dir.file_path(&raw_name);
    let file: DmaFile =
        OpenOptions::new().write(true).create_new(true).dma_open(&raw_path).await.expect("raw");
    let buffer = Rc::new(block_padded(&file, &batch.bytes));
    let mut owned = batch.bytes.clone();
    let mut tablet_histogram = latency_histogram();
    let mut raw_histogram = latency_histogram();
    let (mut position, started) = (0u64, Instant::now());
    while started.elapsed() < Duration::from_secs_f64(2.0 * seconds) {
        let append_started = Instant::now();
        tablet.append_durable(&mut owned, schema).await.expect("durable append");
        tablet_histogram.saturating_record(append_started.elapsed().as_nanos() as u64);
        let write_started = Instant::now();
        file.write_rc_at(buffer.clone(), position).await.expect("raw write");
        file.fdatasync().await.expect("raw fdatasync");
        raw_histogram.saturating_record(write_started.elapsed().as_nanos() as u64);
        position += buffer.len() as u64;
    }
    tablet.close().await.expect("closing the tablet");
    file.close().await.expect("closing the raw file");
    dir.remove(&raw_name).await.expect("removing the raw file");
    std::fs::remove_dir_all(&bucket).expect("removing the tablet");
    (LatencySummary::of(&tablet_histogram), LatencySummary::of(&raw_histogram))
}

/// Nanoseconds from 1 µs to 60 s (values outside are clamped), 3 significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// `ext4 on /dev/vda`, from the longest mount point that holds `path`.
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
