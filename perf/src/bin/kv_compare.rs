//! The KV of primary-key tables, ufer's `KvTablet` beside RocksDB (Fluss's KV engine), in one
//! run on the same file system and executor thread, with the same changelog generation in
//! front of both: every upsert request reads the current rows of its keys from the engine,
//! runs ufer's `ChangelogGenerator` (last row wins, full changelog image), builds the
//! changelog `LogBatch` and writes the new rows back. Neither engine has a write-ahead log
//! of its own (the changelog is the WAL, as in Fluss: RocksDB's WAL is off), both read and
//! write with direct I/O, both have a 10-bit bloom filter per file and the same block cache
//! and memtable sizes, no compression. RocksDB gets one background job (a thread of its own;
//! ufer's flushes and compactions run on the measuring thread, as they share a shard's core).
//!
//! Figures, for each engine: load of `--keys` keys (100-byte rows); upsert throughput for
//! uniform and zipfian keys; point-lookup latency and throughput; write amplification
//! (bytes of files the engine wrote by flushes and compactions, as it counts them, per byte
//! of key and row applied) and space amplification (bytes on disk once compactions settled, per byte of
//! live key and row); then the time to open each engine holding `--recovery-keys` keys, and
//! how fast a changelog replays into the KV (ufer's recovery after its last snapshot).
//!
//! RocksDB is built only with `--features rocksdb` (it compiles RocksDB's C++, minutes):
//! `cargo run -p ufer-perf --release --features rocksdb --bin kv_compare -- [--keys N]
//! [--batch-rows R] [--seconds S] [--lookups L] [--recovery-keys N] [--dir D] [--cpu C]`.
//! Without the feature it measures ufer alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use hdrhistogram::Histogram;
use ufer_io::DataDir;
use ufer_perf::{human_duration, ExecutorOptions, LatencySummary};
use ufer_shard::{
    BlockCache, ChangelogGenerator, KvConfig, KvTablet, PkTableOptions, RowOp, WriteRequest,
};
use ufer_wire::schema_text::parse_schema;
use ufer_wire::{BatchOptions, BatchSchema, LogBatchBuilder, WriterStamp};

const USAGE: &str = "flags: --keys N (default 1000000) --batch-rows R (rows per upsert \
    request, default 100) --seconds S (per upsert run, default 10) --lookups L (default \
    100000) --recovery-keys N (default 10000000; 0 skips) --dir D (default the temp dir) \
    --cpu C (pin; default unpinned) --cache-mib M (block cache, default 64) \
    --memtable-mib M (default 64)";

/// Characters of the pad column: 8 + 8 + 80 + 4 offset bytes = 100 bytes of Arrow per row.
const PAD_SIZE_BYTES: usize = 80;

/// Rows per request while loading.
const LOAD_BATCH_ROWS: usize = 1000;

