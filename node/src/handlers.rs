//! Answering requests: decode the frame, route it (to the shard that owns the bucket, or to
//! shard 0 for catalog changes), do the work, encode the response.
//!
//! Every failure becomes an error frame with a code and a message; nothing here panics on
//! input. Requests for buckets another shard owns are forwarded over the channel mesh and
//! counted (`forwarded_requests`): a shard-aware client never causes one.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{join_all, select_all};
use ufer_shard::{OffsetSpec, ReadChunk, ReadRequest};
use ufer_wire::protocol::codec::ProtocolError;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{
    ApiKey, FrameFlags, FrameHeader, FRAME_HEADER_SIZE_BYTES, REQUEST_BODY_SIZE_MAX_BYTES,
};
use ufer_wire::protocol::messages::*;
use ufer_wire::{BatchError, LogBatch, Projection};

use crate::catalog::Catalog;
use crate::error::{append_error, read_error};
use crate::limits::{REQUEST_BUCKET_COUNT_MAX, WRITER_ID_BLOCK};
use crate::metrics::ShardMetrics;
use crate::shard::{Shard, ShardMessage};

/// Bytes of a fetch answer that came from another shard, already assembled.
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

fn reply<B: Body>(api: ApiKey, request_id: u32, body: &B) -> Response {
    Response::Frame(encode_frame(api, FrameFlags::response(), request_id, body, &[]))
}

/// Answers one request frame (header and body).
pub async fn handle(shard: &Rc<Shard>, frame: Vec<u8>) -> Response {
    let header = match FrameHeader::parse(&frame, REQUEST_BODY_SIZE_MAX_BYTES) {
        Ok(header) => header,
        Err(error) => return Response::Frame(encode_error_frame(0, 0, &malformed(error))),
    };
    let (raw_api, request_id) = (header.api_key.get(), header.request_id.get());
    let result = match ApiKey::from_u16(raw_api) {
        None => Err(ErrorBody::new(ErrorCode::UnsupportedApi, format!("unknown API {raw_api}"))),
        Some(api) if header.api_version.get() != api.version() => Err(ErrorBody::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "{api:?} version {} is not supported; this node speaks {}",
                header.api_version.get(),
                api.version()
            ),
        )),
        Some(_) if header.frame_flags().is_response() => Err(ErrorBody::new(
            ErrorCode::MalformedRequest,
            "a response frame was sent as a request",
        )),
        Some(_) if frame.len() != FRAME_HEADER_SIZE_BYTES + header.body_length.get() as usize => {
            Err(ErrorBody::new(
                ErrorCode::MalformedRequest,
                "frame length does not match its header",
            ))
        }
        Some(api) => dispatch(shard, api, request_id, frame).await,
    };
    match result {
        Ok(response) => response,
        Err(error) => {
            ShardMetrics::add(&shard.metrics.error_responses, 1);
            Response::Frame(encode_error_frame(raw_api, request_id, &error))
        }
    }
}

