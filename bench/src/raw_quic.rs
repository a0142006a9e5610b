//! The transport's own limits, measured between the same two processes as the node's
//! figures: raw QUIC streams to the endpoints [`crate::server`] runs beside the node, with
//! the SDK's exact QUIC client configuration and socket buffers.
//!
//! - [`RawClient::requests`]: the shape of produce — one stream per message, a small answer
//!   — with as many in flight as the produce run had, spread over the endpoints as buckets
//!   are spread over shards. What a produce that stored nothing could reach.
//! - [`RawClient::stream`]: one stream written flat out: the link's ceiling.
//! - [`RawClient::ping_pong`]: round trips of a small message, one at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ufer_wire::client::connection::{bind_udp, quic_client_config};
use ufer_wire::client::Trust;

use crate::error::BenchError;
use crate::report::{latency_histogram, merge_into, record, Throughput, Window};
use crate::server::{RAW_ECHO, RAW_SINK};

/// Bytes written per call when streaming.
const STREAM_CHUNK_SIZE_BYTES: usize = 1024 * 1024;

/// Connections to a node's raw endpoints.
#[derive(Debug)]
pub struct RawClient {
    endpoint: quinn::Endpoint,
    connections: Vec<quinn::Connection>,
}

impl RawClient {
    /// Connects to every endpoint in `addresses`, trusting `trust`.
    pub async fn connect(addresses: &[SocketAddr], trust: &Trust) -> Result<Self, BenchError> {
        let socket = bind_udp("127.0.0.1:0".parse()?)?;
        let mut endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )?;
        endpoint.set_default_client_config(quic_client_config(trust)?);
        let mut connections = Vec::with_capacity(addresses.len());
        for address in addresses {
            connections.push(endpoint.connect(*address, "localhost")?.await?);
        }
        if connections.is_empty() {
            return Err(BenchError::Other("no raw endpoints to connect to".into()));
        }
        Ok(Self { endpoint, connections })
    }

    /// Sends `message_size_bytes` per stream from `concurrency` tasks, each waiting for the
    /// answer before its next message; counts messages answered inside the window.
    pub async fn requests(
        &self,
        message_size_bytes: usize,
        concurrency: usize,
        warmup: Duration,
        duration: Duration,
    ) -> Result<(Throughput, Histogram<u64>), BenchError> {
        let window = Window::after(warmup, duration);
        let mut message = vec![0xA5u8; message_size_bytes + 1];
        message[0] = RAW_SINK;
        let message: Arc<[u8]> = message.into();
        let mut tasks = Vec::with_capacity(concurrency);
        for task in 0..concurrency {
            let connection = self.connections[task % self.connections.len()].clone();
            let message = message.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = Throughput {
                    seconds: window.duration().as_secs_f64(),
                    ..Throughput::default()
                };
                let mut latency = latency_histogram();
                while Instant::now() < window.end {
                    let started = Instant::now();
                    let (mut send, mut receive) = connection.open_bi().await?;
                    send.write_all(&message).await?;
                    send.finish()?;
                    let mut count = [0u8; 8];
                    receive.read_exact(&mut count).await?;
                    let finished = Instant::now();
                    if u64::from_le_bytes(count) != message.len() as u64 - 1 {
                        return Err(BenchError::Other("the raw sink lost bytes".into()));
                    }
                    if window.contains(finished) {
                        done.add(message.len() as u64 - 1, 0);
                        record(&mut latency, (finished - started).as_micros() as u64);
                    }
                }
                Ok::<_, BenchError>((done, latency))
            }));
        }
        merge(tasks, window).await
    }

    /// Writes one stream flat out on the first connection for the window; counts the bytes
    /// the sink received.
    pub async fn stream(
        &self,
        warmup: Duration,
        duration: Duration,
    ) -> Result<Throughput, BenchError> {
        let connection = &self.connections[0];
        // Warm up the congestion controller on a stream of its own.
        let warm = Instant::now() + warmup;
        self.stream_until(connection, warm).await?;
        let started = Instant::now();
        let bytes = self.stream_until(connection, started + duration).await?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(Throughput { bytes, rows: 0, requests: 1, seconds })
    }

    async fn stream_until(
        &self,
        connection: &quinn::Connection,
        until: Instant,
    ) -> Result<u64, BenchError> {
        let chunk = vec![0x5Au8; STREAM_CHUNK_SIZE_BYTES];
        let (mut send, mut receive) = connection.open_bi().await?;
        send.write_all(&[RAW_SINK]).await?;
        while Instant::now() < until {
            send.write_all(&chunk).await?;
        }
        send.finish()?;
        let mut count = [0u8; 8];
        receive.read_exact(&mut count).await?;
        Ok(u64::from_le_bytes(count))
    }

    /// `samples` round trips of `size_bytes`, one at a time, on the first connection.
    pub async fn ping_pong(
        &self,
        size_bytes: usize,
        samples: usize,
    ) -> Result<Histogram<u64>, BenchError> {
        let connection = &self.connections[0];
        let mut message = vec![0x33u8; size_bytes + 1];
        message[0] = RAW_ECHO;
        let mut latency = latency_histogram();
        for sample in 0..samples + samples / 10 {
            let started = Instant::now();
            let (mut send, mut receive) = connection.open_bi().await?;
            send.write_all(&message).await?;
            send.finish()?;
            let echoed = receive.read_to_end(message.len()).await?;
            if echoed.len() != message.len() - 1 {
                return Err(BenchError::Other("the raw echo lost bytes".into()));
            }
            // The first tenth warms up.
            if sample >= samples / 10 {
                record(&mut latency, started.elapsed().as_micros() as u64);
            }
        }
        Ok(latency)
    }

    /// Closes the connections.
    pub async fn close(self) {
        self.endpoint.close(0u32.into(), b"done");
        self.endpoint.wait_idle().await;
    }
}

/// What one load task measured: its count and its latency histogram.
pub type Measured = Result<(Throughput, Histogram<u64>), BenchError>;

/// Waits for `tasks` and merges their counts and histograms.
pub async fn merge(
    tasks: Vec<tokio::task::JoinHandle<Measured>>,
    window: Window,
) -> Result<(Throughput, Histogram<u64>), BenchError> {
    let mut total =
        Throughput { seconds: window.duration().as_secs_f64(), ..Throughput::default() };
    let mut latency = latency_histogram();
    for task in tasks {
        let (done, histogram) =
            task.await.map_err(|error| BenchError::Other(format!("a task failed: {error}")))??;
        total.merge(&done);
        merge_into(&mut latency, &histogram)?;
    }
    Ok((total, latency))
}
