//! Where the load goes: an embedded node (a child process of this binary, on a fresh data
//! directory, with raw QUIC endpoints beside it), or a node already running elsewhere.
//!
//! The embedded child stops when its standard input closes: dropping [`Embedded`] closes it
//! and waits for a graceful stop (killing the child if it takes too long), and a parent that
//! dies closes it too, so no node outlives its benchmark.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use ufer_wire::client::{ClientConfig, Trust};

use crate::error::BenchError;
use crate::options::GlobalOptions;
use crate::server::{ServerAnnouncement, ServerOptions};

/// Longest a stopping child may take before it is killed.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a request to the node may take (long-polling fetches add their own wait).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// An embedded node in a child process.
#[derive(Debug)]
pub struct Embedded {
    child: Child,
    stdin: Option<ChildStdin>,
    announcement: ServerAnnouncement,
    data_dir: tempfile::TempDir,
}

impl Embedded {
    /// Starts `ufer-bench server` on a new data directory under `parent_dir` and waits for
    /// its announcement.
    pub fn start(parent_dir: &Path, options: &ServerOptions) -> Result<Self, BenchError> {
        std::fs::create_dir_all(parent_dir)?;
        let data_dir = tempfile::Builder::new().prefix("ufer-bench-").tempdir_in(parent_dir)?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("server")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--shards", &options.shards.to_string()])
            .args(["--spin-before-park-us", &options.spin_before_park.as_micros().to_string()])
            .args(["--udp-buffer-bytes", &options.udp_buffer_size_bytes.to_string()]);
        if !options.pin {
            command.arg("--no-pin");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let announcement: ServerAnnouncement = match serde_json::from_str(line.trim()) {
            Ok(announcement) => announcement,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BenchError::Other(format!(
                    "the embedded node did not start (it said {line:?}): {error}"
                )));
            }
        };
        Ok(Self { child, stdin, announcement, data_dir })
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + CHILD_STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A node to benchmark.
#[derive(Debug)]
pub enum Target {
    /// A child process started for this run.
    Embedded(Embedded),
    /// A running node.
    Remote {
        /// Any shard endpoint.
        bootstrap: SocketAddr,
        /// What to trust.
        trust: Trust,
    },
}

impl Target {
    /// The node `--target` names: an embedded node started now (and announced on standard
    /// output), or the running node at HOST:PORT, trusted through `--trust-dir`.
    pub fn start(options: &GlobalOptions) -> Result<Self, BenchError> {
        if options.target == "embedded" {
            return Ok(Target::Embedded(start_embedded(options)?));
        }
        let bootstrap: SocketAddr = options.target.parse()?;
        let Some(dir) = &options.trust_dir else {
            return Err(BenchError::Other(
                "--target HOST:PORT needs --trust-dir (the node's data directory)".into(),
            ));
        };
        Ok(Target::Remote { bootstrap, trust: Trust::DataDir(dir.clone()) })
    }

    /// How the SDK reaches the node.
    pub fn client_config(&self) -> ClientConfig {
        let (bootstrap, trust) = match self {
            Target::Embedded(embedded) => (
                embedded.announcement.shards.first().copied().unwrap_or(([127, 0, 0, 1], 0).into()),
                Trust::DataDir(embedded.data_dir().to_path_buf()),
            ),
            Target::Remote { bootstrap, trust } => (*bootstrap, trust.clone()),
        };
        ClientConfig {
            bootstrap,
            server_name: "localhost".into(),
            trust,
            request_timeout: REQUEST_TIMEOUT,
        }
    }

    /// The raw QUIC endpoints beside the node (embedded runs only).
    pub fn raw_endpoints(&self) -> Option<&[SocketAddr]> {
        match self {
            Target::Embedded(embedded) => Some(&embedded.announcement.raw),
            Target::Remote { .. } => None,
        }
    }

    /// The node's data directory, if it is on this machine.
    pub fn data_dir(&self) -> Option<PathBuf> {
        match self {
            Target::Embedded(embedded) => Some(embedded.data_dir().to_path_buf()),
            Target::Remote { .. } => None,
        }
    }

    /// A Prometheus counter summed over the node's shards (embedded runs only).
    pub fn counter(&self, name: &str) -> Option<u64> {
        let Target::Embedded(embedded) = self else { return None };
        let address = embedded.announcement.metrics?;
        let body = scrape(address).ok()?;
        Some(
            body.lines()
                .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
                .sum(),
        )
    }
}

fn start_embedded(options: &GlobalOptions) -> Result<Embedded, BenchError> {
    let shards = options.shard_count();
    let server = ServerOptions {
        data_dir: PathBuf::new(),
        shards,
        pin: !options.no_pin,
        spin_before_park: Duration::from_micros(options.spin_before_park_us),
        udp_buffer_size_bytes: options.udp_buffer_bytes,
    };
    let embedded = Embedded::start(&options.parent_dir(), &server)?;
    println!(
        "embedded node: {shards} shard(s){}, spin before park {} µs, UDP buffers {} KiB, \
         data in {}",
        if options.no_pin { "" } else { " pinned" },
        options.spin_before_park_us,
        options.udp_buffer_bytes / 1024,
        embedded.data_dir().display()
    );
    Ok(embedded)
}

fn scrape(address: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: ufer\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}
