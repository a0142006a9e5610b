//! quinn on glommio: a shard-side endpoint driven by `GlommioRuntime` serves a tokio quinn
//! client over loopback — many streams, a bulk transfer and a ping-pong — byte for byte.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use ufer_io::quic_runtime::{
    bind_udp, udp_buffer_sizes, udp_send_stats, GlommioRuntime, UDP_SOCKET_BUFFER_SIZE_BYTES,
};

fn certificate() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
    (certified.cert.der().clone(), key.into())
}

/// Serves one connection on a glommio executor: every bidirectional stream is answered with
/// the bytes it carried.
fn start_server(
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let (address_sender, address_receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default().make().unwrap().run(async move {
            let mut server_config =
                quinn::ServerConfig::with_single_cert(vec![certificate], key).unwrap();
            let mut transport = quinn::TransportConfig::default();
            transport.max_concurrent_bidi_streams(1024u32.into());
            server_config.transport_config(Arc::new(transport));
            let socket =
                bind_udp("127.0.0.1:0".parse().unwrap(), UDP_SOCKET_BUFFER_SIZE_BYTES).unwrap();
            let endpoint = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server_config),
                socket,
                Arc::new(GlommioRuntime),
            )
            .unwrap();
            address_sender.send(endpoint.local_addr().unwrap()).unwrap();
            let connection = endpoint.accept().await.unwrap().await.unwrap();
            loop {
                let Ok((mut send, mut receive)) = connection.accept_bi().await else { break };
                glommio::spawn_local(async move {
                    let request = receive.read_to_end(256 << 20).await.unwrap();
                    send.write_all(&request).await.unwrap();
                    send.finish().unwrap();
                })
                .detach();
            }
            endpoint.wait_idle().await;
        });
    });
    (address_receiver.recv().unwrap(), thread)
}

#[test]
fn a_glommio_endpoint_serves_a_tokio_client() {
    let (certificate, key) = certificate();
    let (address, server) = start_server(certificate.clone(), key);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async move {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificate).unwrap();
        let crypto = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client_config =
            quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(crypto).unwrap()));
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(client_config);
        let connection = endpoint.connect(address, "localhost").unwrap().await.unwrap();

        // Many concurrent small requests.
        let mut tasks = Vec::new();
        for index in 0..200u32 {
            let connection = connection.clone();
            tasks.push(tokio::spawn(async move {
                let (mut send, mut receive) = connection.open_bi().await.unwrap();
                let request = index.to_le_bytes().repeat(1 + index as usize % 50);
                send.write_all(&request).await.unwrap();
                send.finish().unwrap();
                assert_eq!(receive.read_to_end(1 << 20).await.unwrap(), request);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // One bulk transfer.
        let bulk: Vec<u8> = (0..32u32 << 20).map(|index| (index * 7 % 251) as u8).collect();
        let (mut send, mut receive) = connection.open_bi().await.unwrap();
        let started = std::time::Instant::now();
        send.write_all(&bulk).await.unwrap();
        send.finish().unwrap();
        let echoed = receive.read_to_end(64 << 20).await.unwrap();
        eprintln!("32 MiB echoed in {:?}", started.elapsed());
        assert!(echoed == bulk, "bulk transfer came back different");
        // The glommio side sent 32 MiB: thousands of transmits, and a retry wait only after
        // a send found the socket buffer full (not before every transmit, which throttled
        // every connection to a transmit per timer tick).
        let stats = udp_send_stats();
        eprintln!("{stats:?}");
        assert!(stats.transmits > 1000, "{stats:?}");
        assert!(stats.retry_waits <= stats.blocked, "waited without a full buffer: {stats:?}");
        connection.close(0u32.into(), b"done");
        endpoint.wait_idle().await;
    });
    server.join().unwrap();
}

#[test]
fn quic_sockets_get_large_buffers() {
    let socket = bind_udp("127.0.0.1:0".parse().unwrap(), UDP_SOCKET_BUFFER_SIZE_BYTES).unwrap();
    let (receive, send) = udp_buffer_sizes(&socket).unwrap();
    // The kernel doubles what it grants and caps it at rmem_max/wmem_max (4 MiB here); the
    // default is 208 KiB.
    assert!(receive > 1 << 20 && send > 1 << 20, "receive {receive}, send {send}");
}
