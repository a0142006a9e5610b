//! A measuring session: what the measurements of one run share — the run's options, the SDK
//! connection to the node under load, the raw QUIC client beside it and the disk probe.

use ufer_wire::client::Connection;

use crate::disk_probe::DiskProbe;
use crate::options::GlobalOptions;
use crate::raw_quic::RawClient;

/// What the measurements of a session share.
#[derive(Debug)]
pub struct Session<'a> {
    /// The options of the run.
    pub options: &'a GlobalOptions,
    /// The SDK's connection to the node.
    pub connection: Connection,
    /// The transport alone, to the raw endpoints beside an embedded node.
    pub raw: Option<RawClient>,
    /// The disk's own limit.
    pub disk: DiskProbe,
}
