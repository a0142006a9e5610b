//! [`Connection`]: QUIC connections to a node's shard endpoints, one request per stream,
//! with TLS trust configured once; and the cached metadata that makes routing shard-aware.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_buffer::{Buffer, MutableBuffer};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::sync::Mutex;

use crate::client::error::ClientError;
use crate::protocol::codec::Decoder;
use crate::protocol::error_code::ErrorBody;
use crate::protocol::frame::{
    FrameFlags, FrameHeader, ALPN_UFER_V1, FRAME_HEADER_SIZE_BYTES, RESPONSE_BODY_SIZE_MAX_BYTES,
};
use crate::protocol::messages::{
    decode_body, try_encode_frame_head, MetadataRequest, MetadataResponse, Request, TableMetadata,
    TablePath,
};

/// Which certificates a client trusts.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Exactly this certificate (DER), e.g. the embedded node's self-signed one.
    Certificate(Vec<u8>),
    /// The CA certificates in a PEM file.
    CaFile(PathBuf),
    /// The certificate a local node keeps in its data directory (`<dir>/tls/cert.der`).
    DataDir(PathBuf),
}

/// How to reach a node.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Any shard endpoint of the node.
    pub bootstrap: SocketAddr,
    /// The name the node's certificate is checked against.
    pub server_name: String,
    /// What to trust.
    pub trust: Trust,
    /// Longest wait for one answer (long-polling fetches add their own wait).
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A local node with its data directory at `data_dir`, reached at `bootstrap`.
    pub fn local(bootstrap: SocketAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            bootstrap,
            server_name: "localhost".into(),
            trust: Trust::DataDir(data_dir.into()),
            request_timeout: Duration::from_secs(30),
        }
    }
}

fn roots(trust: &Trust) -> Result<rustls::RootCertStore, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let certificates: Vec<CertificateDer<'static>> = match trust {
        Trust::Certificate(der) => vec![CertificateDer::from(der.clone())],
        Trust::DataDir(dir) => {
            let path = dir.join("tls").join("cert.der");
            let der = std::fs::read(&path).map_err(|error| {
                ClientError::Invalid(format!(
                    "reading the node certificate {}: {error}",
                    path.display()
                ))
            })?;
            vec![CertificateDer::from(der)]
        }
        Trust::CaFile(path) => read_pem(path)?,
    };
    for certificate in certificates {
        roots.add(certificate).map_err(|error| {
            ClientError::Invalid(format!("certificate not usable as a trust anchor: {error}"))
        })?;
    }
    Ok(roots)
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certificates: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|error| ClientError::Invalid(format!("reading {}: {error}", path.display())))?
        .collect();
    certificates
        .map_err(|error| ClientError::Invalid(format!("parsing {}: {error}", path.display())))
}

/// The QUIC client configuration the SDK uses: TLS 1.3 trusting `trust`, ALPN `ufer/1`,
/// no streams accepted from the node, large flow-control windows for bulk produce and fetch,
/// keep-alives. Public for tools that open their own QUIC connections next to the SDK (the
/// benchmark's raw-QUIC baseline uses exactly this).
pub fn quic_client_config(trust: &Trust) -> Result<quinn::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| ClientError::Invalid(format!("TLS: {error}")))?
        .with_root_certificates(roots(trust)?)
        .with_no_client_auth();
    crypto.alpn_protocols = vec![ALPN_UFER_V1.to_vec()];
    let crypto = QuicClientConfig::try_from(crypto)
        .map_err(|error| ClientError::Invalid(format!("QUIC TLS: {error}")))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(0u32.into());
    transport.stream_receive_window((16u32 * 1024 * 1024).into());
    transport.receive_window((128u32 * 1024 * 1024).into());
    transport.send_window(64 * 1024 * 1024);
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    client_config.transport_config(Arc::new(transport));
    Ok(client_config)
}

/// Receive and send buffer asked of the kernel for the client's UDP socket: bulk produce
/// and fetch bursts overflow the default (~200 KiB) and cost retransmissions. The kernel caps
/// it at `net.core.rmem_max` / `wmem_max`.
pub const UDP_BUFFER_SIZE_BYTES: usize = 4 * 1024 * 1024;

/// A UDP socket bound to `address` with [`UDP_BUFFER_SIZE_BYTES`] buffers (best effort).
pub fn bind_udp(address: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: a smaller buffer than asked for still works.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_SIZE_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_SIZE_BYTES);
    socket.bind(&address.into())?;
    Ok(socket.into())
}

/// Connections to one node's shards. Cheap to clone; safe to share between tasks.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: quinn::Endpoint,
    config: ClientConfig,
    connections: Mutex<HashMap<SocketAddr, quinn::Connection>>,
    metadata: Mutex<Option<Arc<MetadataResponse>>>,
    next_request_id: AtomicU32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("bootstrap", &self.inner.config.bootstrap)
            .finish_non_exhaustive()
    }
}

