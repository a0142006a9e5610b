//! What can stop a benchmark run.

/// A benchmark failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The node could not start or stop.
    #[error("node: {0}")]
    Node(#[from] ufer_node::NodeError),
    /// A client call failed.
    #[error("client: {0}")]
    Client(#[from] ufer_wire::client::ClientError),
    /// An I/O failure (child process, sockets, files).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A QUIC connection failed.
    #[error("QUIC: {0}")]
    Quic(String),
    /// Arrow refused the rows.
    #[error("rows: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// JSON in or out.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// An address did not parse.
    #[error("address: {0}")]
    Address(#[from] std::net::AddrParseError),
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl From<quinn::ConnectError> for BenchError {
    fn from(error: quinn::ConnectError) -> Self {
        Self::Quic(error.to_string())
    }
}

impl From<quinn::ConnectionError> for BenchError {
    fn from(error: quinn::ConnectionError) -> Self {
        Self::Quic(error.to_string())
    }
}

impl From<quinn::WriteError> for BenchError {
    fn from(error: quinn::WriteError) -> Self {
        Self::Quic(error.to_string())
    }
}

impl From<quinn::ReadExactError> for BenchError {
    fn from(error: quinn::ReadExactError) -> Self {
        Self::Quic(error.to_string())
    }
}

impl From<quinn::ReadToEndError> for BenchError {
    fn from(error: quinn::ReadToEndError) -> Self {
        Self::Quic(error.to_string())
    }
}

impl From<quinn::ClosedStream> for BenchError {
    fn from(error: quinn::ClosedStream) -> Self {
        Self::Quic(error.to_string())
    }
}