#[derive(Clone, Debug)]
struct Args {
    keys: u64,
    batch_rows: usize,
    seconds: f64,
    lookups: usize,
    recovery_keys: u64,
    dir: PathBuf,
    cpu: Option<usize>,
    cache_bytes: usize,
    memtable_bytes: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        keys: 1_000_000,
        batch_rows: 100,
        seconds: 10.0,
        lookups: 100_000,
        recovery_keys: 10_000_000,
        dir: std::env::temp_dir(),
        cpu: None,
        cache_bytes: 64 << 20,
        memtable_bytes: 64 << 20,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = iter.next().unwrap_or_else(|| panic!("{flag} needs a value; {USAGE}"));
        let number = || -> f64 {
            value.parse().unwrap_or_else(|_| panic!("{flag} takes a number, not {value:?}"))
        };
        match flag.as_str() {
            "--keys" => args.keys = number() as u64,
            "--batch-rows" => args.batch_rows = number() as usize,
            "--seconds" => args.seconds = number(),
            "--lookups" => args.lookups = number() as usize,
            "--recovery-keys" => args.recovery_keys = number() as u64,
            "--dir" => args.dir = PathBuf::from(value),
            "--cpu" => args.cpu = Some(number() as usize),
            "--cache-mib" => args.cache_bytes = (number() * 1048576.0) as usize,
            "--memtable-mib" => args.memtable_bytes = (number() * 1048576.0) as usize,
            other => panic!("unknown flag {other}; {USAGE}"),
        }
    }
    assert!(args.keys > 0 && args.batch_rows > 0 && args.seconds > 0.0, "{USAGE}");
    args
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| {
                    let meta = entry.metadata();
                    match meta {
                        Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
                        Ok(meta) => meta.len(),
                        Err(_) => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A seeded xorshift generator of keys: uniform, or zipfian (exponent 0.99, ranks scattered).
struct Keys {
    state: u64,
    count: u64,
    zipf: Option<(f64, f64, f64, f64)>,
}

impl Keys {
    fn new(count: u64, zipfian: bool, seed: u64) -> Self {
        let zipf = zipfian.then(|| {
            let theta = 0.99f64;
            let zeta = |n: u64| (1..=n).map(|rank| 1.0 / (rank as f64).powf(theta)).sum::<f64>();
            let zeta_n = zeta(count);
            let eta = (1.0 - (2.0 / count as f64).powf(1.0 - theta)) / (1.0 - zeta(2) / zeta_n);
            (1.0 / (1.0 - theta), zeta_n, eta, 0.5f64.powf(theta))
        });
        Self { state: seed | 1, count, zipf }
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next(&mut self) -> i64 {
        let Some((alpha, zeta_n, eta, half)) = self.zipf else {
            return (self.next_u64() % self.count) as i64;
        };
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * zeta_n;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + half {
            1
        } else {
            ((self.count as f64 * (eta * u - eta + 1.0).powf(alpha)) as u64).min(self.count - 1)
        };
        (u128::from(rank) * 2_654_435_761u128 % u128::from(self.count)) as i64
    }
}

/// The table, its generator and changelog builder.
struct Table {
    schema: BatchSchema,
    generator: ChangelogGenerator,
    builder: LogBatchBuilder,
    pad: String,
}

impl Table {
    fn new() -> Self {
        let arrow = Arc::new(parse_schema("id BIGINT NOT NULL, v BIGINT, pad STRING").unwrap());
        let schema = BatchSchema::new(1, arrow.clone()).unwrap();
        let options = PkTableOptions::from_definition(&arrow, &["id".into()], &[], &[]).unwrap();
        Self {
            generator: ChangelogGenerator::new(1, arrow, options).unwrap(),
            builder: LogBatchBuilder::new(schema.clone(), BatchOptions::default()).unwrap(),
            schema,
            pad: "p".repeat(PAD_SIZE_BYTES),
        }
    }

    fn rows(&self, ids: &[i64], value: i64) -> RecordBatch {
        RecordBatch::try_new(
            self.schema.arrow().clone(),
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(Int64Array::from(vec![value; ids.len()])),
                Arc::new(StringArray::from(vec![self.pad.as_str(); ids.len()])),
            ],
        )
        .unwrap()
    }
}

/// The engine under test (one at a time, so the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
enum Engine {
    Ufer(KvTablet),
    #[cfg(feature = "rocksdb")]
    Rocks(rocks::Rocks),
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Ufer(_) => "ufer KvTablet",
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(_) => "RocksDB",
        }
    }

    async fn multi_get(&self, keys: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
        match self {
            Engine::Ufer(kv) => kv.multi_get(keys).await.unwrap(),
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(db) => db.multi_get(keys),
        }
    }

    async fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self {
            Engine::Ufer(kv) => kv.get(key).await.unwrap(),
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(db) => db.get(key),
        }
    }

    /// Writes the mutations; ufer flushes and compacts here when due (on this thread).
    async fn apply(&self, offset: u64, mutations: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        match self {
            Engine::Ufer(kv) => {
                kv.apply(offset, mutations);
                if kv.needs_flush() {
                    kv.flush().await.unwrap();
                }
                while kv.needs_compaction() && kv.compact_step().await.unwrap() {}
            }
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(db) => db.apply(mutations),
        }
    }

    /// Flushes and lets compactions finish.
    async fn settle(&self) {
        match self {
            Engine::Ufer(kv) => {
                kv.flush().await.unwrap();
                while kv.needs_compaction() && kv.compact_step().await.unwrap() {}
            }
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(db) => db.settle(),
        }
    }

    /// Bytes the engine wrote to files by flushes and compactions.
    fn bytes_written(&self) -> u64 {
        match self {
            Engine::Ufer(kv) => {
                let stats = kv.stats();
                stats.flush_bytes_written + stats.compaction_bytes_written
            }
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(db) => db.bytes_written(),
        }
    }

    async fn close(self) {
        match self {
            Engine::Ufer(kv) => kv.close().await.unwrap(),
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(db) => drop(db),
        }
    }
}