/// A response body and its records section (64-byte aligned, ready for zero-copy decoding).
#[derive(Debug)]
pub struct Answer<T> {
    /// The decoded fields.
    pub body: T,
    /// The records section (empty for messages without one).
    pub records: Buffer,
}

impl Connection {
    /// Sets up TLS and a client endpoint (a tokio runtime must be running). Connections
    /// are made on first use.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let bind: SocketAddr = if config.bootstrap.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" }
            .parse()
            .map_err(|error| ClientError::Invalid(format!("{error}")))?;
        let socket = bind_udp(bind).map_err(|error| ClientError::Transport {
            address: bind.to_string(),
            reason: format!("opening a UDP socket: {error}"),
        })?;
        let socket =
            quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket).map_err(|error| {
                ClientError::Transport {
                    address: bind.to_string(),
                    reason: format!("setting up the UDP socket: {error}"),
                }
            })?;
        Self::with_socket(config, socket)
    }

    /// Like [`Connection::new`], over a UDP socket the caller provides — one with its own
    /// buffers, bound to a chosen interface, or wrapped (tests use it to lose datagrams).
    pub fn with_socket(
        config: ClientConfig,
        socket: Arc<dyn quinn::AsyncUdpSocket>,
    ) -> Result<Self, ClientError> {
        let client_config = quic_client_config(&config.trust)?;
        let local = socket.local_addr().map_or_else(|_| "?".into(), |address| address.to_string());
        let mut endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|error| ClientError::Transport {
            address: local,
            reason: format!("starting the QUIC endpoint: {error}"),
        })?;
        endpoint.set_default_client_config(client_config);
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                config,
                connections: Mutex::new(HashMap::new()),
                metadata: Mutex::new(None),
                next_request_id: AtomicU32::new(1),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    async fn connection(&self, address: SocketAddr) -> Result<quinn::Connection, ClientError> {
        let mut connections = self.inner.connections.lock().await;
        if let Some(connection) = connections.get(&address) {
            if connection.close_reason().is_none() {
                return Ok(connection.clone());
            }
        }
        let transport =
            |reason: String| ClientError::Transport { address: address.to_string(), reason };
        let connecting = self
            .inner
            .endpoint
            .connect(address, &self.inner.config.server_name)
            .map_err(|error| transport(error.to_string()))?;
        let connection = tokio::time::timeout(self.inner.config.request_timeout, connecting)
            .await
            .map_err(|_| ClientError::Timeout {
                address: address.to_string(),
                timeout_ms: self.inner.config.request_timeout.as_millis() as u64,
            })?
            .map_err(|error| transport(error.to_string()))?;
        connections.insert(address, connection.clone());
        Ok(connection)
    }

    /// Sends `request` (with `records` after its fields) to `address` and waits up to the
    /// request timeout plus `extra_wait` for the answer.
    pub async fn call<R: Request>(
        &self,
        address: SocketAddr,
        request: &R,
        records: &[u8],
        extra_wait: Duration,
    ) -> Result<Answer<R::Response>, ClientError> {
        let request_id = self.inner.next_request_id.fetch_add(1, Ordering::Relaxed);
        // The head is encoded alone and the records written after it from where they are:
        // a produce's batch is not copied into a frame first.
        let head = try_encode_frame_head(
            R::API,
            FrameFlags::request(),
            request_id,
            request,
            records.len(),
        )
        .map_err(|error| ClientError::Invalid(format!("the request cannot be sent: {error}")))?;
        let timeout = self.inner.config.request_timeout + extra_wait;
        let exchange = self.exchange(address, &head, records, request_id);
        let response =
            tokio::time::timeout(timeout, exchange).await.map_err(|_| ClientError::Timeout {
                address: address.to_string(),
                timeout_ms: timeout.as_millis() as u64,
            })??;
        let body = &response.as_slice()[FRAME_HEADER_SIZE_BYTES..];
        let (body, records) = decode_body::<R::Response>(body)?;
        let records_at = response.len() - records.len();
        Ok(Answer { body, records: response.slice(records_at) })
    }

    /// Sends `frame` exactly as given (header and body, already encoded — or deliberately
    /// malformed) on a new stream to `address` and returns the answer frame, header
    /// included. For tools and tests that speak the protocol below the typed API; an error
    /// answer is `ClientError::Server`.
    pub async fn call_raw(&self, address: SocketAddr, frame: &[u8]) -> Result<Buffer, ClientError> {
        // The answer echoes the request id from the header (or 0 if it could not be read).
        let request_id = match frame.get(8..12) {
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
            _ => 0,
        };
        let timeout = self.inner.config.request_timeout;
        tokio::time::timeout(timeout, self.exchange(address, frame, &[], request_id))
            .await
            .map_err(|_| ClientError::Timeout {
                address: address.to_string(),
                timeout_ms: timeout.as_millis() as u64,
            })?
    }

    /// Writes one frame (`head`, then `records`) on a new stream and reads the answer frame
    /// into an aligned buffer.
    async fn exchange(
        &self,
        address: SocketAddr,
        head: &[u8],
        records: &[u8],
        request_id: u32,
    ) -> Result<Buffer, ClientError> {
        let transport =
            |reason: String| ClientError::Transport { address: address.to_string(), reason };
        let connection = self.connection(address).await?;
        let (mut send, mut receive) = match connection.open_bi().await {
            Ok(streams) => streams,
            Err(error) => {
                self.inner.connections.lock().await.remove(&address);
                return Err(transport(error.to_string()));
            }
        };
        let written = match send.write_all(head).await {
            Ok(()) if !records.is_empty() => send.write_all(records).await,
            other => other,
        };
        match written {
            Ok(()) => send.finish().map_err(|error| transport(error.to_string()))?,
            // The node refused the request before reading all of it (an oversize or
            // malformed frame): its answer on this stream says why.
            Err(quinn::WriteError::Stopped(_)) => {}
            Err(error) => return Err(transport(error.to_string())),
        }
        let mut header_bytes = [0u8; FRAME_HEADER_SIZE_BYTES];
        receive
            .read_exact(&mut header_bytes)
            .await
            .map_err(|error| transport(format!("reading the answer: {error}")))?;
        let header = FrameHeader::parse(&header_bytes, RESPONSE_BODY_SIZE_MAX_BYTES)?;
        if !header.frame_flags().is_response()
            || (header.request_id.get() != request_id && header.request_id.get() != 0)
        {
            return Err(ClientError::Invalid(format!(
                "answer for request {} to request {request_id}",
                header.request_id.get()
            )));
        }
        let length = FRAME_HEADER_SIZE_BYTES + header.body_length.get() as usize;
        // 64-byte aligned: the records section lands aligned for zero-copy decoding.
        let mut buffer = MutableBuffer::from_len_zeroed(length);
        buffer.as_slice_mut()[..FRAME_HEADER_SIZE_BYTES].copy_from_slice(&header_bytes);
        receive
            .read_exact(&mut buffer.as_slice_mut()[FRAME_HEADER_SIZE_BYTES..])
            .await
            .map_err(|error| transport(format!("reading the answer body: {error}")))?;
        if header.frame_flags().is_error() {
            let error = ErrorBody::decode(&mut Decoder::new(
                &buffer.as_slice()[FRAME_HEADER_SIZE_BYTES..],
            ))?;
            return Err(ClientError::Server(error));
        }
        Ok(buffer.into())
    }

    /// The node's metadata, from the cache or asked for (`refresh` forces asking).
    pub async fn metadata(&self, refresh: bool) -> Result<Arc<MetadataResponse>, ClientError> {
        if !refresh {
            if let Some(metadata) = self.inner.metadata.lock().await.clone() {
                return Ok(metadata);
            }
        }
        let answer = self
            .call(
                self.inner.config.bootstrap,
                &MetadataRequest { tables: Vec::new() },
                &[],
                Duration::ZERO,
            )
            .await?;
        let metadata = Arc::new(answer.body);
        *self.inner.metadata.lock().await = Some(metadata.clone());
        Ok(metadata)
    }

    /// The table at `path` and where its buckets are (asking again once if unknown).
    pub async fn table_metadata(&self, path: &TablePath) -> Result<TableMetadata, ClientError> {
        for refresh in [false, true] {
            let metadata = self.metadata(refresh).await?;
            if let Some(table) = metadata.tables.iter().find(|table| &table.info.path == path) {
                return Ok(table.clone());
            }
        }
        Err(ClientError::Server(ErrorBody::new(
            crate::protocol::error_code::ErrorCode::TableNotFound,
            format!("no table {path}"),
        )))
    }

    /// The endpoint of a node's shard (the bootstrap address if metadata does not know it).
    pub async fn shard_address(&self, node_id: u32, shard: u32) -> Result<SocketAddr, ClientError> {
        let metadata = self.metadata(false).await?;
        let address = metadata.nodes.iter().find(|node| node.node_id == node_id).and_then(|node| {
            let port = *node.shard_ports.get(shard as usize)?;
            format!("{}:{port}", node.host).parse::<SocketAddr>().ok()
        });
        Ok(address.unwrap_or(self.inner.config.bootstrap))
    }

    /// Where catalog changes go: shard 0 of the first node.
    pub async fn catalog_address(&self) -> Result<SocketAddr, ClientError> {
        let metadata = self.metadata(false).await?;
        match metadata.nodes.first() {
            Some(node) => self.shard_address(node.node_id, 0).await,
            None => Ok(self.inner.config.bootstrap),
        }
    }

    /// Forgets cached metadata (after a table was created or dropped).
    pub async fn invalidate_metadata(&self) {
        *self.inner.metadata.lock().await = None;
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.inner.endpoint.close(0u32.into(), b"client closing");
        self.inner.endpoint.wait_idle().await;
    }
}
