//! What the node's integration tests share: running `ufer serve` and other `ufer`
//! commands as child processes.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub const UFER: &str = env!("CARGO_BIN_EXE_ufer");

/// A `ufer serve` child.
pub struct Served {
    /// The process.
    pub child: Child,
    /// Its first shard's endpoint.
    pub address: String,
    /// Its Prometheus endpoint, `host:port`.
    pub metrics: String,
}

/// `ufer serve` on free ports (QUIC and metrics), two unpinned shards.
pub fn serve(data_dir: &Path) -> Served {
    let mut command = Command::new(UFER);
    command.args(["serve", "--port", "0", "--shards", "2", "--no-pin", "--data-dir"]).arg(data_dir);
    serve_with(command)
}

/// `ufer serve` on free ports in `cwd`, with the default data directory (`./ufer-data`).
pub fn serve_in(cwd: &Path) -> Served {
    let mut command = Command::new(UFER);
    command.args(["serve", "--port", "0", "--shards", "2", "--no-pin"]).current_dir(cwd);
    serve_with(command)
}

fn serve_with(mut command: Command) -> Served {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    // "ufer node 1 serving 2 shard(s) on 127.0.0.1:a, 127.0.0.1:b"
    let address = first
        .split(" on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .trim()
        .to_string();
    // "data in …; clients trust …; metrics on http://127.0.0.1:p/metrics"
    let metrics = second
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"))
        .to_string();
    Served { child, address, metrics }
}

/// The body of `GET /metrics`.
pub fn scrape(metrics: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(metrics).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: ufer\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    answer.split("\r\n\r\n").nth(1).unwrap().to_string()
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