async fn dispatch(
    shard: &Rc<Shard>,
    api: ApiKey,
    request_id: u32,
    frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    let body = &frame[FRAME_HEADER_SIZE_BYTES..];
    match api {
        ApiKey::CreateDatabase
        | ApiKey::DropDatabase
        | ApiKey::CreateTable
        | ApiKey::DropTable
        | ApiKey::InitWriter
            if shard.id != 0 =>
        {
            Ok(Response::Frame(shard.forward(0, frame).await?))
        }
        ApiKey::CreateDatabase => {
            let (request, _) = decode_body::<CreateDatabaseRequest>(body).map_err(malformed)?;
            let now = shard.clock.now_ms();
            change_catalog(shard, |catalog| {
                catalog.create_database(&request.name, request.if_not_exists, now).map(|_| ())
            })
            .await?;
            Ok(reply(api, request_id, &Empty))
        }
        ApiKey::DropDatabase => {
            let (request, _) = decode_body::<DropDatabaseRequest>(body).map_err(malformed)?;
            let mut dropped = Vec::new();
            change_catalog(shard, |catalog| {
                dropped =
                    catalog.drop_database(&request.name, request.if_exists, request.cascade)?;
                Ok(())
            })
            .await?;
            for table in dropped {
                drop_table_files(shard, table.table_id).await;
            }
            Ok(reply(api, request_id, &Empty))
        }
        ApiKey::CreateTable => {
            let (request, _) = decode_body::<CreateTableRequest>(body).map_err(malformed)?;
            let (now, base) = (shard.clock.now_ms(), shard.config.log.clone());
            let mut table_id = 0;
            change_catalog(shard, |catalog| {
                let (info, _) = catalog.create_table(
                    &request.path,
                    request.definition.clone(),
                    request.if_not_exists,
                    &base,
                    now,
                )?;
                table_id = info.table_id;
                Ok(())
            })
            .await?;
            Ok(reply(api, request_id, &CreateTableResponse { table_id }))
        }
        ApiKey::DropTable => {
            let (request, _) = decode_body::<DropTableRequest>(body).map_err(malformed)?;
            let mut dropped = None;
            change_catalog(shard, |catalog| {
                dropped = catalog.drop_table(&request.path, request.if_exists)?;
                Ok(())
            })
            .await?;
            if let Some(table) = dropped {
                drop_table_files(shard, table.table_id).await;
            }
            Ok(reply(api, request_id, &Empty))
        }
        ApiKey::InitWriter => {
            decode_body::<InitWriterRequest>(body).map_err(malformed)?;
            let writer_id = next_writer_id(shard).await?;
            Ok(reply(api, request_id, &InitWriterResponse { writer_id }))
        }
        ApiKey::ListDatabases => {
            decode_body::<ListDatabasesRequest>(body).map_err(malformed)?;
            Ok(reply(
                api,
                request_id,
                &ListDatabasesResponse { names: shard.catalog().databases() },
            ))
        }
        ApiKey::ListTables => {
            let (request, _) = decode_body::<ListTablesRequest>(body).map_err(malformed)?;
            let tables = shard.catalog().tables_of(&request.database)?;
            Ok(reply(api, request_id, &ListTablesResponse { tables }))
        }
        ApiKey::DescribeTable => {
            let (request, _) = decode_body::<DescribeTableRequest>(body).map_err(malformed)?;
            let info = shard.catalog().table(&request.path)?.clone();
            let buckets = describe_buckets(shard, &info).await?;
            Ok(reply(api, request_id, &DescribeTableResponse { info, buckets }))
        }
        ApiKey::Metadata => {
            let (request, _) = decode_body::<MetadataRequest>(body).map_err(malformed)?;
            Ok(reply(api, request_id, &metadata(shard, &request)?))
        }
        ApiKey::Produce => produce(shard, request_id, frame).await,
        ApiKey::Fetch => fetch(shard, request_id, frame).await,
        ApiKey::ListOffsets => list_offsets(shard, request_id, frame).await,
        ApiKey::Upsert => crate::pk_handlers::upsert(shard, request_id, frame).await,
        ApiKey::Lookup => crate::pk_handlers::lookup(shard, request_id, frame).await,
        ApiKey::SnapshotScan => crate::pk_handlers::snapshot_scan(shard, request_id, frame).await,
    }
}

/// Applies `change` to a copy of the catalog on shard 0, writes it crash-safely, installs
/// it and sends it to every other shard. Nothing changes if any step fails.
async fn change_catalog(
    shard: &Rc<Shard>,
    change: impl FnOnce(&mut Catalog) -> Result<(), ErrorBody>,
) -> Result<(), ErrorBody> {
    assert_eq!(shard.id, 0, "shard 0 owns the catalog");
    let _permit =
        shard.ddl_lock.acquire_permit(1).await.map_err(|_| crate::shard::shutting_down())?;
    let mut catalog = (*shard.catalog()).clone();
    change(&mut catalog)?;
    persist_catalog(shard, &catalog).await?;
    let catalog = Arc::new(catalog);
    shard.install_catalog(catalog.clone());
    for peer in 1..shard.shard_count() {
        // A peer that is shutting down no longer needs it.
        let _ = shard.peers.send_to(peer, ShardMessage::Catalog(catalog.clone())).await;
    }
    Ok(())
}

async fn persist_catalog(shard: &Shard, catalog: &Catalog) -> Result<(), ErrorBody> {
    let Some(dir) = &shard.catalog_dir else {
        return Err(ErrorBody::new(ErrorCode::Internal, "only shard 0 writes the catalog"));
    };
    dir.replace_file(crate::node::CATALOG_FILE_NAME, &catalog.encode()).await.map_err(|error| {
        let code = if error.is_disk_full() { ErrorCode::DiskFull } else { ErrorCode::StorageError };
        ErrorBody::new(code, format!("writing the catalog: {error}"))
    })
}

