//! The request layer: decode a request frame, check its header, route it to the function
//! that answers its API, and encode the answer (or an error frame with a code and a
//! message: nothing here panics on input). Messages from other shards arrive here too.
//!
//! - [`catalog`]: databases, tables, metadata, writer ids (changes on shard 0).
//! - [`log`]: produce, fetch, list offsets.
//! - [`pk`]: upsert, lookup, snapshot scan of primary-key tables.
//! - [`scatter`]: a request over several buckets split among their owning shards.
//! - [`records`], [`response`]: the batch a write carries; what an answer is made of.
//!
//! Requests for buckets another shard owns are forwarded over the channel mesh and counted
//! (`forwarded_requests`): a shard-aware client never causes one.

pub mod catalog;
pub mod log;
pub mod pk;
pub mod records;
pub mod response;
pub mod scatter;

use std::rc::Rc;

use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::{
    ApiKey, FrameHeader, FRAME_HEADER_SIZE_BYTES, REQUEST_BODY_SIZE_MAX_BYTES,
};
use ufer_wire::protocol::messages::encode_error_frame;

pub use response::{malformed, RecordChunk, Response};

use crate::metrics::ShardMetrics;
use crate::shard::{Shard, ShardMessage};

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

/// Whether `api` changes the catalog or hands out writer ids: shard 0 answers it.
fn is_shard_zero_api(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::CreateDatabase
            | ApiKey::DropDatabase
            | ApiKey::CreateTable
            | ApiKey::DropTable
            | ApiKey::InitWriter
    )
}

async fn dispatch(
    shard: &Rc<Shard>,
    api: ApiKey,
    request_id: u32,
    frame: Vec<u8>,
) -> Result<Response, ErrorBody> {
    if is_shard_zero_api(api) && shard.id != 0 {
        return Ok(Response::Frame(shard.forward(0, frame).await?));
    }
    let body = &frame[FRAME_HEADER_SIZE_BYTES..];
    match api {
        ApiKey::CreateDatabase => catalog::create_database(shard, request_id, body).await,
        ApiKey::DropDatabase => catalog::drop_database(shard, request_id, body).await,
        ApiKey::CreateTable => catalog::create_table(shard, request_id, body).await,
        ApiKey::DropTable => catalog::drop_table(shard, request_id, body).await,
        ApiKey::InitWriter => catalog::init_writer(shard, request_id, body).await,
        ApiKey::ListDatabases => catalog::list_databases(shard, request_id, body),
        ApiKey::ListTables => catalog::list_tables(shard, request_id, body),
        ApiKey::DescribeTable => catalog::describe_table(shard, request_id, body).await,
        ApiKey::Metadata => catalog::metadata(shard, request_id, body),
        ApiKey::Produce => log::produce(shard, request_id, frame).await,
        ApiKey::Fetch => log::fetch(shard, request_id, frame).await,
        ApiKey::ListOffsets => log::list_offsets(shard, request_id, frame).await,
        ApiKey::Upsert => pk::upsert(shard, request_id, frame).await,
        ApiKey::Lookup => pk::lookup(shard, request_id, frame).await,
        ApiKey::SnapshotScan => pk::snapshot_scan(shard, request_id, frame).await,
    }
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
        ShardMessage::WriterIdsIssued { to, reply } => {
            shard.note_writer_ids_issued(to);
            let _ = reply.send(());
        }
        ShardMessage::TableDropped { table_id, reply } => {
            shard.close_table(table_id).await;
            let _ = reply.send(());
        }
    }
}
