//! The process the KV crash test kills: opens a KV tablet, replays the deterministic
//! changelog from its `snapshot_log_offset`, then applies, flushes and compacts forever,
//! printing `S <offset>` after every flush that made a snapshot durable.
//!
//! Usage: `ufer_kv_crash_writer DIR`.

// A test child process: a panic is a crash, which is what the test expects to see anyway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::rc::Rc;

use ufer_io::DataDir;
use ufer_shard::KvTablet;
use ufer_tests::kv_changelog::{kv_crash_config, kv_mutation};

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: ufer_kv_crash_writer DIR");
        std::process::exit(2);
    };
    glommio::LocalExecutorBuilder::default().io_memory(4 << 20).make().expect("executor").run(
        async move {
            let dir = DataDir::open(&dir).await.expect("data dir");
            let tablet = Rc::new(KvTablet::open(&dir, kv_crash_config()).await.expect("open"));
            println!("READY {}", tablet.snapshot_log_offset());
            {
                let tablet = tablet.clone();
                glommio::spawn_local(async move {
                    loop {
                        if !tablet.compact_step().await.expect("compact") {
                            glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
                        }
                    }
                })
                .detach();
            }
            let mut offset = tablet.snapshot_log_offset();
            loop {
                offset += 1;
                tablet.apply(offset, [kv_mutation(offset)]);
                if tablet.needs_flush() {
                    let snapshot = tablet.flush().await.expect("flush");
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "S {snapshot}").expect("stdout");
                    stdout.flush().expect("stdout");
                }
                if offset % 16 == 0 {
                    glommio::yield_if_needed().await;
                }
            }
        },
    );
}
