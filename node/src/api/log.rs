//! The APIs of log tables: produce (append one batch to a bucket), fetch (read batches of
//! several buckets from offsets, projected, long-polling for data) and list offsets
//! (earliest, latest, or by time).
//!
//! Fetch and list offsets may name buckets that several shards own: they are scattered
//! over the owners ([`scatter`]). Produce names one bucket and is forwarded whole to its
//! owner. Nothing is acknowledged with `acks=all` before it is durable.

use std::rc::Rc;
use std::time::Duration;

use futures_util::future::{join_all, select_all};
use ufer_shard::{OffsetSpec, ReadRequest};
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{ApiKey, FrameFlags, FRAME_HEADER_SIZE_BYTES};
use ufer_wire::protocol::messages::*;
use ufer_wire::Projection;

use crate::api::records::{batch_error, one_batch};
use crate::api::response::{malformed, reply, RecordChunk, Response};
use crate::api::scatter::{forward_part, scatter};
use crate::error::{append_error, read_error};
use crate::limits::REQUEST_BUCKET_COUNT_MAX;
use crate::metrics::ShardMetrics;
use crate::shard::Shard;
use crate::table::ResolvedTable;

/// Handles a produce: one batch appended to one bucket, answered per `acks`.
pub async fn produce(
    shard: &Rc<Shard>,
    request_id: u32,
    mut frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    let (request, records_len) = {
        let (request, records) =
            decode_body::<ProduceRequest>(&frame[FRAME_HEADER_SIZE_BYTES..]).map_err(malformed)?;
        (request, records.len())
    };
    let table = shard.table(request.table_id)?;
    table.check_bucket(request.bucket)?;
    if table.primary_key.is_some() {
        return Err(ErrorBody::new(
            ErrorCode::WrongTableKind,
            format!(
                "table {} has a primary key: write it with upsert (its log is the changelog)",
                table.info.path
            ),
        ));
    }
    let owner = shard.owner_of(request.table_id, request.bucket);
    if owner != shard.id {
        return Ok(Response::Frame(shard.forward(owner, frame).await?));
    }
    let records_start = frame.len() - records_len;
    {
        let batch = one_batch(&frame[records_start..], "a produce request")?;
        batch.check_schema(&table.schema).map_err(batch_error)?;
        shard.check_writer(batch.header().writer_id.get())?;
    }
    let tablet = shard.tablet(&table, request.bucket).await?;
    let appended = tablet
        .append(&mut frame[records_start..], &table.schema)
        .await
        .map_err(|error| append_error(&error))?;
    if appended.duplicate {
        ShardMetrics::add(&shard.metrics.duplicate_batches, 1);
    } else {
        ShardMetrics::add(&shard.metrics.produced_batches, 1);
        ShardMetrics::add(&shard.metrics.produced_bytes, records_len as u64);
    }
    match request.acks {
        Acks::All => tablet.wait_durable(&appended).await.map_err(|error| append_error(&error))?,
        Acks::Leader | Acks::None => {
            // Answer now; make it durable (and readable) in the background.
            let tablet = tablet.clone();
            glommio::spawn_local(async move {
                let _ = tablet.wait_durable(&appended).await;
            })
            .detach();
        }
    }
    let response = ProduceResponse {
        base_offset: appended.base_offset,
        last_offset: appended.last_offset,
        commit_timestamp: appended.commit_timestamp,
        high_watermark: tablet.high_watermark(),
        duplicate: appended.duplicate,
    };
    Ok(reply(ApiKey::Produce, request_id, &response, &[]))
}

/// One bucket's part of a fetch answer.
type FetchedPart = (FetchedBucket, Vec<RecordChunk>);

