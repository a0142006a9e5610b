//! Turning a compressed batch's Arrow message into an uncompressed one in one aligned
//! allocation, with each buffer inflated into exactly the size its length prefix declares.
//!
//! Arrow's own IPC decompression reads an LZ4 frame to its end whatever size it declared,
//! so a small hostile frame could make a reader allocate gigabytes; and it leaves buffers
//! stored uncompressed 8 bytes off alignment. Here every buffer is decoded into a slot of
//! its declared size (a frame that inflates further is an error), slots start at 64-byte
//! multiples, and the result is decoded in place like any uncompressed batch.

use std::io::Read;

use arrow_buffer::{Buffer, MutableBuffer};

use crate::error::BatchError;
use crate::header::{align_to_batch, Compression};
use crate::ipc_message::{encapsulated_metadata_size, write_metadata, IpcMessage, MessageParts};

/// Length prefix value meaning "stored uncompressed".
const STORED_UNCOMPRESSED: i64 = -1;

/// The decompressed message: bytes holding prefix, metadata and body, plus the sizes a
/// decoder needs.
#[derive(Debug)]
pub struct InflatedMessage {
    /// The whole encapsulated message, 64-byte aligned.
    pub bytes: Buffer,
    /// Prefix plus padded metadata.
    pub metadata_size: usize,
    /// Body size.
    pub body_size: usize,
}

/// Decompresses `message`, whose bytes (body included) are `message_bytes`. The message
/// must have passed `check_layout` and `check_body`, which bound every range and size.
pub fn inflate(
    message: &IpcMessage<'_>,
    message_bytes: &[u8],
    compression: Compression,
) -> Result<InflatedMessage, BatchError> {
    let record_batch = &message.record_batch;
    let (Some(nodes), Some(old_buffers)) = (record_batch.nodes(), record_batch.buffers()) else {
        return Err(BatchError::BadMessage("field nodes or buffers missing".into()));
    };
    let old_body = &message_bytes[message.metadata_size..];
    let mut sources = Vec::with_capacity(old_buffers.len());
    let mut buffers = Vec::with_capacity(old_buffers.len());
    let mut body_size = 0usize;
    for buffer in old_buffers.iter() {
        let (offset, length) = (buffer.offset() as usize, buffer.length() as usize);
        let source = &old_body[offset..offset + length];
        let (declared, payload) = split_prefix(source)?;
        buffers.push(arrow_ipc::Buffer::new(body_size as i64, declared as i64));
        sources.push((declared, payload));
        body_size += align_to_batch(declared);
    }
    let nodes: Vec<arrow_ipc::FieldNode> = nodes.iter().copied().collect();
    let variadic: Vec<i64> = record_batch
        .variadicBufferCounts()
        .map(|counts| counts.iter().collect())
        .unwrap_or_default();
    let flatbuffer = MessageParts {
        length: record_batch.length(),
        nodes: &nodes,
        buffers: &buffers,
        variadic: &variadic,
        compression: None,
        body_size,
    }
    .encode();
    let metadata_size = encapsulated_metadata_size(&flatbuffer);
    let mut head = Vec::with_capacity(metadata_size);
    write_metadata(&flatbuffer, &mut head);

    let mut out = MutableBuffer::from_len_zeroed(metadata_size + body_size);
    out.as_slice_mut()[..metadata_size].copy_from_slice(&head);
    let mut zstd = None;
    for ((declared, payload), buffer) in sources.iter().zip(&buffers) {
        let start = metadata_size + buffer.offset() as usize;
        let slot = &mut out.as_slice_mut()[start..start + declared];
        match payload {
            Payload::Empty => {}
            Payload::Stored(bytes) => slot.copy_from_slice(bytes),
            Payload::Compressed(bytes) => inflate_into(compression, bytes, slot, &mut zstd)?,
        }
    }
    Ok(InflatedMessage { bytes: out.into(), metadata_size, body_size })
}

enum Payload<'a> {
    Empty,
    Stored(&'a [u8]),
    Compressed(&'a [u8]),
}

fn split_prefix(source: &[u8]) -> Result<(usize, Payload<'_>), BatchError> {
    if source.is_empty() {
        return Ok((0, Payload::Empty));
    }
    let Some((prefix, payload)) = source.split_first_chunk::<8>() else {
        return Err(BatchError::BadMessage("compressed buffer has no length prefix".into()));
    };
    match i64::from_le_bytes(*prefix) {
        STORED_UNCOMPRESSED => Ok((payload.len(), Payload::Stored(payload))),
        0 => Ok((0, Payload::Empty)),
        // Bounded in total by `check_body`.
        size if size > 0 => Ok((size as usize, Payload::Compressed(payload))),
        size => Err(BatchError::BadMessage(format!("decompressed size {size}"))),
    }
}

fn inflate_into(
    compression: Compression,
    source: &[u8],
    slot: &mut [u8],
    zstd: &mut Option<zstd::bulk::Decompressor<'static>>,
) -> Result<(), BatchError> {
    let declared = slot.len();
    let wrong_size = || {
        BatchError::BadMessage(format!(
            "a {compression:?} buffer does not inflate to its declared {declared} bytes"
        ))
    };
    match compression {
        Compression::None => return Err(BatchError::BadMessage("not compressed".into())),
        Compression::Lz4Frame => {
            let mut decoder = lz4_flex::frame::FrameDecoder::new(source);
            decoder.read_exact(slot).map_err(|_| wrong_size())?;
            let mut extra = [0u8; 1];
            if decoder.read(&mut extra).map_err(|_| wrong_size())? != 0 {
                return Err(wrong_size());
            }
        }
        Compression::Zstd => {
            if zstd.is_none() {
                let decompressor = zstd::bulk::Decompressor::new().map_err(|error| {
                    BatchError::BadMessage(format!("zstd decoder failed to start: {error}"))
                })?;
                *zstd = Some(decompressor);
            }
            let decompressor = zstd.as_mut().ok_or_else(wrong_size)?;
            let written =
                decompressor.decompress_to_buffer(source, slot).map_err(|_| wrong_size())?;
            if written != declared {
                return Err(wrong_size());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn lz4_frame(data: &[u8]) -> Vec<u8> {
        let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_frame_that_inflates_past_its_declared_size_is_refused() {
        let bomb = lz4_frame(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 8 * 1024, "a megabyte of zeros compresses to a few kilobytes");
        let mut slot = vec![0u8; 100];
        let error = inflate_into(Compression::Lz4Frame, &bomb, &mut slot, &mut None).unwrap_err();
        assert!(error.to_string().contains("declared 100 bytes"), "{error}");

        let zstd_bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 1).unwrap();
        let error = inflate_into(Compression::Zstd, &zstd_bomb, &mut slot, &mut None).unwrap_err();
        assert!(error.to_string().contains("declared 100 bytes"), "{error}");
    }

    #[test]
    fn a_frame_shorter_than_declared_is_refused_and_an_exact_one_fills_its_slot() {
        let data: Vec<u8> = (0..1000u32).map(|value| value as u8).collect();
        let frame = lz4_frame(&data);
        let mut slot = vec![0u8; 1001];
        assert!(inflate_into(Compression::Lz4Frame, &frame, &mut slot, &mut None).is_err());
        let mut slot = vec![0u8; 1000];
        inflate_into(Compression::Lz4Frame, &frame, &mut slot, &mut None).unwrap();
        assert_eq!(slot, data);
    }
}