async fn open_ufer(path: &Path, args: &Args) -> Engine {
    let dir = DataDir::open(path).await.unwrap();
    let config = KvConfig {
        memtable_size_max_bytes: args.memtable_bytes,
        block_cache_size_max_bytes: args.cache_bytes,
        ..KvConfig::production()
    };
    let cache = Rc::new(BlockCache::new(args.cache_bytes));
    Engine::Ufer(KvTablet::open_with_cache(&dir, config, cache).await.unwrap())
}

#[cfg(feature = "rocksdb")]
fn engines() -> [&'static str; 2] {
    ["ufer", "rocksdb"]
}

#[cfg(not(feature = "rocksdb"))]
fn engines() -> [&'static str; 1] {
    ["ufer"]
}

async fn open_engine(name: &str, path: &Path, args: &Args) -> Engine {
    match name {
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Engine::Rocks(rocks::Rocks::open(path, args)),
        _ => open_ufer(path, args).await,
    }
}

/// State of a run: the log offset the next changelog gets and the user bytes applied.
#[derive(Default)]
struct Progress {
    offset: u64,
    user_bytes: u64,
}

/// One upsert request: read, merge, build the changelog, write back.
async fn upsert(
    engine: &Engine,
    table: &mut Table,
    ids: &[i64],
    value: i64,
    progress: &mut Progress,
) {
    let rows = table.rows(ids, value);
    let request = WriteRequest { batch: &rows, ops: None::<&[RowOp]>, target_columns: None };
    let keys = table.generator.keys_to_read(&request).unwrap();
    let current = engine.multi_get(&keys).await;
    let output = table.generator.generate(&request, &current).unwrap();
    if let Some(changelog) = &output.changelog {
        let batch =
            table.builder.build(changelog, Some(&output.change_types), WriterStamp::NONE).unwrap();
        std::hint::black_box(batch);
        progress.offset += changelog.num_rows() as u64;
    }
    progress.user_bytes += output
        .mutations
        .iter()
        .map(|(key, value)| (key.len() + value.as_ref().map_or(0, Vec::len)) as u64)
        .sum::<u64>();
    engine.apply(progress.offset, output.mutations).await;
}

async fn load(engine: &Engine, table: &mut Table, keys: u64, progress: &mut Progress) -> Duration {
    let started = Instant::now();
    let mut first = 0;
    while first < keys {
        let end = (first + LOAD_BATCH_ROWS as u64).min(keys);
        let ids: Vec<i64> = (first as i64..end as i64).collect();
        upsert(engine, table, &ids, 0, progress).await;
        first = end;
    }
    started.elapsed()
}

fn rate(count: u64, elapsed: Duration) -> String {
    let per_second = count as f64 / elapsed.as_secs_f64();
    if per_second >= 1e6 {
        format!("{:.2}M/s", per_second / 1e6)
    } else {
        format!("{:.0}k/s", per_second / 1e3)
    }
}

async fn run_engine(name: &'static str, args: Args, work: PathBuf) {
    let path = work.join(name);
    let mut table = Table::new();
    let engine = open_engine(name, &path, &args).await;
    let mut progress = Progress::default();
    let load_time = load(&engine, &mut table, args.keys, &mut progress).await;
    println!(
        "\n{}: load {} keys in {} ({} rows)",
        engine.name(),
        args.keys,
        human_duration(load_time),
        rate(args.keys, load_time)
    );
    for (label, zipfian) in [("uniform", false), ("zipfian", true)] {
        upserts(&engine, &mut table, &args, &mut progress, label, zipfian).await;
    }
    engine.settle().await;
    let written = engine.bytes_written();
    let live_bytes = args.keys * (9 + 2 + 8 + 8 + 4 + 4 + PAD_SIZE_BYTES as u64);
    println!(
        "  write amplification {:.2} ({} MiB of files written by flushes and compactions for {} MiB of keys and rows applied); space amplification {:.2} ({} MiB on disk for ~{} MiB live)",
        written as f64 / progress.user_bytes.max(1) as f64,
        written >> 20,
        progress.user_bytes >> 20,
        dir_size(&path) as f64 / live_bytes as f64,
        dir_size(&path) >> 20,
        live_bytes >> 20
    );
    for (label, zipfian) in [("uniform", false), ("zipfian", true)] {
        lookups(&engine, &table, &args, label, zipfian).await;
    }
    engine.close().await;
    let _ = std::fs::remove_dir_all(&path);
}

