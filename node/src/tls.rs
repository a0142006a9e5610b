//! The node's TLS identity: a self-signed certificate generated on first start and kept in
//! `<data_dir>/tls/` (`cert.der`, `cert.pem`, `key.der`), so clients on the same machine can
//! pin it; and the QUIC server configuration (TLS 1.3, ALPN `ufer/1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use ufer_wire::protocol::frame::ALPN_UFER_V1;

use crate::error::NodeError;
use crate::limits::STREAMS_PER_CONNECTION_MAX;

/// A certificate and its key.
#[derive(Debug)]
pub struct NodeIdentity {
    /// DER certificate.
    pub certificate: CertificateDer<'static>,
    /// DER PKCS#8 key.
    pub key: PrivateKeyDer<'static>,
}

/// Where the certificate a client should trust lives for a data directory.
pub fn certificate_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("cert.der")
}

/// Loads the identity from the data directory, generating it on first start for
/// `localhost`, `127.0.0.1`, `::1` and `host`.
pub fn load_or_create(data_dir: &Path, host: &str) -> Result<NodeIdentity, NodeError> {
    let dir = data_dir.join("tls");
    let (cert_path, key_path) = (dir.join("cert.der"), dir.join("key.der"));
    let io = |what: &str, path: &Path, error: std::io::Error| {
        NodeError::Startup(format!("{what} {}: {error}", path.display()))
    };
    if cert_path.exists() && key_path.exists() {
        let certificate =
            std::fs::read(&cert_path).map_err(|error| io("reading", &cert_path, error))?;
        let key = std::fs::read(&key_path).map_err(|error| io("reading", &key_path, error))?;
        return Ok(NodeIdentity {
            certificate: CertificateDer::from(certificate),
            key: PrivatePkcs8KeyDer::from(key).into(),
        });
    }
    std::fs::create_dir_all(&dir).map_err(|error| io("creating", &dir, error))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !names.iter().any(|name| name == host) {
        names.push(host.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|error| NodeError::Startup(format!("generating a certificate: {error}")))?;
    let key = certified.key_pair.serialize_der();
    // Key first, certificate last: a crash in between leaves no certificate, and the next
    // start generates both again.
    write_private(&key_path, &key).map_err(|error| io("writing", &key_path, error))?;
    std::fs::write(dir.join("cert.pem"), certified.cert.pem())
        .map_err(|error| io("writing", &dir, error))?;
    std::fs::write(&cert_path, certified.cert.der())
        .map_err(|error| io("writing", &cert_path, error))?;
    Ok(NodeIdentity {
        certificate: certified.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key).into(),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The QUIC server configuration: TLS 1.3 only, ALPN `ufer/1`, many concurrent streams.
pub fn server_config(identity: &NodeIdentity) -> Result<quinn::ServerConfig, NodeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| NodeError::Startup(format!("TLS: {error}")))?
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate.clone()], identity.key.clone_key())
        .map_err(|error| NodeError::Startup(format!("TLS certificate: {error}")))?;
    tls.alpn_protocols = vec![ALPN_UFER_V1.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|error| NodeError::Startup(format!("QUIC TLS: {error}")))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(STREAMS_PER_CONNECTION_MAX.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.stream_receive_window((16u32 * 1024 * 1024).into());
    transport.receive_window((64u32 * 1024 * 1024).into());
    transport.send_window(64 * 1024 * 1024);
    config.transport_config(Arc::new(transport));
    Ok(config)
}