/// Handles a fetch: each bucket read by its owner, the answers in the request's order.
pub async fn fetch(
    shard: &Rc<Shard>,
    request_id: u32,
    frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    let (request, _) =
        decode_body::<FetchRequest>(&frame[FRAME_HEADER_SIZE_BYTES..]).map_err(malformed)?;
    let request = within_limits(request, shard.config.fetch_size_max_bytes)?;
    let table = shard.table(request.table_id)?;
    let projection = match &request.projection {
        None => None,
        Some(columns) => {
            let columns: Vec<usize> = columns.iter().map(|column| *column as usize).collect();
            let projection = Projection::new(table.schema.clone(), &columns)
                .map_err(|error| ErrorBody::new(ErrorCode::InvalidRequest, error.to_string()))?;
            Some(projection)
        }
    };
    let buckets: Vec<u32> = request.buckets.iter().map(|bucket| bucket.bucket).collect();
    // The answer's byte limit is shared among the shards answering parts of it, so the
    // parts together keep to it (each still returns at least one batch).
    let mut request = request;
    let owners: std::collections::BTreeSet<usize> =
        buckets.iter().map(|bucket| shard.owner_of(request.table_id, *bucket)).collect();
    request.max_bytes = (request.max_bytes / owners.len().max(1) as u32).max(1);
    let request = &request;
    let local =
        |positions: Vec<usize>| fetch_local(shard, &table, request, projection.as_ref(), positions);
    let remote = |owner: usize, positions: Vec<usize>| async move {
        let part = FetchRequest {
            buckets: positions.iter().map(|position| request.buckets[*position].clone()).collect(),
            ..request.clone()
        };
        let (answer, mut records) =
            forward_part::<_, FetchResponse>(shard, owner, ApiKey::Fetch, request_id, &part)
                .await?;
        let mut parts = Vec::with_capacity(answer.buckets.len());
        for bucket in answer.buckets {
            let length = (bucket.records_length as usize).min(records.len());
            let chunk: Vec<u8> = records.drain(..length).collect();
            parts.push((bucket, vec![RecordChunk::Remote(chunk)]));
        }
        Ok(parts)
    };
    let parts = scatter(shard, request.table_id, &buckets, local, remote).await?;
    let mut fetched = Vec::with_capacity(parts.len());
    let mut chunks = Vec::new();
    for (bucket, bucket_chunks) in parts {
        fetched.push(bucket);
        chunks.extend(bucket_chunks);
    }
    let records_length: usize = chunks.iter().map(|chunk| chunk.as_bytes().len()).sum();
    ShardMetrics::add(&shard.metrics.fetched_bytes, records_length as u64);
    let head = encode_frame_head(
        ApiKey::Fetch,
        FrameFlags::response(),
        request_id,
        &FetchResponse { buckets: fetched },
        records_length,
    );
    Ok(Response::Records { head, chunks })
}

/// `request` as the node answers it: at most [`REQUEST_BUCKET_COUNT_MAX`] buckets, each
/// once; its byte limits (the whole answer's and each bucket's) lowered to `size_max_bytes`.
fn within_limits(
    mut request: FetchRequest,
    size_max_bytes: u32,
) -> Result<FetchRequest, ErrorBody> {
    let invalid = |message: String| ErrorBody::new(ErrorCode::InvalidRequest, message);
    if request.buckets.len() > REQUEST_BUCKET_COUNT_MAX {
        return Err(invalid(format!("at most {REQUEST_BUCKET_COUNT_MAX} buckets per fetch")));
    }
    let mut seen = std::collections::HashSet::with_capacity(request.buckets.len());
    for bucket in &mut request.buckets {
        if !seen.insert(bucket.bucket) {
            return Err(invalid(format!("bucket {} is listed twice", bucket.bucket)));
        }
        bucket.max_bytes = bucket.max_bytes.min(size_max_bytes);
    }
    request.max_bytes = request.max_bytes.min(size_max_bytes);
    Ok(request)
}

/// Reads the buckets at `positions` of `request` (all owned here), long-polling if fewer
/// than `min_bytes` are ready.
async fn fetch_local(
    shard: &Rc<Shard>,
    table: &ResolvedTable,
    request: &FetchRequest,
    projection: Option<&Projection>,
    positions: Vec<usize>,
) -> Vec<FetchedPart> {
    let positions = positions.as_slice();
    let mut answers = read_buckets(shard, table, request, projection, positions).await;
    let ready: usize = answers.iter().map(|(bucket, _)| bucket.records_length as usize).sum();
    let wait =
        Duration::from_millis(u64::from(request.max_wait_ms)).min(shard.config.fetch_wait_max);
    if ready >= request.min_bytes.max(1) as usize || wait.is_zero() || positions.is_empty() {
        return answers;
    }
    let mut waits = Vec::new();
    for position in positions {
        let bucket = &request.buckets[*position];
        if let Ok(tablet) = shard.tablet(table, bucket.bucket).await {
            let offset = bucket.offset;
            waits.push(Box::pin(async move { tablet.wait_for_data(offset, wait).await }));
        }
    }
    if !waits.is_empty() && !shard.draining.get() {
        // A shutdown answers long polls with what there is rather than waiting them out.
        let drain_seen = shard.drain_started.epoch();
        let draining = Box::pin(shard.drain_started.changed(drain_seen));
        futures_util::future::select(select_all(waits), draining).await;
        answers = read_buckets(shard, table, request, projection, positions).await;
    }
    answers
}

/// Reads the buckets at `positions` of `request`. When every bucket's own limit fits in the
/// request's, the buckets are read at once (the disk works on all of them together);
/// otherwise one after another, each taking what the ones before left of the request's
/// limit.
async fn read_buckets(
    shard: &Rc<Shard>,
    table: &ResolvedTable,
    request: &FetchRequest,
    projection: Option<&Projection>,
    positions: &[usize],
) -> Vec<FetchedPart> {
    let wanted: Vec<&FetchBucket> =
        positions.iter().map(|position| &request.buckets[*position]).collect();
    let total: u64 = wanted.iter().map(|bucket| u64::from(bucket.max_bytes.max(1))).sum();
    if total <= u64::from(request.max_bytes) {
        let reads = wanted
            .iter()
            .map(|bucket| read_bucket(shard, table, bucket, bucket.max_bytes as usize, projection));
        return join_all(reads).await;
    }
    let mut budget = request.max_bytes as usize;
    let mut answers = Vec::with_capacity(wanted.len());
    for bucket in wanted {
        if budget == 0 {
            // The answer is full: the bucket's place says where it stands, with no batches.
            answers.push(unread_bucket(shard, table, bucket).await);
            continue;
        }
        let max_bytes = (bucket.max_bytes as usize).min(budget);
        let answer = read_bucket(shard, table, bucket, max_bytes, projection).await;
        budget = budget.saturating_sub(answer.0.records_length as usize);
        answers.push(answer);
    }
    answers
}

