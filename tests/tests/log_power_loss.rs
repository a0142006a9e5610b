//! Power-loss test of the log: a tablet on the lossy file system (`ufer_tests::lossy_fs`),
//! appended to with acks=all by several tasks, loses power at a random moment — during
//! recovery or while appending; clean, or tearing appends (a prefix, or any of the blocks
//! not yet synced) — again and again. After every cut the log reopens with every
//! acknowledged batch present and byte-identical, offsets dense from 0, only batches that
//! were written, and nothing after the last valid batch in the active segment.
//!
//! Unlike the SIGKILL crash test (`log_crash_recovery`), a cut here loses what the kernel
//! held but the device did not: a missing fdatasync or directory fsync shows.
//!
//! Also here: an fdatasync failing with EIO stops the log and loses nothing acknowledged;
//! and two defects the lossy file system found, each kept as a test (their docs say what
//! and why): the directory `LogTablet::open` created was never made durable in its parent,
//! and a log restarted after a failed fdatasync trusted what that sync gave up.
//!
//! The cut loop runs 3 logs of 10 cuts by default; `UFER_TEST_MULTIPLIER=N` runs N times
//! as many logs (and N times the EIO rounds); `UFER_POWER_SEED` replays a run. Needs root
//! and /dev/fuse.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ufer_shard::{
    AppendError, Clock, LogConfig, LogTablet, OpenError, ReadError, ReadRequest, SystemClock,
};
use ufer_tests::lossy_fs::{Cut, LossyFs};
use ufer_tests::rng::Rng;
use ufer_tests::table;
use ufer_wire::{Compression, LogBatch};

/// Concurrent appenders, so group commit shares syncs between them.
const APPENDER_COUNT: u64 = 4;

/// Power cuts on one log before a fresh one starts (the checks read the whole log).
const CUTS_PER_LOG: u64 = 10;

/// Longest wait for a cut after appending started.
const APPENDING_MAX: Duration = Duration::from_millis(40);

/// Longest wait for a cut that lands in opening, recovery or the check.
const OPENING_MAX: Duration = Duration::from_millis(10);

/// A batch acknowledged durable: end offset, CRC-32C of its stored bytes, length.
type Durable = (u64, u32, usize);

/// What the log does not stamp of a batch: its length and the CRC-32C of its bytes from
/// the Arrow message on. Every batch read back must be one that was written.
type Fingerprint = (usize, u32);

/// Small segments and buffers so that cuts land in rolls, buffer rotations and index
/// writes too (as in the SIGKILL crash test).
fn power_config() -> LogConfig {
    let mut config = LogConfig::test_min();
    config.segment_size_max_bytes = 48 * 1024;
    config.index_interval_bytes = 2048;
    config
}

/// Why a run on the executor did not finish cleanly.
#[derive(Debug)]
enum Failure {
    /// An I/O error: expected once the power is cut, a failure before.
    Io(String),
    /// The log reopened without an acknowledged batch, or with one changed, or with
    /// something that was never written, or found its files corrupt: always a failure.
    Lost(String),
    /// The executor panicked (an assertion of the log's, or of the test's): always a
    /// failure.
    Panic(String),
}

/// What the executor's tasks and the test thread share, for one log.
#[derive(Debug, Default)]
struct Shared {
    /// Batches acknowledged in the current run.
    acked: Mutex<Vec<(u64, Durable)>>,
    /// Every batch handed to the log so far.
    written: Mutex<HashSet<Fingerprint>>,
    /// Set once the log reopened and passed its check, before the first append.
    ready: AtomicBool,
    /// Set by the test after the cut: appenders stop.
    stop: AtomicBool,
    /// Set when the appenders are to stop on a failed fdatasync: the log must then refuse
    /// every append as fatal.
    expect_fatal: AtomicBool,
}

/// What the runs added up to.
#[derive(Debug, Default)]
struct Figures {
    cuts: u64,
    torn_cuts: u64,
    cuts_while_appending: u64,
    checks: u64,
    acknowledged_batches_checked: u64,
    acknowledged_batches: u64,
}

