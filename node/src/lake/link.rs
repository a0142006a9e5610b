//! The link between the tiering thread and the shards: requests the tiering thread sends to
//! the shard that owns a bucket, and the shard's side of them.
//!
//! The tiering thread is not in the shards' channel mesh (it is not a shard); each shard
//! has a bounded channel of [`TierRequest`]s and answers on one-shot channels, which wake a
//! parked executor of either side. A shard reads for the tiering thread exactly what a
//! fetch would read (durable records only, direct I/O, at least one whole batch), so a
//! lake table never holds a record a consumer could not have seen.

use std::rc::Rc;

use arrow_buffer::{Buffer, MutableBuffer};
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use ufer_shard::{ReadError, ReadRequest};
use ufer_wire::protocol::error_code::ErrorBody;

use crate::error::read_error;
use crate::shard::Shard;

/// A request from the tiering thread to the shard owning a bucket.
#[derive(Debug)]
pub enum TierRequest {
    /// Read the bucket's durable records from `offset`, up to `max_bytes` (at least one
    /// whole batch).
    Read {
        /// Table.
        table_id: u64,
        /// Bucket.
        bucket: u32,
        /// First offset wanted.
        offset: u64,
        /// Most bytes of batches.
        max_bytes: usize,
        /// The answer.
        reply: oneshot::Sender<Result<TierRead, ErrorBody>>,
    },
    /// The lake holds the bucket's records below `offset`: retention may delete segments
    /// entirely below it, and status answers show it.
    Tiered {
        /// Table.
        table_id: u64,
        /// Bucket.
        bucket: u32,
        /// Records below it are in the lake.
        offset: u64,
    },
}

/// What a shard read for the tiering thread.
#[derive(Debug)]
pub struct TierRead {
    /// Whole batches, back to back, in an aligned buffer (decoded in place).
    pub records: Buffer,
    /// The bucket's high watermark when read.
    pub high_watermark: u64,
    /// The bucket's earliest offset when read.
    pub log_start_offset: u64,
}

/// The channel pair of one shard. Unbounded, but the tiering thread has at most one read
/// outstanding and sends one `Tiered` note per bucket per commit.
pub fn tier_channel() -> (mpsc::UnboundedSender<TierRequest>, mpsc::UnboundedReceiver<TierRequest>)
{
    mpsc::unbounded()
}

/// Answers the tiering thread's requests until it hangs up (runs on the shard).
pub async fn serve_tier_requests(
    shard: Rc<Shard>,
    mut requests: mpsc::UnboundedReceiver<TierRequest>,
) {
    while let Some(request) = requests.next().await {
        match request {
            TierRequest::Read { table_id, bucket, offset, max_bytes, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(read(&shard, table_id, bucket, offset, max_bytes).await);
                })
                .detach();
            }
            TierRequest::Tiered { table_id, bucket, offset } => {
                shard.note_tiered(table_id, bucket, offset);
            }
        }
    }
}

async fn read(
    shard: &Shard,
    table_id: u64,
    bucket: u32,
    offset: u64,
    max_bytes: usize,
) -> Result<TierRead, ErrorBody> {
    let table = shard.table(table_id)?;
    let tablet = shard.tablet(&table, bucket).await?;
    let read = match tablet.read(ReadRequest::new(offset, max_bytes.max(1))).await {
        Ok(read) => read,
        // Retention deleted records before they were tiered (the table was not lake-enabled
        // then, or a node started without knowing): say where the log starts now.
        Err(ReadError::OffsetOutOfRange { earliest, .. }) if offset < earliest => {
            return Ok(TierRead {
                records: Buffer::from_vec(Vec::<u8>::new()),
                high_watermark: tablet.high_watermark(),
                log_start_offset: earliest,
            })
        }
        Err(error) => return Err(read_error(&error)),
    };
    let length = read.chunks.iter().map(|chunk| chunk.as_bytes().len()).sum();
    let mut records = MutableBuffer::with_capacity(length);
    for chunk in &read.chunks {
        records.extend_from_slice(chunk.as_bytes());
    }
    Ok(TierRead {
        records: records.into(),
        high_watermark: read.high_watermark,
        log_start_offset: read.log_start_offset,
    })
}
