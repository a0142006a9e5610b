//! The QUIC side of a shard: accept connections, accept one bidirectional stream per
//! request, read the frame (refusing oversized or malformed ones on that stream only), hand
//! it to the handlers, write the response and finish the stream.
//!
//! A request's body counts against the shard's in-flight budget as its bytes arrive (read in
//! chunks of at most [`REQUEST_READ_CHUNK_BYTES`], each counted once it is here), and its
//! buffer grows with them; a stream whose frame is not whole within the node's
//! `request_read_timeout` of its start is answered with an error and gives back what it held
//! — so a client that announces large bodies and stalls holds only what it sent (which
//! quinn's flow control bounds per connection), and delays no other request for longer than
//! the timeout.

use std::pin::pin;
use std::rc::Rc;

use futures_util::future::{select, Either};
use ufer_wire::protocol::codec::ProtocolError;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{request_body_size_max, FrameHeader, FRAME_HEADER_SIZE_BYTES};
use ufer_wire::protocol::messages::encode_error_frame;

use crate::api::{handle, Response};
use crate::limits::REQUEST_READ_CHUNK_BYTES;
use crate::metrics::ShardMetrics;
use crate::shard::Shard;

/// Accepts connections on `endpoint` until it is closed, at most the node's
/// `connections_per_shard_max` at once: more are refused (the client may try another time),
/// so connections cannot take a shard's memory without bound.
pub async fn serve(shard: Rc<Shard>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let full = shard.open_connections.get() >= shard.config.connections_per_shard_max;
        if shard.draining.get() || full {
            incoming.refuse();
            continue;
        }
        shard.open_connections.set(shard.open_connections.get() + 1);
        let shard = shard.clone();
        glommio::spawn_local(async move {
            if let Ok(connection) = incoming.await {
                ShardMetrics::add(&shard.metrics.connections, 1);
                serve_connection(shard.clone(), connection).await;
            }
            shard.open_connections.set(shard.open_connections.get() - 1);
        })
        .detach();
    }
}

async fn serve_connection(shard: Rc<Shard>, connection: quinn::Connection) {
    while let Ok((send, receive)) = connection.accept_bi().await {
        let shard = shard.clone();
        glommio::spawn_local(async move { serve_stream(shard, send, receive).await }).detach();
    }
}

/// Writes an error frame and finishes the stream, and stops reading what the client sends.
async fn refuse(
    mut send: quinn::SendStream,
    mut receive: quinn::RecvStream,
    api_key: u16,
    request_id: u32,
    error: ErrorBody,
) {
    let _ = receive.stop(0u32.into());
    let _ = send.write_all(&encode_error_frame(api_key, request_id, &error)).await;
    let _ = send.finish();
}

async fn serve_stream(
    shard: Rc<Shard>,
    mut send: quinn::SendStream,
    mut receive: quinn::RecvStream,
) {
    ShardMetrics::add(&shard.metrics.requests, 1);
    let timeout = shard.config.request_read_timeout;
    let outcome = {
        let read = read_frame(&shard, &mut receive);
        match select(pin!(read), pin!(glommio::timer::sleep(timeout))).await {
            Either::Left((read, _)) => read,
            Either::Right(_) => {
                let error = ErrorBody::new(
                    ErrorCode::MalformedRequest,
                    format!("the request did not arrive within {} ms", timeout.as_millis()),
                );
                ShardMetrics::add(&shard.metrics.error_responses, 1);
                Err(Refusal { api_key: 0, request_id: 0, error })
            }
        }
    };
    let frame = match outcome {
        Ok(frame) => frame,
        Err(refusal) => {
            return refuse(send, receive, refusal.api_key, refusal.request_id, refusal.error).await;
        }
    };
    shard.active_requests.set(shard.active_requests.get() + 1);
    let response = handle(&shard, frame.bytes).await;
    drop(frame.memory);
    let _ = write_response(&mut send, &response).await;
    let _ = send.finish();
    shard.active_requests.set(shard.active_requests.get() - 1);
    shard.request_finished.notify_all();
}