#[test]
fn every_acknowledged_batch_survives_power_cuts() {
    let fs = LossyFs::mount().unwrap();
    let seed =
        std::env::var("UFER_POWER_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(0xC07);
    let mut rng = Rng::new(seed);
    let mut figures = Figures::default();
    let started = Instant::now();
    for log in 0..ufer_tests::iterations(3) {
        // The log's directory is made durable here: that `LogTablet::open` does not make
        // the directory it creates durable is the next test's subject.
        let path = fs.path().join(format!("log-{log}"));
        std::fs::create_dir(&path).unwrap();
        sync_dir(fs.path());
        let shared = Arc::new(Shared::default());
        let mut acked = BTreeMap::new();
        for cut in 0..CUTS_PER_LOG {
            let context = format!("log {log}, cut {cut}, seed {seed:#x}");
            let run = CutRun { fs: &fs, path: &path, shared: &shared, context };
            run.run_and_cut(&mut acked, &mut rng, &mut figures);
        }
        if let Err(failure) = run_to_end(&path, &acked, &shared, None) {
            panic!("reopening log {log} after its last cut (seed {seed:#x}): {failure:?}");
        }
        figures.checks += 1;
        figures.acknowledged_batches_checked += acked.len() as u64;
        figures.acknowledged_batches += acked.len() as u64;
        std::fs::remove_dir_all(&path).unwrap();
        sync_dir(fs.path());
    }
    eprintln!("log_power_loss: {figures:?} in {:?}", started.elapsed());
    assert!(
        figures.acknowledged_batches > figures.cuts,
        "the appenders made progress: {figures:?}"
    );
}

/// A log in a directory `LogTablet::open` created (as a node's tablets are), one batch
/// acknowledged, then a clean power cut.
///
/// Failed before `DataDir::open` fsynced the parent of every directory it creates: it made
/// the directory with `create_dir_all`, and `create_writer` fsynced the new directory
/// itself (its segment entry) but not the parent's entry for it. Under POSIX, which this
/// file system models strictly, the whole directory — every acknowledged batch in it — was
/// gone after the cut. (ext4 and XFS usually keep it, because the journal commit that an
/// fsync forces carries the earlier mkdir along; that is not a guarantee.)
#[test]
fn a_log_directory_made_by_open_survives_a_power_cut() {
    let fs = LossyFs::mount().unwrap();
    let path = fs.path().join("bucket-0");
    let shared = Arc::new(Shared::default());
    let acked = append_batches(&path, 1, &shared);
    assert_eq!(acked.len(), 1, "one batch acknowledged");
    fs.power_cut();
    fs.power_on();
    let directory_survived = path.exists();
    let result = run_to_end(&path, &acked, &shared, None);
    assert!(
        directory_survived && result.is_ok(),
        "an acknowledged batch was lost with the log directory that LogTablet::open \
         created, because that directory's entry in its parent was never fsynced (directory \
         survived the cut: {directory_survived}; reopening: {result:?})"
    );
}

/// Opens the log at `path` on an executor, appends `count` batches with acks=all, and
/// closes it cleanly; returns what was acknowledged.
fn append_batches(path: &Path, count: usize, shared: &Arc<Shared>) -> BTreeMap<u64, Durable> {
    let (path, shared) = (path.to_path_buf(), shared.clone());
    ufer_tests::run_on_executor(move || async move {
        let clock: Rc<dyn Clock> = Rc::new(SystemClock);
        let tablet = LogTablet::open(&path, power_config(), clock).await.unwrap();
        let mut acked = BTreeMap::new();
        for index in 0..count {
            let mut batch = table::batch(index as i64 * 10, 10, Compression::None, None);
            shared.written.lock().unwrap().insert(fingerprint(&batch).unwrap());
            let appended = tablet.append_durable(&mut batch, &table::schema()).await.unwrap();
            let durable = (appended.last_offset + 1, crc32c::crc32c(&batch), batch.len());
            acked.insert(appended.base_offset, durable);
        }
        tablet.close().await.unwrap();
        acked
    })
}

/// The segment's fdatasync fails with EIO while several tasks append with acks=all: the
/// log stops (every append after it fails as fatal, none is acknowledged), and after a
/// power cut — clean or torn — it reopens with everything acknowledged.
#[test]
fn after_a_failed_fdatasync_the_log_stops_and_loses_nothing_acknowledged() {
    let fs = LossyFs::mount().unwrap();
    let seed = 0xE10;
    let mut rng = Rng::new(seed);
    let path = fs.path().join("log");
    std::fs::create_dir(&path).unwrap();
    sync_dir(fs.path());
    let shared = Arc::new(Shared::default());
    let mut acked = BTreeMap::new();
    let rounds = ufer_tests::iterations(4);
    for round in 0..rounds {
        let context = format!("round {round}, seed {seed:#x}");
        fail_a_sync_while_appending(&fs, &path, &shared, &mut acked, &context);
        let cut = match rng.in_range(0..3) {
            0 => Cut::Clean,
            1 => Cut::TornPrefix { seed: rng.next_u64() },
            _ => Cut::TornBlocks { seed: rng.next_u64() },
        };
        fs.power_cycle(cut);
    }
    if let Err(failure) = run_to_end(&path, &acked, &shared, None) {
        panic!("reopening the log after the last cut (seed {seed:#x}): {failure:?}");
    }
    assert_eq!(fs.stats().failed_syncs, rounds, "every injected EIO was hit");
    assert!(acked.len() as u64 >= 20 * rounds, "{} batches acknowledged", acked.len());
}

/// A failed fdatasync, then the process restarts without a power cut (same kernel), then
/// a batch is acknowledged, then the power is cut: the acknowledged batch must survive.
///
/// Failed before a log left a `sync-failed` file at its first failed fdatasync and the next
/// open rewrote the active segment as it reads it before trusting it. The failed sync gave
/// up the blocks of the batch it was making durable (Linux marks such pages clean; reads
/// still see them). The restarted log read the segment, found that batch whole, and trusted
/// it: `SegmentWriter::open`'s fdatasync succeeded without writing the given-up blocks, the
/// log served the batch below its high watermark and appended after it. The power cut left
/// zeros where it was; recovery cut the segment there, and the batch acknowledged after the
/// restart was gone with it. (Segments are O_DIRECT, so the pages are not in the page cache;
/// but a failed device flush leaves the written blocks of unknown fate in the same way, and
/// this file system models the pessimistic case.)
#[test]
fn a_batch_acknowledged_after_a_restart_that_followed_a_failed_fdatasync_survives_a_cut() {
    let fs = LossyFs::mount().unwrap();
    let path = fs.path().join("log");
    std::fs::create_dir(&path).unwrap();
    sync_dir(fs.path());
    let shared = Arc::new(Shared::default());
    let mut acked = append_batches(&path, 1, &shared);
    let refused = append_large_batch_expecting_fatal(&fs, &path, &shared);
    assert!(refused, "the append whose fdatasync failed was refused as fatal");
    // Restarted on the same kernel: no cut.
    acked.extend(append_batches(&path, 1, &shared));
    fs.power_cut();
    fs.power_on();
    let result = run_to_end(&path, &acked, &shared, None);
    assert!(
        result.is_ok(),
        "a batch acknowledged after a restart that followed a failed fdatasync was \
         lost in a power cut, behind the blocks the failed sync gave up and the restarted \
         log trusted: {result:?}"
    );
}

/// Opens the log at `path`, makes the next fdatasync of a segment fail, appends one batch
/// of several blocks with acks=all, and returns whether the log refused it as fatal; the
/// tablet is then dropped, as a process that stops on a fatal error would.
fn append_large_batch_expecting_fatal(fs: &LossyFs, path: &Path, shared: &Arc<Shared>) -> bool {
    // Opening syncs the segment too: the failure is armed once the log is open.
    let armed = Arc::new(AtomicBool::new(false));
    let runner = {
        let (path, shared, armed) = (path.to_path_buf(), shared.clone(), armed.clone());
        std::thread::spawn(move || {
            ufer_tests::run_on_executor(move || async move {
                let clock: Rc<dyn Clock> = Rc::new(SystemClock);
                let tablet = LogTablet::open(&path, power_config(), clock).await.unwrap();
                shared.ready.store(true, Ordering::SeqCst);
                while !armed.load(Ordering::SeqCst) {
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                let mut batch = table::batch(1_000_000, 1000, Compression::None, None);
                assert!(batch.len() > 3 * 4096, "the batch spans whole blocks: {}", batch.len());
                shared.written.lock().unwrap().insert(fingerprint(&batch).unwrap());
                let appended = tablet.append_durable(&mut batch, &table::schema()).await;
                drop(tablet);
                glommio::timer::sleep(Duration::from_millis(1)).await;
                matches!(appended, Err(AppendError::Fatal(_)))
            })
        })
    };
    while !shared.ready.load(Ordering::SeqCst) && !runner.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    fs.fail_syncs(".log", 1);
    armed.store(true, Ordering::SeqCst);
    runner.join().unwrap()
}

/// Appends from several tasks until some batches are acknowledged, makes the next
/// fdatasync of a segment fail, and waits for every appender to stop on the error; the log
/// must then refuse a further append as fatal.
fn fail_a_sync_while_appending(
    fs: &LossyFs,
    path: &Path,
    shared: &Arc<Shared>,
    acked: &mut BTreeMap<u64, Durable>,
    context: &str,
) {
    shared.ready.store(false, Ordering::SeqCst);
    shared.stop.store(false, Ordering::SeqCst);
    shared.expect_fatal.store(true, Ordering::SeqCst);
    let runner = {
        let (path, expected, shared) = (path.to_path_buf(), acked.clone(), shared.clone());
        std::thread::spawn(move || run_to_end(&path, &expected, &shared, Some(0xFA11)))
    };
    let started = Instant::now();
    while shared.acked.lock().unwrap().len() < 20 && started.elapsed() < WAIT_MAX {
        std::thread::sleep(Duration::from_millis(1));
    }
    fs.fail_syncs(".log", 1);
    while !runner.is_finished() && started.elapsed() < WAIT_MAX {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stopped = runner.is_finished();
    if !stopped {
        // Unblock the appenders before failing.
        fs.power_cut();
        shared.stop.store(true, Ordering::SeqCst);
    }
    let result = runner.join().unwrap();
    fs.power_on();
    shared.expect_fatal.store(false, Ordering::SeqCst);
    assert!(stopped, "the appenders did not stop after a failed fdatasync ({context})");
    if let Err(failure) = result {
        panic!("appending until a failed fdatasync ({context}): {failure:?}");
    }
    for (base, durable) in shared.acked.lock().unwrap().drain(..) {
        let previous = acked.insert(base, durable);
        assert!(previous.is_none(), "offset {base} was acknowledged twice ({context})");
    }
}

/// One run on one log: reopen, check, append, and lose the power.
struct CutRun<'a> {
    fs: &'a LossyFs,
    path: &'a Path,
    shared: &'a Arc<Shared>,
    context: String,
}

impl CutRun<'_> {
    /// Reopens the log and checks it against `acked` on an executor thread while this
    /// thread cuts the power at a random moment; then adds what was acknowledged.
    fn run_and_cut(
        &self,
        acked: &mut BTreeMap<u64, Durable>,
        rng: &mut Rng,
        figures: &mut Figures,
    ) {
        let shared = self.shared;
        shared.ready.store(false, Ordering::SeqCst);
        shared.stop.store(false, Ordering::SeqCst);
        let while_opening = rng.in_range(0..4) == 0;
        let delay = if while_opening {
            Duration::from_micros(rng.in_range(0..OPENING_MAX.as_micros() as u64))
        } else {
            Duration::from_micros(rng.in_range(1000..APPENDING_MAX.as_micros() as u64))
        };
        let cut = match rng.in_range(0..3) {
            0 => Cut::Clean,
            1 => Cut::TornPrefix { seed: rng.next_u64() },
            _ => Cut::TornBlocks { seed: rng.next_u64() },
        };
        let runner = {
            let (path, expected, shared) = (self.path.to_path_buf(), acked.clone(), shared.clone());
            let append_seed = rng.next_u64();
            std::thread::spawn(move || run_to_end(&path, &expected, &shared, Some(append_seed)))
        };
        let cut_made = wait_and_cut(self.fs, &runner, shared, while_opening, delay, cut);
        shared.stop.store(true, Ordering::SeqCst);
        let result = runner.join().unwrap();
        self.fs.power_on();
        let context = &self.context;
        match result {
            Ok(()) => {}
            Err(Failure::Lost(problem)) => panic!("after the previous cut ({context}): {problem}"),
            Err(Failure::Panic(panic)) => panic!("in the run before cut ({context}): {panic}"),
            Err(Failure::Io(problem)) if !cut_made => {
                panic!("an I/O error before any cut ({context}): {problem}")
            }
            Err(Failure::Io(_)) => {}
        }
        if shared.ready.load(Ordering::SeqCst) {
            figures.checks += 1;
            figures.acknowledged_batches_checked += acked.len() as u64;
            figures.cuts_while_appending += u64::from(cut_made);
        }
        figures.cuts += u64::from(cut_made);
        figures.torn_cuts += u64::from(cut_made && cut != Cut::Clean);
        for (base, durable) in shared.acked.lock().unwrap().drain(..) {
            // A base offset given out again means the batch acknowledged with it was lost.
            let previous = acked.insert(base, durable);
            assert!(previous.is_none(), "offset {base} was acknowledged twice ({context})");
        }
    }
}

/// Waits for the moment to cut (`delay` after the start, or after the log is ready) and
/// cuts the power, unless the run ended first. Returns whether it cut.
fn wait_and_cut(
    fs: &LossyFs,
    runner: &std::thread::JoinHandle<Result<(), Failure>>,
    shared: &Shared,
    while_opening: bool,
    delay: Duration,
    cut: Cut,
) -> bool {
    let started = Instant::now();
    let mut ready_at = None;
    loop {
        if runner.is_finished() {
            return false;
        }
        if ready_at.is_none() && shared.ready.load(Ordering::SeqCst) {
            ready_at = Some(Instant::now());
        }
        let since = if while_opening { Some(started) } else { ready_at };
        if since.is_some_and(|since| since.elapsed() >= delay) || started.elapsed() > WAIT_MAX {
            fs.power_cut_with(cut);
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Longest a run may take to become ready before the power is cut anyway.
const WAIT_MAX: Duration = Duration::from_secs(20);

/// On a new executor: reopens the log, checks it against `expected`, and with
/// `append_seed` appends until stopped or failed.
fn run_to_end(
    path: &Path,
    expected: &BTreeMap<u64, Durable>,
    shared: &Arc<Shared>,
    append_seed: Option<u64>,
) -> Result<(), Failure> {
    let (path, expected, shared) = (path.to_path_buf(), expected.clone(), shared.clone());
    ufer_io::executor::run_on_new_thread(move || async move {
        let result = open_check_append(path, expected, shared, append_seed).await;
        // A file dropped without a close (on an error path, after the cut) is closed by
        // the reactor's next turn: give it one before the executor ends.
        glommio::timer::sleep(Duration::from_millis(1)).await;
        result
    })
    .unwrap_or_else(|panic| Err(Failure::Panic(panic)))
}

async fn open_check_append(
    path: PathBuf,
    expected: BTreeMap<u64, Durable>,
    shared: Arc<Shared>,
    append_seed: Option<u64>,
) -> Result<(), Failure> {
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let opened = LogTablet::open(&path, power_config(), clock).await;
    let tablet = opened.map_err(|error| match error {
        OpenError::Io(_) => io_failure(error),
        _ => Failure::Lost(error.to_string()),
    })?;
    check_log(&tablet, &path, &expected, &shared.written).await?;
    shared.ready.store(true, Ordering::SeqCst);
    let Some(seed) = append_seed else {
        return tablet.close().await.map_err(io_failure);
    };
    let tablet = Rc::new(tablet);
    let mut tasks = Vec::new();
    for appender in 0..APPENDER_COUNT {
        let (tablet, shared) = (tablet.clone(), shared.clone());
        let rng = Rng::new(seed ^ (appender + 1).wrapping_mul(0x9E37_79B9));
        tasks.push(glommio::spawn_local(append_until_stopped(tablet, rng, shared)));
    }
    for task in tasks {
        task.await;
    }
    if shared.expect_fatal.load(Ordering::SeqCst) {
        check_refuses_appends(&tablet, &shared).await?;
    }
    // The power is gone, so the tablet cannot close: it is dropped.
    Ok(())
}

async fn append_until_stopped(tablet: Rc<LogTablet>, mut rng: Rng, shared: Arc<Shared>) {
    let schema = table::schema();
    while !shared.stop.load(Ordering::SeqCst) {
        let mut batch = table::random_batch(&mut rng);
        shared.written.lock().unwrap().insert(fingerprint(&batch).unwrap());
        let Ok(appended) = tablet.append_durable(&mut batch, &schema).await else { break };
        let durable = (appended.last_offset + 1, crc32c::crc32c(&batch), batch.len());
        shared.acked.lock().unwrap().push((appended.base_offset, durable));
    }
}

/// After a failed fdatasync the log answers every append with a fatal error.
async fn check_refuses_appends(tablet: &LogTablet, shared: &Shared) -> Result<(), Failure> {
    let mut batch = table::batch(-1, 1, Compression::None, None);
    shared.written.lock().unwrap().insert(fingerprint(&batch).unwrap());
    match tablet.append_durable(&mut batch, &table::schema()).await {
        Err(AppendError::Fatal(_)) => Ok(()),
        Err(error) => Err(Failure::Lost(format!("after a failed fdatasync: {error}, not fatal"))),
        Ok(appended) => Err(Failure::Lost(format!(
            "after a failed fdatasync the log acknowledged a batch at {}",
            appended.base_offset
        ))),
    }
}

fn fingerprint(bytes: &[u8]) -> Result<Fingerprint, String> {
    let batch = LogBatch::parse(bytes).map_err(|error| error.to_string())?;
    let bytes = batch.bytes();
    Ok((bytes.len(), crc32c::crc32c(&bytes[batch.message_offset()..])))
}

fn io_failure(error: impl std::fmt::Display) -> Failure {
    Failure::Io(error.to_string())
}

/// Checks the open log against every batch acknowledged so far: all there, byte for byte,
/// offsets dense from 0, every batch one that was written, nothing after the last valid
/// batch of the active segment.
async fn check_log(
    tablet: &LogTablet,
    path: &Path,
    acked: &BTreeMap<u64, Durable>,
    written: &Mutex<HashSet<Fingerprint>>,
) -> Result<(), Failure> {
    let found = read_all(tablet, written).await?;
    for (base, expected) in acked {
        match found.get(base) {
            Some(actual) if actual == expected => {}
            Some(actual) => {
                return Err(Failure::Lost(format!(
                    "acknowledged batch {base} differs: {actual:?}, acknowledged {expected:?}"
                )))
            }
            None => {
                return Err(Failure::Lost(format!(
                    "acknowledged batch {base} is gone (the log ends at {})",
                    tablet.high_watermark()
                )))
            }
        }
    }
    check_active_segment_tail(path)
}

/// Every batch of the log by base offset, checked dense from 0 and written by the test.
async fn read_all(
    tablet: &LogTablet,
    written: &Mutex<HashSet<Fingerprint>>,
) -> Result<BTreeMap<u64, Durable>, Failure> {
    let mut found = BTreeMap::new();
    let mut offset = tablet.log_start_offset();
    if offset != 0 {
        return Err(Failure::Lost(format!("the log starts at {offset}, not 0")));
    }
    loop {
        let read = tablet.read(ReadRequest::new(offset, 1 << 20)).await;
        let read = read.map_err(|error| match error {
            ReadError::Io(_) => io_failure(error),
            _ => Failure::Lost(error.to_string()),
        })?;
        if read.chunks.is_empty() {
            break;
        }
        for chunk in &read.chunks {
            let bytes = chunk.as_bytes();
            let batch = LogBatch::parse(bytes).map_err(|error| Failure::Lost(error.to_string()))?;
            if batch.base_offset() != offset {
                let base = batch.base_offset();
                return Err(Failure::Lost(format!("batch at {base} where {offset} was expected")));
            }
            let fingerprint = fingerprint(bytes).map_err(Failure::Lost)?;
            if !written.lock().unwrap().contains(&fingerprint) {
                return Err(Failure::Lost(format!("batch {offset} was never written")));
            }
            offset = batch.last_offset() + 1;
            found.insert(batch.base_offset(), (offset, crc32c::crc32c(bytes), bytes.len()));
        }
    }
    if offset != tablet.high_watermark() {
        let high_watermark = tablet.high_watermark();
        return Err(Failure::Lost(format!(
            "read ended at {offset}, high watermark {high_watermark}"
        )));
    }
    Ok(found)
}

/// Recovery cut the active segment after its last valid batch.
fn check_active_segment_tail(path: &Path) -> Result<(), Failure> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_failure)? {
        let name = entry.map_err(io_failure)?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") {
            segments.push(name);
        }
    }
    segments.sort();
    let active = path.join(segments.last().ok_or(Failure::Lost("no segment".into()))?);
    let bytes = std::fs::read(&active).map_err(io_failure)?;
    let mut at = 0;
    while at < bytes.len() {
        match LogBatch::parse(&bytes[at..]) {
            Ok(batch) => at += batch.len(),
            Err(error) => {
                let left = bytes.len() - at;
                return Err(Failure::Lost(format!(
                    "{left} bytes after the last valid batch ({error})"
                )));
            }
        }
    }
    Ok(())
}

fn sync_dir(path: &Path) {
    std::fs::File::open(path).unwrap().sync_all().unwrap();
}
