//! The APIs of the catalog: databases and tables (create, drop, list, describe), the
//! metadata clients route by, and writer ids for idempotent writers.
//!
//! Changes happen on shard 0 only (the dispatch forwards them there), one at a time
//! (`ddl_lock`): a change is applied to a copy of the catalog, written crash-safely, and
//! only then installed and sent to the other shards — a change that fails leaves
//! everything as it was. A dropped table's files are deleted after the catalog no longer
//! names it.

use std::rc::Rc;
use std::sync::Arc;

use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::frame::ApiKey;
use ufer_wire::protocol::messages::*;

use crate::api::response::{malformed, reply, Response};
use crate::api::scatter::scatter;
use crate::catalog::{file, Catalog};
use crate::limits::WRITER_ID_BLOCK;
use crate::shard::{shutting_down, Shard, ShardMessage};

/// Handles CreateDatabase (shard 0).
pub async fn create_database(
    shard: &Rc<Shard>,
    request_id: u32,
    body: &[u8],
) -> Result<Response, ErrorBody> {
    let (request, _) = decode_body::<CreateDatabaseRequest>(body).map_err(malformed)?;
    let now = shard.clock.now_ms();
    change_catalog(shard, |catalog| {
        catalog.create_database(&request.name, request.if_not_exists, now).map(|_| ())
    })
    .await?;
    Ok(reply(ApiKey::CreateDatabase, request_id, &Empty, &[]))
}

/// Handles DropDatabase (shard 0): with `cascade`, its tables' files are deleted too.
pub async fn drop_database(
    shard: &Rc<Shard>,
    request_id: u32,
    body: &[u8],
) -> Result<Response, ErrorBody> {
    let (request, _) = decode_body::<DropDatabaseRequest>(body).map_err(malformed)?;
    let mut dropped = Vec::new();
    change_catalog(shard, |catalog| {
        dropped = catalog.drop_database(&request.name, request.if_exists, request.cascade)?;
        Ok(())
    })
    .await?;
    for table in dropped {
        drop_table_files(shard, table.table_id).await;
    }
    Ok(reply(ApiKey::DropDatabase, request_id, &Empty, &[]))
}