/// A request frame read whole, and the in-flight memory it holds.
struct ReadFrame {
    bytes: Vec<u8>,
    memory: InflightBytes,
}

/// Why a stream's request is refused before it is handled.
struct Refusal {
    api_key: u16,
    request_id: u32,
    error: ErrorBody,
}

/// Bytes of the shard's in-flight budget a request holds; given back when dropped.
struct InflightBytes {
    budget: Rc<glommio::sync::Semaphore>,
    held: u64,
}

impl Drop for InflightBytes {
    fn drop(&mut self) {
        self.budget.signal(self.held);
    }
}

/// Reads one request frame: its header, then its body in chunks, each counted against the
/// shard's in-flight budget as it arrives (a header announcing a large body holds nothing
/// until the body comes).
async fn read_frame(shard: &Shard, receive: &mut quinn::RecvStream) -> Result<ReadFrame, Refusal> {
    let refusal = |api_key, request_id, error| Refusal { api_key, request_id, error };
    let mut header_bytes = [0u8; FRAME_HEADER_SIZE_BYTES];
    if receive.read_exact(&mut header_bytes).await.is_err() {
        let error =
            ErrorBody::new(ErrorCode::MalformedRequest, "the stream ended inside the frame header");
        ShardMetrics::add(&shard.metrics.error_responses, 1);
        return Err(refusal(0, 0, error));
    }
    let raw_api = u16::from_le_bytes([header_bytes[0], header_bytes[1]]);
    let raw_request_id =
        u32::from_le_bytes([header_bytes[8], header_bytes[9], header_bytes[10], header_bytes[11]]);
    let header = match FrameHeader::parse(&header_bytes, request_body_size_max(raw_api)) {
        Ok(header) => header,
        Err(error) => {
            let code = match error {
                ProtocolError::TooLarge { .. } => ErrorCode::FrameTooLarge,
                _ => ErrorCode::MalformedRequest,
            };
            ShardMetrics::add(&shard.metrics.error_responses, 1);
            return Err(refusal(raw_api, raw_request_id, ErrorBody::new(code, error.to_string())));
        }
    };
    if shard.draining.get() {
        return Err(refusal(raw_api, raw_request_id, crate::shard::shutting_down()));
    }
    let body_length = header.body_length.get() as usize;
    let total = FRAME_HEADER_SIZE_BYTES + body_length;
    let mut memory = InflightBytes { budget: shard.inflight_bytes.clone(), held: 0 };
    // Grown as bytes arrive (nothing is reserved for what a header only announces), each
    // chunk counted against the budget once it is here.
    let mut bytes = header_bytes.to_vec();
    while bytes.len() < total {
        let want = (total - bytes.len()).min(REQUEST_READ_CHUNK_BYTES);
        let chunk = match receive.read_chunk(want, true).await {
            Ok(Some(chunk)) => chunk.bytes,
            Ok(None) | Err(_) => {
                let reason = format!(
                    "the stream ended before the {body_length}-byte body its header announced"
                );
                ShardMetrics::add(&shard.metrics.error_responses, 1);
                let error = ErrorBody::new(ErrorCode::MalformedRequest, reason);
                return Err(refusal(raw_api, raw_request_id, error));
            }
        };
        if memory.budget.acquire(chunk.len() as u64).await.is_err() {
            return Err(refusal(raw_api, raw_request_id, crate::shard::shutting_down()));
        }
        memory.held += chunk.len() as u64;
        bytes.extend_from_slice(&chunk);
    }
    Ok(ReadFrame { bytes, memory })
}

async fn write_response(
    send: &mut quinn::SendStream,
    response: &Response,
) -> Result<(), quinn::WriteError> {
    match response {
        Response::Frame(frame) => send.write_all(frame).await,
        Response::Records { head, chunks } => {
            send.write_all(head).await?;
            for chunk in chunks {
                send.write_all(chunk.as_bytes()).await?;
            }
            Ok(())
        }
    }
}