/// Closes a dropped table's tablets on every shard, then deletes its files.
async fn drop_table_files(shard: &Rc<Shard>, table_id: u64) {
    shard.close_table(table_id).await;
    let mut answers = Vec::new();
    for peer in 1..shard.shard_count() {
        let (reply, answer) = futures_channel::oneshot::channel();
        if shard.peers.send_to(peer, ShardMessage::TableDropped { table_id, reply }).await.is_ok() {
            answers.push(answer);
        }
    }
    for answer in answers {
        let _ = answer.await;
    }
    let dir = shard.config.data_dir.join("tables").join(table_id.to_string());
    // Files left by a failure here are removed at the next start (not in the catalog).
    let _ = std::fs::remove_dir_all(dir);
}

async fn next_writer_id(shard: &Rc<Shard>) -> Result<i64, ErrorBody> {
    // Take the id before any await, so concurrent callers never get the same one; hand it
    // out only once the catalog durably reserves it, so a restart never repeats it.
    let writer_id = shard.next_writer_id.get();
    shard.next_writer_id.set(writer_id + 1);
    if writer_id >= shard.catalog().writer_ids_reserved_to() {
        change_catalog(shard, |catalog| {
            if writer_id >= catalog.writer_ids_reserved_to() {
                catalog.reserve_writer_ids(writer_id + WRITER_ID_BLOCK);
            }
            Ok(())
        })
        .await?;
    }
    Ok(writer_id)
}

fn metadata(shard: &Shard, request: &MetadataRequest) -> Result<MetadataResponse, ErrorBody> {
    let catalog = shard.catalog();
    let tables: Vec<TableInfo> = if request.tables.is_empty() {
        catalog.all_tables().cloned().collect()
    } else {
        request.tables.iter().map(|path| catalog.table(path).cloned()).collect::<Result<_, _>>()?
    };
    let tables = tables
        .into_iter()
        .map(|info| {
            let buckets = (0..info.definition.bucket_count)
                .map(|bucket| BucketLocation {
                    bucket,
                    node_id: shard.node.node_id,
                    shard: shard.owner_of(info.table_id, bucket) as u32,
                })
                .collect();
            TableMetadata { info, buckets }
        })
        .collect();
    Ok(MetadataResponse { nodes: vec![shard.node.clone()], tables })
}

async fn describe_buckets(
    shard: &Rc<Shard>,
    info: &TableInfo,
) -> Result<Vec<BucketStatus>, ErrorBody> {
    let mut by_owner: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for bucket in 0..info.definition.bucket_count {
        by_owner.entry(shard.owner_of(info.table_id, bucket)).or_default().push(bucket);
    }
    let mut statuses = Vec::new();
    for (owner, buckets) in by_owner {
        if owner == shard.id {
            statuses.extend(shard.bucket_statuses(info.table_id, &buckets).await);
        } else {
            let (reply, answer) = futures_channel::oneshot::channel();
            let message = ShardMessage::BucketStatus { table_id: info.table_id, buckets, reply };
            shard.peers.send_to(owner, message).await.map_err(|_| crate::shard::shutting_down())?;
            statuses.extend(answer.await.map_err(|_| crate::shard::shutting_down())?);
        }
    }
    statuses.sort_by_key(|status| status.bucket);
    Ok(statuses)
}

fn batch_error(error: BatchError) -> ErrorBody {
    let code = match error {
        BatchError::SchemaMismatch(_) => ErrorCode::SchemaMismatch,
        BatchError::BadLength { length, .. }
            if length > u64::from(ufer_wire::limits::BATCH_SIZE_MAX_BYTES) =>
        {
            ErrorCode::BatchTooLarge
        }
        _ => ErrorCode::InvalidBatch,
    };
    ErrorBody::new(code, error.to_string())
}

async fn produce(
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
    if records_len == 0 {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "a produce request must carry a batch",
        ));
    }
    let records_start = frame.len() - records_len;
    let batch_len = {
        let batch = LogBatch::parse(&frame[records_start..]).map_err(batch_error)?;
        batch.check_schema(&table.schema).map_err(batch_error)?;
        batch.len()
    };
    if batch_len != records_len {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!(
                "a produce request carries exactly one batch: {} bytes follow the {batch_len}-byte batch",
                records_len - batch_len
            ),
        ));
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
        ShardMetrics::add(&shard.metrics.produced_bytes, batch_len as u64);
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
    Ok(reply(ApiKey::Produce, request_id, &response))
}

