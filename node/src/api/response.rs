//! What a request's answer is made of: a whole frame, or (fetch) a frame head followed by
//! record chunks read straight from the log; and the small pieces every API uses to build
//! one (the reply frame, the error for a body that does not decode).

use ufer_shard::ReadChunk;
use ufer_wire::protocol::codec::ProtocolError;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{ApiKey, FrameFlags, FrameHeader};
use ufer_wire::protocol::messages::{encode_frame, Body};

/// Bytes of a fetch answer: read on this shard, or copied from another shard's answer.
#[derive(Debug)]
pub enum RecordChunk {
    /// Read on this shard.
    Local(ReadChunk),
    /// Copied from another shard's answer.
    Remote(Vec<u8>),
}

impl RecordChunk {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RecordChunk::Local(chunk) => chunk.as_bytes(),
            RecordChunk::Remote(bytes) => bytes,
        }
    }
}

/// A response: one frame, or a frame head followed by records (fetch).
#[derive(Debug)]
pub enum Response {
    /// A whole frame.
    Frame(Vec<u8>),
    /// A frame head, then these chunks as its records section.
    Records {
        /// Header and fields.
        head: Vec<u8>,
        /// The records section, in order.
        chunks: Vec<RecordChunk>,
    },
}

impl Response {
    /// The whole response as one byte string (for forwarding between shards).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Response::Frame(frame) => frame,
            Response::Records { mut head, chunks } => {
                for chunk in &chunks {
                    head.extend_from_slice(chunk.as_bytes());
                }
                head
            }
        }
    }

    /// True for an error frame.
    pub fn is_error(&self) -> bool {
        let head = match self {
            Response::Frame(frame) => frame,
            Response::Records { head, .. } => head,
        };
        FrameHeader::parse(head, u32::MAX).is_ok_and(|header| header.frame_flags().is_error())
    }
}

/// The error for a body that does not decode.
pub fn malformed(error: ProtocolError) -> ErrorBody {
    ErrorBody::new(ErrorCode::MalformedRequest, error.to_string())
}

/// A response frame carrying `body` and `records` (empty for none).
pub fn reply<B: Body>(api: ApiKey, request_id: u32, body: &B, records: &[u8]) -> Response {
    Response::Frame(encode_frame(api, FrameFlags::response(), request_id, body, records))
}
