//! The node the lake crash test kills: a test-sized node on `DIR` listening from `PORT`,
//! with the default (embedded) lake. Prints `READY` once it serves, then runs until killed —
//! or until the tiering thread aborts it at the point `UFER_LAKE_CRASH_POINT` names.
//!
//! Usage: `ufer_lake_node DIR PORT`.

// A test child process: a panic is a crash, which is what the test expects to see anyway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(port)) = (args.next(), args.next()) else {
        eprintln!("usage: ufer_lake_node DIR PORT");
        std::process::exit(2);
    };
    let mut config = ufer_node::NodeConfig::test_min(dir.into());
    config.base_port = port.parse().expect("PORT is a number");
    let _node = ufer_node::start(config).expect("the node starts");
    println!("READY");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