/// Upserts of `args.batch_rows` keys (`zipfian` or uniform) for `args.seconds`: prints the
/// rows per second and the latency of a request.
async fn upserts(
    engine: &Engine,
    table: &mut Table,
    args: &Args,
    progress: &mut Progress,
    label: &str,
    zipfian: bool,
) {
    let mut keys = Keys::new(args.keys, zipfian, 42);
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let (started, mut rows, mut value) = (Instant::now(), 0u64, 0i64);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    while Instant::now() < deadline {
        value += 1;
        let ids: Vec<i64> = (0..args.batch_rows).map(|_| keys.next()).collect();
        let at = Instant::now();
        upsert(engine, table, &ids, value, progress).await;
        latency.saturating_record(at.elapsed().as_nanos() as u64);
        rows += ids.len() as u64;
    }
    let summary = LatencySummary::of(&latency);
    println!(
        "  upsert {label:<8} {} rows ({}-row requests: p50 {} p99 {})",
        rate(rows, started.elapsed()),
        args.batch_rows,
        human_duration(summary.p50),
        human_duration(summary.p99)
    );
}

/// `args.lookups` point reads of loaded keys (`zipfian` or uniform), one at a time: prints
/// their rate and latency.
async fn lookups(engine: &Engine, table: &Table, args: &Args, label: &str, zipfian: bool) {
    let mut keys = Keys::new(args.keys, zipfian, 7);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let started = Instant::now();
    let mut encoded = Vec::new();
    for _ in 0..args.lookups {
        let ids = [keys.next()];
        let rows = table.rows(&ids, 0);
        encoded.clear();
        table.generator.key_encoder().encode(&rows, 0, &mut encoded).unwrap();
        let at = Instant::now();
        let found = engine.get(&encoded).await;
        latency.saturating_record(at.elapsed().as_nanos() as u64);
        assert!(found.is_some(), "every key was loaded");
    }
    let summary = LatencySummary::of(&latency);
    println!(
        "  lookup {label:<8} {} (one at a time): p50 {} p99 {} p99.9 {}",
        rate(args.lookups as u64, started.elapsed()),
        human_duration(summary.p50),
        human_duration(summary.p99),
        human_duration(summary.p999)
    );
}

/// Opening an engine that holds `keys` keys (after a clean close), and replaying a
/// changelog into ufer's KV.
async fn run_recovery(name: &'static str, args: Args, work: PathBuf) {
    let path = work.join(format!("{name}-recovery"));
    let mut table = Table::new();
    let engine = open_engine(name, &path, &args).await;
    let mut progress = Progress::default();
    let load_time = load(&engine, &mut table, args.recovery_keys, &mut progress).await;
    engine.settle().await;
    let label = engine.name();
    engine.close().await;
    let started = Instant::now();
    let engine = open_engine(name, &path, &args).await;
    let opened = started.elapsed();
    let probe = {
        let rows = table.rows(&[(args.recovery_keys / 2) as i64], 0);
        let mut key = Vec::new();
        table.generator.key_encoder().encode(&rows, 0, &mut key).unwrap();
        engine.get(&key).await
    };
    assert!(probe.is_some());
    println!(
        "\n{label}: {} keys ({} MiB on disk, loaded in {}): open {}",
        args.recovery_keys,
        dir_size(&path) >> 20,
        human_duration(load_time),
        human_duration(opened)
    );
    // Irrefutable when RocksDB is not built.
    #[allow(irrefutable_let_patterns)]
    if let Engine::Ufer(kv) = &engine {
        // Recovery after the last snapshot replays the changelog: decode + apply rate.
        let count = 500_000usize;
        let ids: Vec<i64> = (0..count as i64).collect();
        let rows = table.rows(&ids, 1);
        let types = vec![ufer_wire::ChangeType::UpdateAfter; count];
        let started = Instant::now();
        let mutations = table.generator.replay_mutations(&rows, &types).unwrap();
        kv.apply(kv.applied_log_offset() + count as u64, mutations);
        println!(
            "  changelog replay into the KV: {} rows (a full {} MiB memtable of changes, ~{} rows, in {})",
            rate(count as u64, started.elapsed()),
            args.memtable_bytes >> 20,
            args.memtable_bytes / 120,
            human_duration(started.elapsed() * (args.memtable_bytes / 120) as u32 / count as u32)
        );
    }
    engine.close().await;
    let _ = std::fs::remove_dir_all(&path);
}