/// Groups request positions by the shard owning each bucket.
fn by_owner(
    shard: &Shard,
    table_id: u64,
    buckets: impl Iterator<Item = u32>,
) -> BTreeMap<usize, Vec<usize>> {
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (position, bucket) in buckets.enumerate() {
        groups.entry(shard.owner_of(table_id, bucket)).or_default().push(position);
    }
    groups
}

async fn fetch(shard: &Rc<Shard>, request_id: u32, frame: Vec<u8>) -> Result<Response, ErrorBody> {
    let (request, _) =
        decode_body::<FetchRequest>(&frame[FRAME_HEADER_SIZE_BYTES..]).map_err(malformed)?;
    if request.buckets.len() > REQUEST_BUCKET_COUNT_MAX {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("at most {REQUEST_BUCKET_COUNT_MAX} buckets per fetch"),
        ));
    }
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
    let groups =
        by_owner(shard, request.table_id, request.buckets.iter().map(|bucket| bucket.bucket));
    let mut answers: Vec<Option<(FetchedBucket, Vec<RecordChunk>)>> =
        (0..request.buckets.len()).map(|_| None).collect();
    let mut remote = Vec::new();
    for (owner, positions) in &groups {
        if *owner == shard.id {
            continue;
        }
        let part = FetchRequest {
            buckets: positions.iter().map(|position| request.buckets[*position].clone()).collect(),
            ..request.clone()
        };
        let frame = encode_frame(ApiKey::Fetch, FrameFlags::request(), request_id, &part, &[]);
        remote.push(async move { (positions.clone(), shard.forward(*owner, frame).await) });
    }
    let local_positions = groups.get(&shard.id).cloned().unwrap_or_default();
    let (remote_answers, local_answers) = futures_util::future::join(
        join_all(remote),
        fetch_local(shard, &table, &request, projection.as_ref(), &local_positions),
    )
    .await;
    for (positions, answer) in remote_answers {
        let response = answer?;
        let (fetched, mut records) = split_fetch_response(&response)?;
        for (position, bucket) in positions.into_iter().zip(fetched) {
            let chunk = records.drain(..bucket.records_length as usize).collect::<Vec<u8>>();
            answers[position] = Some((bucket, vec![RecordChunk::Remote(chunk)]));
        }
    }
    for (position, answer) in local_positions.into_iter().zip(local_answers) {
        answers[position] = Some(answer);
    }
    let mut buckets = Vec::with_capacity(answers.len());
    let mut chunks = Vec::new();
    for answer in answers {
        let (bucket, bucket_chunks) = answer
            .ok_or_else(|| ErrorBody::new(ErrorCode::Internal, "a bucket went unanswered"))?;
        buckets.push(bucket);
        chunks.extend(bucket_chunks);
    }
    let records_length: usize = chunks.iter().map(|chunk| chunk.as_bytes().len()).sum();
    ShardMetrics::add(&shard.metrics.fetched_bytes, records_length as u64);
    let head = encode_frame_head(
        ApiKey::Fetch,
        FrameFlags::response(),
        request_id,
        &FetchResponse { buckets },
        records_length,
    );
    Ok(Response::Records { head, chunks })
}

/// Decodes a forwarded fetch response into its buckets and records.
fn split_fetch_response(frame: &[u8]) -> Result<(Vec<FetchedBucket>, Vec<u8>), ErrorBody> {
    let header = FrameHeader::parse(frame, u32::MAX).map_err(malformed)?;
    let body = &frame[FRAME_HEADER_SIZE_BYTES..];
    if header.frame_flags().is_error() {
        let error = ErrorBody::decode(&mut ufer_wire::protocol::codec::Decoder::new(body))
            .map_err(malformed)?;
        return Err(error);
    }
    let (response, records) = decode_body::<FetchResponse>(body).map_err(malformed)?;
    Ok((response.buckets, records.to_vec()))
}

