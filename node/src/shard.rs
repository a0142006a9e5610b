//! [`Shard`]: everything one core owns in a running node — its buckets' log tablets, its
//! copy of the catalog, its QUIC endpoint's requests, its channels to the other shards.
//!
//! Nothing here is shared with another thread except the metrics counters (atomics, read
//! by the node handle) and the messages on the channel mesh. Shard 0 also owns the catalog
//! file and hands out writer ids.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use futures_channel::oneshot;
use glommio::channels::channel_mesh::Senders;
use glommio::sync::Semaphore;
use glommio::TaskQueueHandle;
use ufer_io::{DataDir, Notifier};
use ufer_shard::pk_bucket::{PkBucket, PkBucketEnv, PkBucketSpec};
use ufer_shard::BlockCache;
use ufer_shard::{Clock, LogTablet};
use ufer_wire::header::NO_WRITER_ID;
use ufer_wire::protocol::error_code::{ErrorBody, ErrorCode};
use ufer_wire::protocol::messages::{BucketStatus, NodeInfo};

use crate::catalog::{Catalog, SharedCatalog};
use crate::config::NodeConfig;
use crate::error::{open_error, pk_error};
use crate::metrics::ShardMetrics;
use crate::routing::shard_of;
use crate::table::{resolve, ResolvedTable};

/// Longest a primary-key bucket's changes stay out of a KV snapshot (Fluss's
/// `kv.snapshot.interval` default): bounds the changelog its next open replays.
pub const KV_SNAPSHOT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A message between shards.
#[derive(Debug)]
pub enum ShardMessage {
    /// A request frame for something the receiving shard owns; answer with a response frame.
    Request {
        /// Header and body, as received.
        frame: Vec<u8>,
        /// Where the response frame goes.
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// The catalog changed (sent by shard 0).
    Catalog(Arc<Catalog>),
    /// The state of buckets the receiving shard owns.
    BucketStatus {
        /// Table.
        table_id: u64,
        /// Buckets.
        buckets: Vec<u32>,
        /// The answer, in the same order.
        reply: oneshot::Sender<Vec<BucketStatus>>,
    },
    /// Writer ids below `to` have been given out (sent by shard 0 before it answers an
    /// InitWriter, so a writer's first batch finds its id known on every shard).
    WriterIdsIssued {
        /// Ids below this were given out.
        to: i64,
        /// Answered once noted.
        reply: oneshot::Sender<()>,
    },
    /// A table was dropped: close its tablets on the receiving shard, then answer.
    TableDropped {
        /// Table.
        table_id: u64,
        /// Answered once its files are closed.
        reply: oneshot::Sender<()>,
    },
}

/// The state of one shard.
#[allow(missing_debug_implementations)]
pub struct Shard {
    /// Shard number.
    pub id: usize,
    /// The node's configuration.
    pub config: Rc<NodeConfig>,
    /// This node as metadata answers describe it.
    pub node: NodeInfo,
    /// Channels to every shard (including this one).
    pub peers: Senders<ShardMessage>,
    /// Counters.
    pub metrics: Arc<ShardMetrics>,
    /// Wall clock for commit timestamps.
    pub clock: Rc<dyn Clock>,
    catalog: RefCell<Arc<Catalog>>,
    tables: RefCell<HashMap<u64, Rc<ResolvedTable>>>,
    tablets: RefCell<HashMap<(u64, u32), Rc<LogTablet>>>,
    /// Buckets of primary-key tables (their changelogs are also in `tablets`).
    pk_buckets: RefCell<HashMap<(u64, u32), Rc<PkBucket>>>,
    /// Where primary-key buckets flush and compact: below the request queue.
    pub background_queue: Option<TaskQueueHandle>,
    /// Decoded KV blocks of every primary-key bucket of the shard.
    block_cache: Rc<BlockCache>,
    open_lock: Semaphore,
    /// Shard 0 only: the catalog file's directory; DDL is serialized by `ddl_lock`.
    pub catalog_dir: Option<DataDir>,
    /// Serializes catalog changes (shard 0).
    pub ddl_lock: Semaphore,
    /// The next writer id to hand out (shard 0).
    pub next_writer_id: Cell<i64>,
    /// Writer ids below this may have been handed out; batches of any other writer id are
    /// refused. After a start: every id the catalog reserved (some may have been handed out
    /// before the restart).
    writer_ids_issued_to: Cell<i64>,
    /// Request body bytes held in memory; requests wait for room.
    pub inflight_bytes: Rc<Semaphore>,
    /// Set when the node is shutting down: new requests are refused.
    pub draining: Cell<bool>,
    /// Requests being handled right now.
    pub active_requests: Cell<usize>,
    /// QUIC connections accepted and not yet closed.
    pub open_connections: Cell<usize>,
    /// Notified when `active_requests` drops.
    pub request_finished: Notifier,
    /// Notified when draining starts: long polls answer at once instead of holding up
    /// the shutdown.
    pub drain_started: Notifier,
    /// Per bucket of a lake-enabled table: records below this offset are in the lake (as
    /// the tiering thread last said).
    tiered: RefCell<HashMap<(u64, u32), u64>>,
    /// Shard 0: where the tiering thread reads the catalog.
    pub lake_catalog: Option<SharedCatalog>,
}

impl Shard {
    /// A shard with the catalog `catalog`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: usize,
        config: Rc<NodeConfig>,
        node: NodeInfo,
        peers: Senders<ShardMessage>,
        metrics: Arc<ShardMetrics>,
        clock: Rc<dyn Clock>,
        catalog: Arc<Catalog>,
        catalog_dir: Option<DataDir>,
    ) -> Self {
        let next_writer_id = catalog.writer_ids_reserved_to();
        let inflight = config.inflight_request_bytes_max as u64;
        let block_cache = Rc::new(BlockCache::new(config.kv.block_cache_size_max_bytes));
        let shard = Self {
            id,
            config,
            node,
            peers,
            metrics,
            clock,
            catalog: RefCell::new(catalog.clone()),
            tables: RefCell::new(HashMap::new()),
            tablets: RefCell::new(HashMap::new()),
            pk_buckets: RefCell::new(HashMap::new()),
            background_queue: None,
            block_cache,
            open_lock: Semaphore::new(1),
            catalog_dir,
            ddl_lock: Semaphore::new(1),
            next_writer_id: Cell::new(next_writer_id),
            writer_ids_issued_to: Cell::new(next_writer_id),
            inflight_bytes: Rc::new(Semaphore::new(inflight)),
            draining: Cell::new(false),
            active_requests: Cell::new(0),
            open_connections: Cell::new(0),
            request_finished: Notifier::default(),
            drain_started: Notifier::default(),
            tiered: RefCell::new(HashMap::new()),
            lake_catalog: None,
        };
        shard.install_catalog(catalog);
        shard
    }