fn main() {
    let args = parse_args();
    let work = tempfile::Builder::new()
        .prefix("ufer-perf-kv_compare-")
        .tempdir_in(&args.dir)
        .expect("creating the benchmark directory");
    println!(
        "kv_compare: {} keys of 100-byte rows, {}-row upsert requests, {} s per upsert run, {} lookups, block cache {} MiB, memtable {} MiB, in {}",
        args.keys,
        args.batch_rows,
        args.seconds,
        args.lookups,
        args.cache_bytes >> 20,
        args.memtable_bytes >> 20,
        work.path().display()
    );
    let options = ExecutorOptions { cpu: args.cpu, ..ExecutorOptions::default() };
    for name in engines() {
        let (args, work) = (args.clone(), work.path().to_path_buf());
        ufer_perf::run_on_new_thread(options, move || run_engine(name, args, work)).unwrap();
    }
    if args.recovery_keys > 0 {
        for name in engines() {
            let (args, work) = (args.clone(), work.path().to_path_buf());
            ufer_perf::run_on_new_thread(options, move || run_recovery(name, args, work)).unwrap();
        }
    }
}

#[cfg(feature = "rocksdb")]
mod rocks {
    //! RocksDB configured like ufer's KV: no WAL, direct I/O, bloom filters, same cache.

    use std::path::Path;

    use rocksdb::statistics::Ticker;
    use rocksdb::{
        BlockBasedOptions, Cache, DBCompressionType, Options, WriteBatch, WriteOptions, DB,
    };

    use super::Args;

    pub struct Rocks {
        db: DB,
        options: Options,
        write: WriteOptions,
    }

    impl Rocks {
        pub fn open(path: &Path, args: &Args) -> Self {
            let mut options = Options::default();
            options.create_if_missing(true);
            options.enable_statistics();
            options.set_compression_type(DBCompressionType::None);
            options.set_write_buffer_size(args.memtable_bytes);
            options.set_max_background_jobs(1);
            options.set_use_direct_reads(true);
            options.set_use_direct_io_for_flush_and_compaction(true);
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&Cache::new_lru_cache(args.cache_bytes));
            table.set_bloom_filter(10.0, false);
            table.set_block_size(4096);
            options.set_block_based_table_factory(&table);
            let db = DB::open(&options, path).expect("opening RocksDB");
            let mut write = WriteOptions::default();
            write.disable_wal(true);
            Self { db, options, write }
        }

        pub fn multi_get(&self, keys: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
            self.db.multi_get(keys).into_iter().map(|value| value.expect("RocksDB get")).collect()
        }

        pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.db.get(key).expect("RocksDB get")
        }

        pub fn apply(&self, mutations: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
            let mut batch = WriteBatch::default();
            for (key, value) in mutations {
                match value {
                    Some(value) => batch.put(key, value),
                    None => batch.delete(key),
                }
            }
            self.db.write_opt(batch, &self.write).expect("RocksDB write");
        }

        /// Bytes of files written by flushes and compactions.
        pub fn bytes_written(&self) -> u64 {
            self.options.get_ticker_count(Ticker::FlushWriteBytes)
                + self.options.get_ticker_count(Ticker::CompactWriteBytes)
        }

        pub fn settle(&self) {
            self.db.flush().expect("RocksDB flush");
            while self
                .db
                .property_int_value("rocksdb.num-running-compactions")
                .ok()
                .flatten()
                .unwrap_or(0)
                > 0
                || self
                    .db
                    .property_int_value("rocksdb.compaction-pending")
                    .ok()
                    .flatten()
                    .unwrap_or(0)
                    > 0
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    impl Drop for Rocks {
        fn drop(&mut self) {
            // Without a WAL, unflushed writes would be lost: a clean close flushes.
            let _ = self.db.flush();
        }
    }
}