/// Reads the buckets at `positions` of `request` (all owned here), long-polling if fewer
/// than `min_bytes` are ready.
async fn fetch_local(
    shard: &Rc<Shard>,
    table: &crate::catalog::ResolvedTable,
    request: &FetchRequest,
    projection: Option<&Projection>,
    positions: &[usize],
) -> Vec<(FetchedBucket, Vec<RecordChunk>)> {
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
    table: &crate::catalog::ResolvedTable,
    request: &FetchRequest,
    projection: Option<&Projection>,
    positions: &[usize],
) -> Vec<(FetchedBucket, Vec<RecordChunk>)> {
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
        let max_bytes = (bucket.max_bytes as usize).min(budget);
        let answer = read_bucket(shard, table, bucket, max_bytes, projection).await;
        budget = budget.saturating_sub(answer.0.records_length as usize);
        answers.push(answer);
    }
    answers
}

/// Reads one bucket, up to `max_bytes` (at least one whole batch).
async fn read_bucket(
    shard: &Rc<Shard>,
    table: &crate::catalog::ResolvedTable,
    wanted: &FetchBucket,
    max_bytes: usize,
    projection: Option<&Projection>,
) -> (FetchedBucket, Vec<RecordChunk>) {
    let mut fetched = FetchedBucket { bucket: wanted.bucket, ..FetchedBucket::default() };
    let mut chunks = Vec::new();
    let read = match shard.tablet(table, wanted.bucket).await {
        Err(error) => Err(error),
        Ok(tablet) => {
            fetched.high_watermark = tablet.high_watermark();
            fetched.log_start_offset = tablet.log_start_offset();
            tablet
                .read(ReadRequest {
                    from_offset: wanted.offset,
                    max_bytes: max_bytes.max(1),
                    projection,
                })
                .await
                .map_err(|error| read_error(&error))
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

async fn list_offsets(
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
    let groups = by_owner(shard, request.table_id, request.buckets.iter().copied());
    let mut offsets: Vec<Option<BucketOffset>> = vec![None; request.buckets.len()];
    for (owner, positions) in groups {
        if owner == shard.id {
            for position in positions {
                let bucket = request.buckets[position];
                let spec = match request.query {
                    OffsetQuery::Earliest => OffsetSpec::Earliest,
                    OffsetQuery::Latest => OffsetSpec::Latest,
                    OffsetQuery::Timestamp(timestamp) => OffsetSpec::Timestamp(timestamp),
                };
                let answer = match shard.tablet(&table, bucket).await {
                    Err(error) => BucketOffset { bucket, error: Some(error), offset: 0 },
                    Ok(tablet) => match tablet.list_offsets(spec).await {
                        Ok(offset) => BucketOffset { bucket, error: None, offset },
                        Err(error) => {
                            BucketOffset { bucket, error: Some(read_error(&error)), offset: 0 }
                        }
                    },
                };
                offsets[position] = Some(answer);
            }
        } else {
            let part = ListOffsetsRequest {
                table_id: request.table_id,
                query: request.query,
                buckets: positions.iter().map(|position| request.buckets[*position]).collect(),
            };
            let frame =
                encode_frame(ApiKey::ListOffsets, FrameFlags::request(), request_id, &part, &[]);
            let response = shard.forward(owner, frame).await?;
            let header = FrameHeader::parse(&response, u32::MAX).map_err(malformed)?;
            let body = &response[FRAME_HEADER_SIZE_BYTES..];
            if header.frame_flags().is_error() {
                return Err(ErrorBody::decode(&mut ufer_wire::protocol::codec::Decoder::new(body))
                    .map_err(malformed)?);
            }
            let (answer, _) = decode_body::<ListOffsetsResponse>(body).map_err(malformed)?;
            for (position, offset) in positions.into_iter().zip(answer.offsets) {
                offsets[position] = Some(offset);
            }
        }
    }
    let offsets = offsets.into_iter().map(|offset| offset.unwrap_or_default()).collect();
    Ok(reply(ApiKey::ListOffsets, request_id, &ListOffsetsResponse { offsets }))
}

/// Handles a message from another shard.
pub async fn handle_message(shard: &Rc<Shard>, message: ShardMessage) {
    match message {
        ShardMessage::Request { frame, reply } => {
            let response = handle(shard, frame).await.into_bytes();
            let _ = reply.send(response);
        }
        ShardMessage::Catalog(catalog) => shard.install_catalog(catalog),
        ShardMessage::BucketStatus { table_id, buckets, reply } => {
            let _ = reply.send(shard.bucket_statuses(table_id, &buckets).await);
        }
        ShardMessage::TableDropped { table_id, reply } => {
            shard.close_table(table_id).await;
            let _ = reply.send(());
        }
    }
}
