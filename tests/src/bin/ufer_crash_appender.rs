//! The process the crash test kills: appends to a log tablet from several tasks with group
//! commit and prints one line per durable batch, `D <base> <end> <crc32c of the stored
//! bytes> <length>`, flushed before the next append is acknowledged to anyone.
//!
//! Usage: `ufer_crash_appender DIR SEED`.

// A test child process: a panic is a crash, which is what the test expects to see anyway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::rc::Rc;

use ufer_shard::{Clock, LogConfig, LogTablet, SystemClock};
use ufer_tests::rng::Rng;
use ufer_tests::table;

/// Concurrent appenders, so group commit shares syncs between them.
const APPENDER_COUNT: u64 = 4;

/// The log configuration the crash test recovers with: small segments and buffers so that
/// kills land in rolls, buffer rotations and index writes too.
pub fn crash_config() -> LogConfig {
    let mut config = LogConfig::test_min();
    config.segment_size_max_bytes = 48 * 1024;
    config.index_interval_bytes = 2048;
    config
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(seed)) = (args.next(), args.next()) else {
        eprintln!("usage: ufer_crash_appender DIR SEED");
        std::process::exit(2);
    };
    let seed: u64 = seed.parse().expect("SEED is a number");
    glommio::LocalExecutorBuilder::default().io_memory(4 << 20).make().expect("executor").run(
        async move {
            let clock: Rc<dyn Clock> = Rc::new(SystemClock);
            let tablet = Rc::new(LogTablet::open(&dir, crash_config(), clock).await.expect("open"));
            println!("READY {}", tablet.high_watermark());
            let mut tasks = Vec::new();
            for appender in 0..APPENDER_COUNT {
                let tablet = tablet.clone();
                let mut rng = Rng::new(seed ^ (appender + 1).wrapping_mul(0x9E37_79B9));
                tasks.push(glommio::spawn_local(
                    async move { append_forever(&tablet, &mut rng).await },
                ));
            }
            for task in tasks {
                task.await;
            }
        },
    );
}

async fn append_forever(tablet: &LogTablet, rng: &mut Rng) {
    let schema = table::schema();
    loop {
        let mut batch = table::random_batch(rng);
        let appended = tablet.append_durable(&mut batch, &schema).await.expect("append");
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "D {} {} {:08x} {}",
            appended.base_offset,
            appended.last_offset + 1,
            crc32c::crc32c(&batch),
            batch.len()
        )
        .expect("stdout");
        stdout.flush().expect("stdout");
    }
}