/// A bucket's place in an answer that is already full: its offsets, no batches.
async fn unread_bucket(
    shard: &Rc<Shard>,
    table: &ResolvedTable,
    wanted: &FetchBucket,
) -> FetchedPart {
    let mut fetched = FetchedBucket { bucket: wanted.bucket, ..FetchedBucket::default() };
    match shard.tablet(table, wanted.bucket).await {
        Ok(tablet) => {
            fetched.high_watermark = tablet.high_watermark();
            fetched.log_start_offset = tablet.log_start_offset();
        }
        Err(error) => fetched.error = Some(error),
    }
    (fetched, Vec::new())
}

/// Reads one bucket, up to `max_bytes` (at least one whole batch).
async fn read_bucket(
    shard: &Rc<Shard>,
    table: &ResolvedTable,
    wanted: &FetchBucket,
    max_bytes: usize,
    projection: Option<&Projection>,
) -> FetchedPart {
    let mut fetched = FetchedBucket { bucket: wanted.bucket, ..FetchedBucket::default() };
    let mut chunks = Vec::new();
    let read = match shard.tablet(table, wanted.bucket).await {
        Err(error) => Err(error),
        Ok(tablet) => {
            fetched.high_watermark = tablet.high_watermark();
            fetched.log_start_offset = tablet.log_start_offset();
            let request =
                ReadRequest { from_offset: wanted.offset, max_bytes: max_bytes.max(1), projection };
            tablet.read(request).await.map_err(|error| read_error(&error))
        }
    };
    match read {
        Ok(read) => {
            fetched.high_watermark = read.high_watermark;
            fetched.log_start_offset = read.log_start_offset;
            for chunk in read.chunks {
                fetched.records_length += chunk.as_bytes().len() as u32;
                chunks.push(RecordChunk::Local(chunk));
            }
        }
        Err(error) => fetched.error = Some(error),
    }
    (fetched, chunks)
}

/// Handles a list-offsets request: each bucket answered by its owner.
pub async fn list_offsets(
    shard: &Rc<Shard>,
    request_id: u32,
    frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    let (request, _) =
        decode_body::<ListOffsetsRequest>(&frame[FRAME_HEADER_SIZE_BYTES..]).map_err(malformed)?;
    if request.buckets.len() > REQUEST_BUCKET_COUNT_MAX {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("at most {REQUEST_BUCKET_COUNT_MAX} buckets per request"),
        ));
    }
    let table = shard.table(request.table_id)?;
    let request = &request;
    let local = |positions: Vec<usize>| {
        let table = &table;
        async move {
            let mut offsets = Vec::with_capacity(positions.len());
            for position in positions {
                offsets
                    .push(offset_of(shard, table, request.buckets[position], request.query).await);
            }
            offsets
        }
    };
    let remote = |owner: usize, positions: Vec<usize>| async move {
        let part = ListOffsetsRequest {
            table_id: request.table_id,
            query: request.query,
            buckets: positions.iter().map(|position| request.buckets[*position]).collect(),
        };
        let (answer, _) = forward_part::<_, ListOffsetsResponse>(
            shard,
            owner,
            ApiKey::ListOffsets,
            request_id,
            &part,
        )
        .await?;
        Ok(answer.offsets)
    };
    let offsets = scatter(shard, request.table_id, &request.buckets, local, remote).await?;
    Ok(reply(ApiKey::ListOffsets, request_id, &ListOffsetsResponse { offsets }, &[]))
}

/// One bucket's offset for `query` (or its error).
async fn offset_of(
    shard: &Rc<Shard>,
    table: &ResolvedTable,
    bucket: u32,
    query: OffsetQuery,
) -> BucketOffset {
    let spec = match query {
        OffsetQuery::Earliest => OffsetSpec::Earliest,
        OffsetQuery::Latest => OffsetSpec::Latest,
        OffsetQuery::Timestamp(timestamp) => OffsetSpec::Timestamp(timestamp),
    };
    match shard.tablet(table, bucket).await {
        Err(error) => BucketOffset { bucket, error: Some(error), offset: 0 },
        Ok(tablet) => match tablet.list_offsets(spec).await {
            Ok(offset) => BucketOffset { bucket, error: None, offset },
            Err(error) => BucketOffset { bucket, error: Some(read_error(&error)), offset: 0 },
        },
    }
}
