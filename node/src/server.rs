//! The QUIC side of a shard: accept connections, accept one bidirectional stream per
//! request, read the frame (refusing oversized or malformed ones on that stream only), hand
//! it to the handlers, write the response and finish the stream.

use std::pin::pin;
use std::rc::Rc;

use futures_util::future::{select, Either};
use ufer_wire::protocol::codec::ProtocolError;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{request_body_size_max, FrameHeader, FRAME_HEADER_SIZE_BYTES};
use ufer_wire::protocol::messages::encode_error_frame;

use crate::api::{handle, Response};
use crate::limits::REQUEST_READ_TIMEOUT;
use crate::metrics::ShardMetrics;
use crate::shard::Shard;

/// Accepts connections on `endpoint` until it is closed.
pub async fn serve(shard: Rc<Shard>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        if shard.draining.get() {
            incoming.refuse();
            continue;
        }
        let shard = shard.clone();
        glommio::spawn_local(async move {
            if let Ok(connection) = incoming.await {
                ShardMetrics::add(&shard.metrics.connections, 1);
                serve_connection(shard, connection).await;
            }
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
    let mut header_bytes = [0u8; FRAME_HEADER_SIZE_BYTES];
    if receive.read_exact(&mut header_bytes).await.is_err() {
        let error =
            ErrorBody::new(ErrorCode::MalformedRequest, "the stream ended inside the frame header");
        ShardMetrics::add(&shard.metrics.error_responses, 1);
        return refuse(send, receive, 0, 0, error).await;
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
            return refuse(
                send,
                receive,
                raw_api,
                raw_request_id,
                ErrorBody::new(code, error.to_string()),
            )
            .await;
        }
    };
    if shard.draining.get() {
        return refuse(send, receive, raw_api, raw_request_id, crate::shard::shutting_down()).await;
    }
    let body_length = header.body_length.get() as usize;
    let Ok(_memory) = shard.inflight_bytes.clone().acquire_static_permit(body_length as u64).await
    else {
        return refuse(send, receive, raw_api, raw_request_id, crate::shard::shutting_down()).await;
    };
    let mut frame = vec![0u8; FRAME_HEADER_SIZE_BYTES + body_length];
    frame[..FRAME_HEADER_SIZE_BYTES].copy_from_slice(&header_bytes);
    let read = receive.read_exact(&mut frame[FRAME_HEADER_SIZE_BYTES..]);
    let deadline = glommio::timer::sleep(REQUEST_READ_TIMEOUT);
    let outcome = match select(pin!(read), pin!(deadline)).await {
        Either::Left((Ok(()), _)) => Ok(()),
        Either::Left((Err(_), _)) => {
            Err(format!("the stream ended before the {body_length}-byte body its header announced"))
        }
        Either::Right(_) => Err(format!(
            "the {body_length}-byte body did not arrive within {} s",
            REQUEST_READ_TIMEOUT.as_secs()
        )),
    };
    if let Err(reason) = outcome {
        let error = ErrorBody::new(ErrorCode::MalformedRequest, reason);
        ShardMetrics::add(&shard.metrics.error_responses, 1);
        return refuse(send, receive, raw_api, raw_request_id, error).await;
    }
    shard.active_requests.set(shard.active_requests.get() + 1);
    let response = handle(&shard, frame).await;
    let _ = write_response(&mut send, &response).await;
    let _ = send.finish();
    shard.active_requests.set(shard.active_requests.get() - 1);
    shard.request_finished.notify_all();
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
