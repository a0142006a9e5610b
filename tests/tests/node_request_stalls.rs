//! Clients that stall cannot stall others: request bodies count against the node's
//! in-flight memory only as their bytes arrive (a header announcing 80 MiB holds nothing
//! until they come), and a stream that stalls in its header or body is answered with an
//! error once the node's request read timeout has passed since it opened. Connections
//! beyond a shard's limit are refused until one closes.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use ufer_node::{start, NodeConfig};
use ufer_tests::client_runtime;
use ufer_wire::client::connection::quic_client_config;
use ufer_wire::client::{Admin, ClientConfig, Connection, Trust};
use ufer_wire::protocol::frame::{ApiKey, FrameFlags, FrameHeader, REQUEST_BODY_SIZE_MAX_BYTES};

/// A QUIC endpoint trusting the node with data in `data_dir`, for streams and connections
/// the SDK would never make.
fn client_endpoint(data_dir: &std::path::Path) -> quinn::Endpoint {
    let config = quic_client_config(&Trust::DataDir(data_dir.to_path_buf())).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    endpoint
}

#[test]
fn stalled_requests_hold_no_memory_and_are_answered_at_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::test_min(dir.path().to_path_buf());
    config.shard_count = 1;
    let timeout = config.request_read_timeout;
    assert!(
        config.inflight_request_bytes_max < 2 * REQUEST_BODY_SIZE_MAX_BYTES as usize,
        "two announced bodies would take the whole in-flight budget"
    );
    let node = start(config).unwrap();
    let address = node.shard_addresses()[0];
    client_runtime().block_on(async {
        let raw = client_endpoint(dir.path()).connect(address, "localhost").unwrap().await.unwrap();
        // Many produce headers announcing the largest body, and then nothing: together
        // they would hold far more than the whole budget if any of it were taken for them.
        let mut stalled = Vec::new();
        for request_id in 0..500 {
            let (mut send, receive) = raw.open_bi().await.unwrap();
            let header = FrameHeader::new(
                ApiKey::Produce,
                FrameFlags::request(),
                request_id,
                REQUEST_BODY_SIZE_MAX_BYTES,
            );
            send.write_all(&header.to_bytes()).await.unwrap();
            stalled.push((send, receive));
        }
        // Half a header, and then nothing.
        let (mut send, half) = raw.open_bi().await.unwrap();
        send.write_all(&[1, 0, 1]).await.unwrap();
        stalled.push((send, half));
        let opened = Instant::now();

        // Other requests are answered while those streams stall.
        let mut client = ClientConfig::local(address, dir.path());
        client.request_timeout = timeout * 10;
        let connection = Connection::new(client).unwrap();
        let admin = Admin::new(connection.clone());
        for _ in 0..3 {
            assert!(admin.list_tables("default").await.unwrap().is_empty());
        }
        assert!(opened.elapsed() < timeout, "answered while the stalled streams were open");

        // Each stalled stream is answered with an error once the read timeout has passed.
        for (_send, mut receive) in stalled {
            let answer = tokio::time::timeout(timeout * 10, receive.read_to_end(1 << 20))
                .await
                .expect("a stalled stream is answered")
                .unwrap();
            let header = FrameHeader::parse(&answer, u32::MAX).unwrap();
            assert!(header.frame_flags().is_error(), "{answer:?}");
        }
        assert!(opened.elapsed() >= timeout, "not before the read timeout");
        connection.close().await;
        raw.close(0u32.into(), b"done");
    });
    node.shutdown().unwrap();
}

#[test]
fn connections_beyond_a_shards_limit_are_refused_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let limit = config.connections_per_shard_max;
    let node = start(config).unwrap();
    let address = node.shard_addresses()[0];
    client_runtime().block_on(async {
        let endpoint = client_endpoint(dir.path());
        let mut open = Vec::new();
        for _ in 0..limit {
            open.push(endpoint.connect(address, "localhost").unwrap().await.unwrap());
        }
        let refused = endpoint.connect(address, "localhost").unwrap().await;
        assert!(refused.is_err(), "connection {} over the limit of {limit}", limit + 1);
        // One closes: the shard takes a new one.
        open.pop().unwrap().close(0u32.into(), b"done");
        let started = Instant::now();
        loop {
            if endpoint.connect(address, "localhost").unwrap().await.is_ok() {
                break;
            }
            assert!(started.elapsed().as_secs() < 10, "no room after a connection closed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    node.shutdown().unwrap();
}
