//! What the node's integration tests share: running `ufer serve` and other `ufer`
//! commands as child processes.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub const UFER: &str = env!("CARGO_BIN_EXE_ufer");

/// `ufer serve` on free ports; returns the child and the first shard's address.
pub fn serve(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(UFER)
        .args(["serve", "--port", "0", "--shards", "2", "--no-pin", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    // "ufer node 1 serving 2 shard(s) on 127.0.0.1:a, 127.0.0.1:b"
    let address = line
        .split(" on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .trim()
        .to_string();
    (child, address)
}

pub fn ufer(data_dir: &Path, server: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(UFER)
        .arg("--server")
        .arg(server)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Sends a signal with the `kill` command (no unsafe code in tests).
pub fn send_signal(pid: u32, signal: &str) {
    assert!(Command::new("kill").arg(signal).arg(pid.to_string()).status().unwrap().success());
}
