//! The Prometheus metrics endpoint: `GET /metrics` on a plain TCP listener, answered from a
//! thread of its own with every shard's counters (atomics the shards write). Nothing here
//! touches a shard's executor, so a slow scraper never delays a request.
//!
//! HTTP/1.1, one request per connection, `Connection: close`; anything but `GET /metrics`
//! (or `GET /`) gets 404. Each connection is answered on a thread of its own, at most
//! [`CONNECTION_COUNT_MAX`] at once (more are closed at once), so a slow client delays no
//! other. A request head over [`REQUEST_HEAD_SIZE_MAX_BYTES`], or not whole within
//! [`REQUEST_READ_TIMEOUT`] of the connection's start however slowly it trickles, is
//! dropped; the answer must be taken within the same time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ufer_shard::{Clock, SystemClock};

use crate::error::NodeError;
use crate::lake::LakeMetrics;
use crate::metrics::{render_prometheus, ShardMetrics};

/// Longest request head read.
pub const REQUEST_HEAD_SIZE_MAX_BYTES: usize = 8 * 1024;

/// Longest a client may take to send its whole request head (and to take the answer).
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections answered at once; more are closed without an answer.
pub const CONNECTION_COUNT_MAX: usize = 16;

/// A running metrics endpoint; stopped by [`MetricsServer::stop`] (or when dropped).
#[derive(Debug)]
pub struct MetricsServer {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `listen` and serves the counters of `shards`.
    pub fn start(
        listen: &str,
        shards: Vec<Arc<ShardMetrics>>,
        lake: Option<Arc<LakeMetrics>>,
    ) -> Result<Self, NodeError> {
        let listener = TcpListener::bind(listen).map_err(|error| {
            NodeError::Startup(format!("metrics endpoint on {listen}: {error}"))
        })?;
        let address = listener
            .local_addr()
            .map_err(|error| NodeError::Startup(format!("metrics endpoint: {error}")))?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("ufer-metrics".into())
            .spawn(move || {
                let open = Arc::new(AtomicUsize::new(0));
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    if open.fetch_add(1, Ordering::SeqCst) >= CONNECTION_COUNT_MAX {
                        open.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                    let (shards, lake, held) = (shards.clone(), lake.clone(), open.clone());
                    let spawned = std::thread::Builder::new()
                        .name("ufer-metrics-answer".into())
                        .spawn(move || {
                            let _ = answer(stream, &shards, lake.as_deref());
                            held.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        open.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })
            .map_err(|error| NodeError::Startup(format!("metrics thread: {error}")))?;
        Ok(Self { address, stopping, thread: Some(thread) })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops listening and waits for the thread.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn answer(
    mut stream: TcpStream,
    shards: &[Arc<ShardMetrics>],
    lake: Option<&LakeMetrics>,
) -> std::io::Result<()> {
    let deadline = Instant::now() + REQUEST_READ_TIMEOUT;
    stream.set_write_timeout(Some(REQUEST_READ_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        // Each read may take only what is left of the whole head's time.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        let read = stream.read(&mut chunk)?;
        if read == 0 || head.len() + read > REQUEST_HEAD_SIZE_MAX_BYTES {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let request_line = head.split(|byte| *byte == b'\r').next().unwrap_or_default();
    let mut parts = request_line.split(|byte| *byte == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, content_type, body) = if method == b"GET" && (path == b"/metrics" || path == b"/")
    {
        let snapshots: Vec<_> = shards.iter().map(|shard| shard.snapshot()).collect();
        let mut body = render_prometheus(&snapshots);
        if let Some(lake) = lake {
            lake.render_prometheus(&mut body, SystemClock.now_ms());
        }
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
    } else {
        ("404 Not Found", "text/plain; charset=utf-8", "try GET /metrics\n".to_string())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(address: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn serves_every_shards_counters_and_404_elsewhere() {
        let shards = vec![Arc::new(ShardMetrics::default()), Arc::new(ShardMetrics::default())];
        ShardMetrics::add(&shards[1].produced_batches, 7);
        let server = MetricsServer::start("127.0.0.1:0", shards.clone(), None).unwrap();
        let answer = get(server.address(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("ufer_produced_batches_total{shard=\"1\"} 7"), "{answer}");
        assert!(answer.contains("# TYPE ufer_requests_total counter"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let length: usize = answer
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        // Counters are read at each scrape.
        ShardMetrics::add(&shards[1].produced_batches, 1);
        let answer = get(server.address(), "GET /metrics HTTP/1.1\r\n\r\n");
        assert!(answer.contains("ufer_produced_batches_total{shard=\"1\"} 8"), "{answer}");
        assert!(get(server.address(), "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(server.address(), "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        // An oversize head is dropped without an answer; the endpoint keeps serving.
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
        let mut stream = TcpStream::connect(server.address()).unwrap();
        let _ = stream.write_all(huge.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(answer.is_empty());
        assert!(get(server.address(), "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        server.stop();
    }

    #[test]
    fn a_slow_client_blocks_no_scrape_and_is_cut_off_at_the_head_deadline() {
        let shards = vec![Arc::new(ShardMetrics::default())];
        let server = MetricsServer::start("127.0.0.1:0", shards, None).unwrap();
        let address = server.address();
        // One byte every 200 ms: each read is quick, the head never ends.
        let slow = std::thread::spawn(move || {
            let mut stream = TcpStream::connect(address).unwrap();
            let started = std::time::Instant::now();
            for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: ".iter().cycle().take(200) {
                if stream.write_all(&[*byte]).is_err() {
                    return Some(started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            None
        });
        std::thread::sleep(Duration::from_millis(300));
        // Scrapes are answered while the slow client is still sending.
        for _ in 0..3 {
            assert!(get(address, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        }
        assert!(!slow.is_finished(), "the slow client was still sending during the scrapes");
        // Its connection is closed once the whole head took longer than the deadline (the
        // byte after the close fails), long before its 40 s of sending would end.
        let cut_after = slow.join().unwrap().expect("the slow client was cut off");
        assert!(cut_after < REQUEST_READ_TIMEOUT * 3, "cut off after {cut_after:?}");
        server.stop();
    }
}