    /// Shards in the node.
    pub fn shard_count(&self) -> usize {
        self.peers.nr_consumers()
    }

    /// The shard that owns `bucket` of `table_id`.
    pub fn owner_of(&self, table_id: u64, bucket: u32) -> usize {
        shard_of(table_id, bucket, self.shard_count())
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// Replaces the catalog copy and the resolved tables.
    pub fn install_catalog(&self, catalog: Arc<Catalog>) {
        let mut tables = HashMap::new();
        for info in catalog.all_tables() {
            // The catalog only holds tables that resolved when they were created.
            if let Ok(resolved) = resolve(info, &self.config.log) {
                tables.insert(info.table_id, Rc::new(resolved));
            }
        }
        *self.tables.borrow_mut() = tables;
        if let Some(shared) = &self.lake_catalog {
            shared.set(catalog.clone());
        }
        *self.catalog.borrow_mut() = catalog;
    }

    /// Notes that the lake holds the records of a bucket below `offset`: retention may now
    /// delete the segments entirely below it.
    pub fn note_tiered(&self, table_id: u64, bucket: u32, offset: u64) {
        self.tiered.borrow_mut().insert((table_id, bucket), offset);
        if let Some(tablet) = self.tablets.borrow().get(&(table_id, bucket)) {
            tablet.set_lake_floor(offset);
        }
    }

    /// Records of a bucket below this offset are in the lake; `None` if the table is not
    /// lake-enabled or the tiering thread has not said yet.
    pub fn tiered_offset(&self, table_id: u64, bucket: u32) -> Option<u64> {
        self.tiered.borrow().get(&(table_id, bucket)).copied()
    }

    /// The table with `table_id`.
    pub fn table(&self, table_id: u64) -> Result<Rc<ResolvedTable>, ErrorBody> {
        self.tables.borrow().get(&table_id).cloned().ok_or_else(|| {
            ErrorBody::new(ErrorCode::TableNotFound, format!("no table with id {table_id}"))
        })
    }

    /// The directory of a bucket.
    pub fn bucket_dir(&self, table_id: u64, bucket: u32) -> PathBuf {
        crate::catalog::file::table_dir(&self.config.data_dir, table_id).join(bucket.to_string())
    }

    /// The log tablet of a bucket this shard owns, opened (and recovered) on first use.
    pub async fn tablet(
        &self,
        table: &ResolvedTable,
        bucket: u32,
    ) -> Result<Rc<LogTablet>, ErrorBody> {
        let table_id = table.info.table_id;
        table.check_bucket(bucket)?;
        assert_eq!(self.owner_of(table_id, bucket), self.id, "buckets are opened by their owner");
        if let Some(tablet) = self.tablets.borrow().get(&(table_id, bucket)) {
            return Ok(tablet.clone());
        }
        let _permit = self.open_lock.acquire_permit(1).await.map_err(|_| shutting_down())?;
        if let Some(tablet) = self.tablets.borrow().get(&(table_id, bucket)) {
            return Ok(tablet.clone());
        }
        let path = self.bucket_dir(table_id, bucket);
        let tablet = match &table.primary_key {
            None => Rc::new(
                LogTablet::open(&path, table.log.clone(), self.clock.clone())
                    .await
                    .map_err(|error| open_error(&error))?,
            ),
            Some(options) => {
                let spec = PkBucketSpec {
                    schema: table.schema.clone(),
                    options: options.clone(),
                    bucket,
                    bucket_count: table.info.definition.bucket_count,
                };
                let kv_path = path.with_extension("kv");
                let env = PkBucketEnv {
                    clock: self.clock.clone(),
                    background: self.background_queue,
                    block_cache: Some(self.block_cache.clone()),
                };
                let pk_bucket = PkBucket::open(
                    &path,
                    &kv_path,
                    spec,
                    table.log.clone(),
                    self.config.kv.clone(),
                    env,
                )
                .await
                .map_err(|error| pk_error(&error))?;
                let log = pk_bucket.log().clone();
                self.pk_buckets.borrow_mut().insert((table_id, bucket), pk_bucket);
                log
            }
        };
        if table.lake.is_some() {
            // Until the tiering thread says what the lake holds, retention keeps everything.
            tablet.set_lake_floor(self.tiered_offset(table_id, bucket).unwrap_or(0));
        }
        ShardMetrics::add(&self.metrics.damaged_ranges, tablet.damaged_ranges().len() as u64);
        self.tablets.borrow_mut().insert((table_id, bucket), tablet.clone());
        Ok(tablet)
    }

    /// The bucket of a primary-key table this shard owns, opened (and recovered) on first
    /// use. Fails with `WRONG_TABLE_KIND` for a log table.
    pub async fn pk_bucket(
        &self,
        table: &ResolvedTable,
        bucket: u32,
    ) -> Result<Rc<PkBucket>, ErrorBody> {
        if table.primary_key.is_none() {
            return Err(ErrorBody::new(
                ErrorCode::WrongTableKind,
                format!("table {} has no primary key: use produce and fetch", table.info.path),
            ));
        }
        let key = (table.info.table_id, bucket);
        let stale = self.pk_buckets.borrow().get(&key).is_some_and(|open| open.needs_rebuild());
        if stale {
            // A read found a KV file corrupt: once no request holds the bucket, close it
            // (discarding its KV files) and open it again, rebuilding them from the changelog.
            let _permit = self.open_lock.acquire_permit(1).await.map_err(|_| shutting_down())?;
            let idle =
                self.pk_buckets.borrow().get(&key).is_some_and(|open| Rc::strong_count(open) == 1);
            if idle {
                self.tablets.borrow_mut().remove(&key);
                let corrupt = self.pk_buckets.borrow_mut().remove(&key);
                if let Some(corrupt) = corrupt {
                    let _ = corrupt.close().await;
                }
            }
        }
        self.tablet(table, bucket).await?;
        self.pk_buckets
            .borrow()
            .get(&key)
            .cloned()
            .ok_or_else(|| ErrorBody::new(ErrorCode::Internal, "the bucket's KV is not open"))
    }

    /// Closes the tablets of a dropped table.
    pub async fn close_table(&self, table_id: u64) {
        let dropped: Vec<Rc<LogTablet>> = {
            let mut tablets = self.tablets.borrow_mut();
            let keys: Vec<(u64, u32)> =
                tablets.keys().filter(|(table, _)| *table == table_id).copied().collect();
            keys.iter().filter_map(|key| tablets.remove(key)).collect()
        };
        let dropped_pk: Vec<Rc<PkBucket>> = {
            let mut buckets = self.pk_buckets.borrow_mut();
            let keys: Vec<(u64, u32)> =
                buckets.keys().filter(|(table, _)| *table == table_id).copied().collect();
            keys.iter().filter_map(|key| buckets.remove(key)).collect()
        };
        drop(dropped_pk);
        for tablet in dropped {
            if let Ok(tablet) = Rc::try_unwrap(tablet) {
                let _ = tablet.close().await;
            }
        }
    }

    /// Syncs and closes every tablet (shutdown).
    pub async fn close_all(&self) {
        let pk_buckets: Vec<((u64, u32), Rc<PkBucket>)> =
            self.pk_buckets.borrow_mut().drain().collect();
        for (key, pk_bucket) in pk_buckets {
            // Its log goes with it; a last snapshot makes the next start quick.
            self.tablets.borrow_mut().remove(&key);
            let _ = pk_bucket.close().await;
        }
        let tablets: Vec<Rc<LogTablet>> =
            self.tablets.borrow_mut().drain().map(|(_, tablet)| tablet).collect();
        for tablet in tablets {
            match Rc::try_unwrap(tablet) {
                Ok(tablet) => {
                    let _ = tablet.close().await;
                }
                Err(tablet) => {
                    let _ = tablet.sync().await;
                }
            }
        }
    }

    /// Writes a KV snapshot of every primary-key bucket whose last one is older than
    /// [`KV_SNAPSHOT_INTERVAL`], so retention may trim the changelog before it.
    pub async fn snapshot_stale_kvs(&self) {
        let buckets: Vec<Rc<PkBucket>> = self.pk_buckets.borrow().values().cloned().collect();
        for bucket in buckets {
            let _ = bucket.snapshot_if_older_than(KV_SNAPSHOT_INTERVAL).await;
        }
    }

    /// Applies retention to every open tablet.
    pub async fn apply_retention(&self) {
        let tablets: Vec<Rc<LogTablet>> = self.tablets.borrow().values().cloned().collect();
        for tablet in tablets {
            let _ = tablet.apply_retention().await;
        }
    }

    /// Bucket states of open or openable tablets this shard owns.
    pub async fn bucket_statuses(&self, table_id: u64, buckets: &[u32]) -> Vec<BucketStatus> {
        let mut statuses = Vec::with_capacity(buckets.len());
        let table = self.table(table_id).ok();
        for &bucket in buckets {
            let mut status = BucketStatus { bucket, ..BucketStatus::default() };
            if let Some(table) = &table {
                if let Ok(tablet) = self.tablet(table, bucket).await {
                    status.log_start_offset = tablet.log_start_offset();
                    status.high_watermark = tablet.high_watermark();
                    status.log_end_offset = tablet.log_end_offset();
                    status.size_bytes = tablet.size_bytes();
                    status.segment_count = tablet.segment_count() as u32;
                    status.damaged_offsets = tablet
                        .damaged_ranges()
                        .into_iter()
                        .map(|range| (range.offsets.start, range.offsets.end))
                        .collect();
                    if table.lake.is_some() {
                        status.tiered_offset = self.tiered_offset(table_id, bucket);
                    }
                }
            }
            statuses.push(status);
        }
        statuses
    }

    /// Notes that writer ids below `to` have been handed out.
    pub fn note_writer_ids_issued(&self, to: i64) {
        self.writer_ids_issued_to.set(self.writer_ids_issued_to.get().max(to));
    }

    /// Fails with `UNKNOWN_WRITER` unless `writer_id` is [`NO_WRITER_ID`] or an id this node
    /// handed out: a batch under any other id could be taken for another writer's retry.
    pub fn check_writer(&self, writer_id: i64) -> Result<(), ErrorBody> {
        if writer_id == NO_WRITER_ID || (0..self.writer_ids_issued_to.get()).contains(&writer_id) {
            return Ok(());
        }
        Err(ErrorBody::new(
            ErrorCode::UnknownWriter,
            format!(
                "writer id {writer_id} was not given out by this node: ask for one with \
                 InitWriter"
            ),
        ))
    }

    /// Sends `frame` to shard `owner` and waits for its response frame.
    pub async fn forward(&self, owner: usize, frame: Vec<u8>) -> Result<Vec<u8>, ErrorBody> {
        ShardMetrics::add(&self.metrics.forwarded_requests, 1);
        let (reply, answer) = oneshot::channel();
        self.peers
            .send_to(owner, ShardMessage::Request { frame, reply })
            .await
            .map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())
    }
}

/// The error for work refused because the node is stopping.
pub fn shutting_down() -> ErrorBody {
    ErrorBody::new(ErrorCode::ShuttingDown, "the node is shutting down")
}
