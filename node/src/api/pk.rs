//! The APIs of primary-key tables: upsert (and delete), lookup by key or key prefix, and
//! snapshot scan. Each request names one bucket; a shard that does not own it forwards it
//! to the owner, as produce does.

use std::rc::Rc;

use arrow_array::RecordBatch;
use ufer_shard::pk_bucket::{LookupBy, PkBucket, ScanCursor, WriteColumns};
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{ApiKey, FRAME_HEADER_SIZE_BYTES};
use ufer_wire::protocol::messages::*;
use ufer_wire::{BatchOptions, BatchSchema, LogBatchBuilder, WriterStamp};

use crate::api::records::one_batch;
use crate::api::response::{malformed, reply, Response};
use crate::error::pk_error;
use crate::metrics::ShardMetrics;
use crate::shard::Shard;
use crate::table::ResolvedTable;

/// The table and the bucket of a request, or the owner's answer when another shard owns it.
enum Target {
    Here(Rc<ResolvedTable>, Rc<PkBucket>),
    Forwarded(Vec<u8>),
}

async fn target(
    shard: &Rc<Shard>,
    frame: &[u8],
    table_id: u64,
    bucket: u32,
) -> Result<Target, ErrorBody> {
    let table = shard.table(table_id)?;
    table.check_bucket(bucket)?;
    if table.primary_key.is_none() {
        return Err(ErrorBody::new(
            ErrorCode::WrongTableKind,
            format!("table {} has no primary key: use produce and fetch", table.info.path),
        ));
    }
    let owner = shard.owner_of(table_id, bucket);
    if owner != shard.id {
        return Ok(Target::Forwarded(shard.forward(owner, frame.to_vec()).await?));
    }
    let pk_bucket = shard.pk_bucket(&table, bucket).await?;
    Ok(Target::Here(table, pk_bucket))
}

/// Checks a list of column indexes (projection or partial-update targets).
fn columns(
    table: &ResolvedTable,
    columns: Option<&Vec<u32>>,
    what: &str,
) -> Result<Option<Vec<usize>>, ErrorBody> {
    let Some(columns) = columns else { return Ok(None) };
    let count = table.schema.arrow().fields().len();
    let ascending = columns.windows(2).all(|pair| pair[0] < pair[1]);
    if !ascending || columns.iter().any(|column| *column as usize >= count) || columns.is_empty() {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!(
                "{what} {columns:?} must be ascending column indexes below {count}, at least one"
            ),
        ));
    }
    Ok(Some(columns.iter().map(|column| *column as usize).collect()))
}

/// Handles an upsert: merge, append the changelog, answer per `acks`.
pub async fn upsert(
    shard: &Rc<Shard>,
    request_id: u32,
    frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    let (request, records) =
        decode_body::<UpsertRequest>(&frame[FRAME_HEADER_SIZE_BYTES..]).map_err(malformed)?;
    let (table, bucket) = match target(shard, &frame, request.table_id, request.bucket).await? {
        Target::Forwarded(answer) => return Ok(Response::Frame(answer)),
        Target::Here(table, bucket) => (table, bucket),
    };
    let batch = one_batch(records, "an upsert request")?;
    shard.check_writer(batch.header().writer_id.get())?;
    let target_columns = columns(&table, request.target_columns.as_ref(), "target columns")?;
    let written = target_columns.as_deref().map_or(WriteColumns::All, WriteColumns::Partial);
    let outcome = bucket.write(records, written).await.map_err(|error| pk_error(&error))?;
    if outcome.duplicate {
        ShardMetrics::add(&shard.metrics.duplicate_batches, 1);
    } else {
        ShardMetrics::add(&shard.metrics.produced_batches, 1);
        ShardMetrics::add(&shard.metrics.produced_bytes, records.len() as u64);
    }
    match request.acks {
        Acks::All => bucket.wait_durable(&outcome).await.map_err(|error| pk_error(&error))?,
        Acks::Leader | Acks::None => {
            let bucket = bucket.clone();
            glommio::spawn_local(async move {
                let _ = bucket.wait_durable(&outcome).await;
            })
            .detach();
        }
    }
    let response = UpsertResponse {
        changelog_offset: outcome.changelog_offset,
        changelog_record_count: outcome.changelog_record_count,
        high_watermark: bucket.log().high_watermark(),
        duplicate: outcome.duplicate,
    };
    Ok(reply(ApiKey::Upsert, request_id, &response, &[]))
}

/// `rows` as one batch for a records section (empty for none).
fn rows_section(table: &ResolvedTable, rows: Option<&RecordBatch>) -> Result<Vec<u8>, ErrorBody> {
    let Some(rows) = rows else { return Ok(Vec::new()) };
    let internal = |error: String| ErrorBody::new(ErrorCode::Internal, error);
    let schema = BatchSchema::new(table.schema.id(), rows.schema())
        .map_err(|error| internal(error.to_string()))?;
    let mut builder = LogBatchBuilder::new(schema, BatchOptions::default())
        .map_err(|error| internal(error.to_string()))?;
    builder.build(rows, None, WriterStamp::NONE).map_err(|error| internal(error.to_string()))
}

/// Handles a lookup by key or key prefix.
pub async fn lookup(
    shard: &Rc<Shard>,
    request_id: u32,
    frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    let (request, records) =
        decode_body::<LookupRequest>(&frame[FRAME_HEADER_SIZE_BYTES..]).map_err(malformed)?;
    let (table, bucket) = match target(shard, &frame, request.table_id, request.bucket).await? {
        Target::Forwarded(answer) => return Ok(Response::Frame(answer)),
        Target::Here(table, bucket) => (table, bucket),
    };
    one_batch(records, "a lookup request")?;
    let projection = columns(&table, request.projection.as_ref(), "projection")?;
    let by = if request.prefix { LookupBy::Prefix } else { LookupBy::Key };
    let found = bucket
        .lookup(records, by, projection.as_deref())
        .await
        .map_err(|error| pk_error(&error))?;
    let section = rows_section(&table, found.rows.as_ref())?;
    let response = LookupResponse {
        key_index: found.key_index,
        log_offset: found.log_offset,
        truncated: found.truncated,
    };
    Ok(reply(ApiKey::Lookup, request_id, &response, &section))
}

/// Handles a part of a snapshot scan.
pub async fn snapshot_scan(
    shard: &Rc<Shard>,
    request_id: u32,
    frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    let (request, _) =
        decode_body::<SnapshotScanRequest>(&frame[FRAME_HEADER_SIZE_BYTES..]).map_err(malformed)?;
    let (table, bucket) = match target(shard, &frame, request.table_id, request.bucket).await? {
        Target::Forwarded(answer) => return Ok(Response::Frame(answer)),
        Target::Here(table, bucket) => (table, bucket),
    };
    let projection = columns(&table, request.projection.as_ref(), "projection")?;
    let cursor = match request.scan_id {
        0 => ScanCursor::Start,
        scan_id => ScanCursor::Resume(scan_id),
    };
    let part = bucket
        .snapshot_scan(cursor, request.max_bytes as usize, projection.as_deref())
        .await
        .map_err(|error| pk_error(&error))?;
    let section = rows_section(&table, part.rows.as_ref())?;
    let response = SnapshotScanResponse {
        scan_id: part.scan_id,
        log_offset: part.log_offset,
        more: part.more,
    };
    Ok(reply(ApiKey::SnapshotScan, request_id, &response, &section))
}
