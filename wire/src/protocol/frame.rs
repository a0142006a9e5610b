//! The frame: a fixed 16-byte header in front of every request and response body.
//!
//! One request per QUIC bidirectional stream: the client writes one request frame and
//! finishes its side; the server answers with one response frame and finishes. The header
//! carries the API and its version, flags (response, error), a request id the client chose
//! (echoed back, for tracing), and the body length, which is checked against limits before
//! a byte of the body is read.

use core::mem::size_of;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::protocol::codec::ProtocolError;

/// Size of [`FrameHeader`].
pub const FRAME_HEADER_SIZE_BYTES: usize = size_of::<FrameHeader>();

/// Largest request body the node reads (a produce of the largest batch, with room).
pub const REQUEST_BODY_SIZE_MAX_BYTES: u32 = 80 * 1024 * 1024;

/// Largest request body of an API without a records section (names, bucket lists): far
/// below [`REQUEST_BODY_SIZE_MAX_BYTES`] because decoded lists and strings take up to ~12x
/// their encoded size in memory.
pub const REQUEST_FIELDS_SIZE_MAX_BYTES: u32 = 1024 * 1024;

/// Largest request body the node reads for the raw API number `api_key`: produce, upsert
/// and lookup carry a batch, everything else only fields.
pub fn request_body_size_max(api_key: u16) -> u32 {
    let carries_batch =
        [ApiKey::Produce, ApiKey::Upsert, ApiKey::Lookup].iter().any(|api| *api as u16 == api_key);
    if carries_batch {
        REQUEST_BODY_SIZE_MAX_BYTES
    } else {
        REQUEST_FIELDS_SIZE_MAX_BYTES
    }
}

/// Largest response body a client reads (a fetch of at most this many bytes of records).
pub const RESPONSE_BODY_SIZE_MAX_BYTES: u32 = 128 * 1024 * 1024;

/// ALPN of the protocol; the node refuses other protocols.
pub const ALPN_UFER_V1: &[u8] = b"ufer/1";

/// The header of every frame.
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq,
)]
#[repr(C)]
pub struct FrameHeader {
    /// Which API ([`ApiKey`]).
    pub api_key: U16,
    /// Version of that API's messages.
    pub api_version: U16,
    /// [`FrameFlags`].
    pub flags: U16,
    /// Zero.
    pub reserved: U16,
    /// Chosen by the client, echoed in the response.
    pub request_id: U32,
    /// Bytes of body after the header.
    pub body_length: U32,
}

const _: () = assert!(size_of::<FrameHeader>() == 16);
const _: () = assert!(REQUEST_BODY_SIZE_MAX_BYTES > crate::limits::BATCH_SIZE_MAX_BYTES);

/// Flag bits of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameFlags(pub u16);

impl FrameFlags {
    /// The frame is a response.
    pub const RESPONSE: u16 = 0b01;
    /// The frame is an error response: the body is an `ErrorBody`.
    pub const ERROR: u16 = 0b10;
    const KNOWN: u16 = Self::RESPONSE | Self::ERROR;

    /// A request.
    pub const fn request() -> Self {
        Self(0)
    }

    /// A successful response.
    pub const fn response() -> Self {
        Self(Self::RESPONSE)
    }

    /// An error response.
    pub const fn error() -> Self {
        Self(Self::RESPONSE | Self::ERROR)
    }

    /// True for responses.
    pub fn is_response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }

    /// True for error responses.
    pub fn is_error(self) -> bool {
        self.0 & Self::ERROR != 0
    }
}

/// The APIs, each with the version of its messages this build speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ApiKey {
    /// Create a database.
    CreateDatabase = 1,
    /// Drop a database.
    DropDatabase = 2,
    /// List databases.
    ListDatabases = 3,
    /// Create a table.
    CreateTable = 4,
    /// Drop a table.
    DropTable = 5,
    /// List the tables of a database.
    ListTables = 6,
    /// Describe a table and its buckets.
    DescribeTable = 7,
    /// Where each bucket lives: node and shard endpoint.
    Metadata = 8,
    /// Get an idempotent writer id.
    InitWriter = 9,
    /// Append batches to a bucket.
    Produce = 10,
    /// Read batches from buckets.
    Fetch = 11,
    /// Look up offsets by position or time.
    ListOffsets = 12,
    /// Upsert and delete rows of a primary-key table.
    Upsert = 13,
    /// Look up rows of a primary-key table by key or key prefix.
    Lookup = 14,
    /// Read a primary-key table's bucket as a consistent snapshot.
    SnapshotScan = 15,
}

