//! The node side of an embedded benchmark run, in a child process: a ufer node on a fresh
//! data directory, and beside it a raw QUIC endpoint per shard (quinn on tokio, the node's
//! certificate and QUIC server configuration, nothing of ufer behind it) that measures what
//! the transport alone can carry between the same two processes.
//!
//! The raw endpoint answers each stream by its first byte: [`RAW_SINK`] reads the rest and
//! answers with the byte count (8 bytes, little endian); [`RAW_ECHO`] sends back what it
//! read. The child prints one JSON line ([`ServerAnnouncement`]) and runs until its standard
//! input closes (the parent exited or is done), then stops the node gracefully.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ufer_node::NodeConfig;

use crate::error::BenchError;

/// First byte of a raw stream: read everything, answer with the count.
pub const RAW_SINK: u8 = b'S';

/// First byte of a raw stream: send back everything read.
pub const RAW_ECHO: u8 = b'E';

/// Largest raw echo (the raw sink has no limit: it only counts).
pub const RAW_ECHO_SIZE_MAX_BYTES: usize = 1024 * 1024;

/// How the child node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// Shards.
    pub shards: usize,
    /// Pin shard k to CPU k.
    pub pin: bool,
    /// Idle spin before an executor parks.
    pub spin_before_park: Duration,
    /// UDP socket buffers of the node's endpoints.
    pub udp_buffer_size_bytes: usize,
}

/// What the child tells the parent, as one JSON line on standard output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAnnouncement {
    /// Each shard's QUIC endpoint.
    pub shards: Vec<SocketAddr>,
    /// Each raw QUIC endpoint (one per shard).
    pub raw: Vec<SocketAddr>,
    /// The node's Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
}

/// Runs the child: node, raw endpoints, announcement; returns once standard input closes
/// and the node has stopped.
pub fn run(options: &ServerOptions) -> Result<(), BenchError> {
    let mut config = NodeConfig::production();
    config.data_dir = options.data_dir.clone();
    config.base_port = 0;
    config.shard_count = options.shards;
    config.pin_shards = options.pin;
    config.spin_before_park = options.spin_before_park;
    config.udp_buffer_size_bytes = options.udp_buffer_size_bytes;
    config.metrics_listen = Some("127.0.0.1:0".into());
    let node = ufer_node::start(config.clone())?;
    let identity = ufer_node::tls::load_or_create(&config.data_dir, &config.advertised_host)?;
    let server_config = ufer_node::tls::server_config(&identity)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.shards.max(1))
        .thread_name("raw-quic")
        .enable_all()
        .build()?;
    let raw = runtime.block_on(async {
        let mut addresses = Vec::with_capacity(options.shards);
        for _ in 0..options.shards {
            let socket = ufer_wire::client::connection::bind_udp("127.0.0.1:0".parse()?)?;
            let endpoint = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server_config.clone()),
                socket,
                Arc::new(quinn::TokioRuntime),
            )?;
            addresses.push(endpoint.local_addr()?);
            tokio::spawn(accept(endpoint));
        }
        Ok::<_, BenchError>(addresses)
    })?;

    let announcement =
        ServerAnnouncement { shards: node.shard_addresses(), raw, metrics: node.metrics_address() };
    println!("{}", serde_json::to_string(&announcement)?);
    // Until the parent closes our standard input (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    runtime.shutdown_timeout(Duration::from_secs(1));
    node.shutdown()?;
    Ok(())
}

async fn accept(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(async move {
            let Ok(connection) = incoming.await else { return };
            while let Ok((send, receive)) = connection.accept_bi().await {
                tokio::spawn(answer(send, receive));
            }
        });
    }
}

async fn answer(mut send: quinn::SendStream, mut receive: quinn::RecvStream) {
    let mut mode = [0u8; 1];
    if receive.read_exact(&mut mode).await.is_err() {
        return;
    }
    match mode[0] {
        RAW_SINK => {
            let mut count = 0u64;
            // Chunks are dropped as they come: no copy, like a produce that stores nothing.
            while let Ok(Some(chunk)) = receive.read_chunk(usize::MAX, true).await {
                count += chunk.bytes.len() as u64;
            }
            let _ = send.write_all(&count.to_le_bytes()).await;
        }
        RAW_ECHO => {
            if let Ok(bytes) = receive.read_to_end(RAW_ECHO_SIZE_MAX_BYTES).await {
                let _ = send.write_all(&bytes).await;
            }
        }
        _ => {}
    }
    let _ = send.finish();
}
