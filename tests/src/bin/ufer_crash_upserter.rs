//! The process the primary-key crash test kills: upserts and deletes keys of one
//! primary-key bucket from several tasks (one write in flight per task) with `acks=all`,
//! and prints `S <key> <value>` before each write and `A <key> <value>` once it is
//! acknowledged as durable (a negative `value` is a delete). Half the writes go to a few
//! hot keys every task writes, so writes to one key are in flight together and a delete
//! often finds its key already deleted by a write not yet durable (it changes nothing);
//! the others to keys of the task's own. Values are unique (deletes too), so the test can
//! tell every write apart in the changelog and in the output. An acknowledged write that
//! changed nothing says so: `A <key> <value> unchanged`.
//!
//! Usage: `ufer_crash_upserter DIR SEED`.

// A test child process: a panic is a crash, which is what the test expects to see anyway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::rc::Rc;

use ufer_shard::pk_bucket::{PkBucket, WriteColumns};
use ufer_shard::{Clock, SystemClock};
use ufer_tests::pk::{self, TASK_COUNT};
use ufer_tests::rng::Rng;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(seed)) = (args.next(), args.next()) else {
        eprintln!("usage: ufer_crash_upserter DIR SEED");
        std::process::exit(2);
    };
    let seed: u64 = seed.parse().expect("SEED is a number");
    let dir = std::path::PathBuf::from(dir);
    glommio::LocalExecutorBuilder::default().io_memory(4 << 20).make().expect("executor").run(
        async move {
            let clock: Rc<dyn Clock> = Rc::new(SystemClock);
            let bucket = pk::open_bucket(&dir, clock).await.expect("open");
            println!("READY {}", bucket.log().high_watermark());
            let mut tasks = Vec::new();
            for task in 0..TASK_COUNT {
                let bucket = bucket.clone();
                let mut rng = Rng::new(seed ^ (task + 1).wrapping_mul(0x9E37_79B9));
                tasks.push(glommio::spawn_local(async move {
                    write_forever(&bucket, task, &mut rng, seed).await
                }));
            }
            for task in tasks {
                task.await;
            }
        },
    );
}

async fn write_forever(bucket: &Rc<PkBucket>, task: u64, rng: &mut Rng, seed: u64) {
    // Values unique across runs: the seed's high bits, the task, a counter.
    let mut counter: i64 = ((seed & 0xFFFF) as i64) << 32 | (task as i64) << 24;
    loop {
        counter += 1;
        let key = if rng.in_range(0..2) == 0 {
            rng.in_range(0..pk::HOT_KEY_COUNT) as i64
        } else {
            (pk::HOT_KEY_COUNT + rng.in_range(0..pk::KEYS_PER_TASK) * TASK_COUNT + task) as i64
        };
        let value = if rng.in_range(0..5) == 0 { -counter } else { counter };
        println!("S {key} {value}");
        let batch = pk::write_batch(key, value);
        let outcome = bucket.write(&batch, WriteColumns::All).await.expect("write");
        bucket.wait_durable(&outcome).await.expect("durable");
        let unchanged = if outcome.changelog_record_count == 0 { " unchanged" } else { "" };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "A {key} {value}{unchanged}").expect("stdout");
        stdout.flush().expect("stdout");
    }
}