impl ApiKey {
    /// Every API.
    pub const ALL: [ApiKey; 15] = [
        ApiKey::CreateDatabase,
        ApiKey::DropDatabase,
        ApiKey::ListDatabases,
        ApiKey::CreateTable,
        ApiKey::DropTable,
        ApiKey::ListTables,
        ApiKey::DescribeTable,
        ApiKey::Metadata,
        ApiKey::InitWriter,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Upsert,
        ApiKey::Lookup,
        ApiKey::SnapshotScan,
    ];

    /// The API with this number.
    pub fn from_u16(value: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|key| *key as u16 == value)
    }

    /// The message version this build speaks for the API.
    pub fn version(self) -> u16 {
        1
    }
}

impl FrameHeader {
    /// A header for `api` with `flags`.
    pub fn new(api: ApiKey, flags: FrameFlags, request_id: u32, body_length: u32) -> Self {
        Self {
            api_key: (api as u16).into(),
            api_version: api.version().into(),
            flags: flags.0.into(),
            reserved: 0.into(),
            request_id: request_id.into(),
            body_length: body_length.into(),
        }
    }

    /// Reads and checks a header: known flags, reserved zero, body within `body_max_bytes`.
    /// The API key is returned raw so the caller can answer an unknown one with an error.
    pub fn parse(bytes: &[u8], body_max_bytes: u32) -> Result<Self, ProtocolError> {
        let Ok((header, _)) = FrameHeader::read_from_prefix(bytes) else {
            return Err(ProtocolError::Truncated {
                what: "frame header",
                needed: FRAME_HEADER_SIZE_BYTES,
                available: bytes.len(),
            });
        };
        if header.flags.get() & !FrameFlags::KNOWN != 0 || header.reserved.get() != 0 {
            return Err(ProtocolError::Invalid {
                what: "frame header",
                reason: format!("unknown flags {:#06x} or reserved bits set", header.flags.get()),
            });
        }
        if header.body_length.get() > body_max_bytes {
            return Err(ProtocolError::TooLarge {
                what: "frame body",
                size: u64::from(header.body_length.get()),
                limit: u64::from(body_max_bytes),
            });
        }
        Ok(header)
    }

    /// The flags.
    pub fn frame_flags(&self) -> FrameFlags {
        FrameFlags(self.flags.get())
    }

    /// The bytes of the header.
    pub fn to_bytes(&self) -> [u8; FRAME_HEADER_SIZE_BYTES] {
        let mut out = [0u8; FRAME_HEADER_SIZE_BYTES];
        out.copy_from_slice(self.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_bad_ones_are_refused() {
        let header = FrameHeader::new(ApiKey::Fetch, FrameFlags::response(), 77, 1234);
        let parsed = FrameHeader::parse(&header.to_bytes(), 2000).unwrap();
        assert_eq!(parsed, header);
        assert!(parsed.frame_flags().is_response() && !parsed.frame_flags().is_error());
        assert_eq!(ApiKey::from_u16(parsed.api_key.get()), Some(ApiKey::Fetch));
        assert!(
            matches!(
                FrameHeader::parse(&header.to_bytes(), 1000),
                Err(ProtocolError::TooLarge { size: 1234, limit: 1000, .. })
            ),
            "over the body limit"
        );
        assert!(FrameHeader::parse(&header.to_bytes()[..15], 2000).is_err());
        let mut bad = header.to_bytes();
        bad[4] = 0x80;
        assert!(FrameHeader::parse(&bad, 2000).is_err(), "unknown flag");
        assert_eq!(ApiKey::from_u16(0), None);
        assert_eq!(ApiKey::from_u16(16), None);
        assert!(ApiKey::ALL.iter().enumerate().all(|(index, api)| *api as usize == index + 1));
    }
}