/// Handles CreateTable (shard 0).
pub async fn create_table(
    shard: &Rc<Shard>,
    request_id: u32,
    body: &[u8],
) -> Result<Response, ErrorBody> {
    let (request, _) = decode_body::<CreateTableRequest>(body).map_err(malformed)?;
    let (now, base) = (shard.clock.now_ms(), shard.config.log.clone());
    let data_dir = shard.config.data_dir.clone();
    let mut table_id = 0;
    change_catalog(shard, |catalog| {
        // Files of a table this catalog never knew (left at a start, e.g. after a catalog
        // was restored from a backup) keep their id: a new table must not open them.
        while file::table_dir(&data_dir, catalog.next_table_id()).exists() {
            catalog.skip_table_id();
        }
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
    Ok(reply(ApiKey::CreateTable, request_id, &CreateTableResponse { table_id }, &[]))
}

/// Handles DropTable (shard 0): the table leaves the catalog, then its files are deleted.
pub async fn drop_table(
    shard: &Rc<Shard>,
    request_id: u32,
    body: &[u8],
) -> Result<Response, ErrorBody> {
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
    Ok(reply(ApiKey::DropTable, request_id, &Empty, &[]))
}

/// Handles InitWriter (shard 0): a writer id never handed out before, also across restarts.
pub async fn init_writer(
    shard: &Rc<Shard>,
    request_id: u32,
    body: &[u8],
) -> Result<Response, ErrorBody> {
    decode_body::<InitWriterRequest>(body).map_err(malformed)?;
    let writer_id = next_writer_id(shard).await?;
    Ok(reply(ApiKey::InitWriter, request_id, &InitWriterResponse { writer_id }, &[]))
}

/// Handles ListDatabases.
pub fn list_databases(shard: &Shard, request_id: u32, body: &[u8]) -> Result<Response, ErrorBody> {
    decode_body::<ListDatabasesRequest>(body).map_err(malformed)?;
    let names = shard.catalog().databases();
    Ok(reply(ApiKey::ListDatabases, request_id, &ListDatabasesResponse { names }, &[]))
}

/// Handles ListTables.
pub fn list_tables(shard: &Shard, request_id: u32, body: &[u8]) -> Result<Response, ErrorBody> {
    let (request, _) = decode_body::<ListTablesRequest>(body).map_err(malformed)?;
    let tables = shard.catalog().tables_of(&request.database)?;
    Ok(reply(ApiKey::ListTables, request_id, &ListTablesResponse { tables }, &[]))
}

/// Handles DescribeTable: the catalog entry and every bucket's state, from its owner.
pub async fn describe_table(
    shard: &Rc<Shard>,
    request_id: u32,
    body: &[u8],
) -> Result<Response, ErrorBody> {
    let (request, _) = decode_body::<DescribeTableRequest>(body).map_err(malformed)?;
    let info = shard.catalog().table(&request.path)?.clone();
    let table_id = info.table_id;
    let buckets: Vec<u32> = (0..info.definition.bucket_count).collect();
    let local = |positions: Vec<usize>| {
        let buckets = positions.iter().map(|position| buckets[*position]).collect::<Vec<_>>();
        async move { shard.bucket_statuses(table_id, &buckets).await }
    };
    let remote = |owner: usize, positions: Vec<usize>| {
        let buckets = positions.iter().map(|position| buckets[*position]).collect();
        async move {
            let (reply, answer) = futures_channel::oneshot::channel();
            let message = ShardMessage::BucketStatus { table_id, buckets, reply };
            shard.peers.send_to(owner, message).await.map_err(|_| shutting_down())?;
            answer.await.map_err(|_| shutting_down())
        }
    };
    let buckets = scatter(shard, table_id, &buckets, local, remote).await?;
    Ok(reply(ApiKey::DescribeTable, request_id, &DescribeTableResponse { info, buckets }, &[]))
}

/// Handles Metadata: the named tables (all when none are named) and where each bucket is.
pub fn metadata(shard: &Shard, request_id: u32, body: &[u8]) -> Result<Response, ErrorBody> {
    let (request, _) = decode_body::<MetadataRequest>(body).map_err(malformed)?;
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
    let response = MetadataResponse { nodes: vec![shard.node.clone()], tables };
    Ok(reply(ApiKey::Metadata, request_id, &response, &[]))
}

/// Applies `change` to a copy of the catalog on shard 0, writes it crash-safely, installs
/// it and sends it to every other shard. Nothing changes if any step fails.
async fn change_catalog(
    shard: &Rc<Shard>,
    change: impl FnOnce(&mut Catalog) -> Result<(), ErrorBody>,
) -> Result<(), ErrorBody> {
    assert_eq!(shard.id, 0, "shard 0 owns the catalog");
    let _permit = shard.ddl_lock.acquire_permit(1).await.map_err(|_| shutting_down())?;
    let mut catalog = (*shard.catalog()).clone();
    change(&mut catalog)?;
    let Some(dir) = &shard.catalog_dir else {
        return Err(ErrorBody::new(ErrorCode::Internal, "only shard 0 writes the catalog"));
    };
    file::persist(dir, &catalog).await.map_err(|error| {
        let code = if error.is_disk_full() { ErrorCode::DiskFull } else { ErrorCode::StorageError };
        ErrorBody::new(code, format!("writing the catalog: {error}"))
    })?;
    let catalog = Arc::new(catalog);
    shard.install_catalog(catalog.clone());
    for peer in 1..shard.shard_count() {
        // A peer that is shutting down no longer needs it.
        let _ = shard.peers.send_to(peer, ShardMessage::Catalog(catalog.clone())).await;
    }
    Ok(())
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
    let dir = file::table_dir(&shard.config.data_dir, table_id);
    // Files left by a failure here are removed at the next start (the catalog dropped them).
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
    // Every shard knows the id before the writer can send its first batch.
    shard.note_writer_ids_issued(writer_id + 1);
    let mut answers = Vec::new();
    for peer in 1..shard.shard_count() {
        let (reply, answer) = futures_channel::oneshot::channel();
        let message = ShardMessage::WriterIdsIssued { to: writer_id + 1, reply };
        shard.peers.send_to(peer, message).await.map_err(|_| shutting_down())?;
        answers.push(answer);
    }
    for answer in answers {
        answer.await.map_err(|_| shutting_down())?;
    }
    Ok(writer_id)
}
