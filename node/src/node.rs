//! Starting and stopping a node: one pinned glommio executor per shard, a QUIC endpoint per
//! shard on its own port, the channel mesh between shards, the catalog loaded at start;
//! graceful shutdown (stop accepting, finish in-flight requests, sync, close).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};
use ufer_io::quic_runtime::{bind_udp, GlommioRuntime};
use ufer_io::DataDir;
use ufer_shard::{Clock, SystemClock};
use ufer_wire::protocol::messages::NodeInfo;

use crate::api::handle_message;
use crate::catalog::file::TABLES_DIR_NAME;
use crate::catalog::{file, Catalog, SharedCatalog};
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::lake::{serve_tier_requests, tier_channel, LakeMetrics, LakeService, TierRequest};
use crate::limits::SHARD_CHANNEL_CAPACITY;
use crate::metrics::{ShardMetrics, ShardMetricsSnapshot};
use crate::metrics_http::MetricsServer;
use crate::server::serve;
use crate::shard::{Shard, ShardMessage};

/// I/O memory glommio reserves per shard executor.
const SHARD_IO_MEMORY_BYTES: usize = 8 * 1024 * 1024;

/// Longest a shutdown waits for in-flight requests before closing connections.
const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(30);
/// How long a stopping shard waits for its UDP port to be released.
const PORT_RELEASE_WAIT_MAX: Duration = Duration::from_secs(2);
/// How long `start` waits for every shard to be serving.
const SHARD_START_MAX: Duration = Duration::from_secs(60);

/// What a shard reports once: serving, or why it could not start.
type Readiness = (usize, Result<(), String>);

struct ShardThread {
    join: glommio::ExecutorJoinHandle<Result<(), String>>,
    shutdown: oneshot::Sender<()>,
    metrics: Arc<ShardMetrics>,
}

/// A running node.
pub struct NodeHandle {
    shards: Vec<ShardThread>,
    lake: Option<LakeService>,
    metrics_server: Option<MetricsServer>,
    host: String,
    ports: Vec<u16>,
    data_dir: PathBuf,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("host", &self.host)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// The address of each shard's endpoint, by shard number.
    pub fn shard_addresses(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|port| {
                format!("{}:{port}", self.host)
                    .parse()
                    .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], *port)))
            })
            .collect()
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the Prometheus endpoint listens, if it runs.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::address)
    }

    /// Each shard's counters.
    pub fn metrics(&self) -> Vec<ShardMetricsSnapshot> {
        self.shards.iter().map(|shard| shard.metrics.snapshot()).collect()
    }

    /// The tiering thread's counters.
    pub fn lake_metrics(&self) -> Option<Arc<LakeMetrics>> {
        self.lake.as_ref().map(LakeService::metrics)
    }

    /// Stops the node gracefully and waits for it.
    pub fn shutdown(self) -> Result<(), NodeError> {
        if let Some(server) = self.metrics_server {
            server.stop();
        }
        // Tiering first: it reads through the shards.
        if let Some(lake) = self.lake {
            lake.stop();
        }
        let mut joins = Vec::new();
        for shard in self.shards {
            let _ = shard.shutdown.send(());
            joins.push(shard.join);
        }
        let mut failure = None;
        for (index, join) in joins.into_iter().enumerate() {
            match join.join() {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => {
                    failure = failure.or(Some(NodeError::Shard { shard: index, reason }))
                }
                Err(error) => {
                    failure = failure
                        .or(Some(NodeError::Shard { shard: index, reason: error.to_string() }))
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Starts a node.
pub fn start(mut config: NodeConfig) -> Result<NodeHandle, NodeError> {
    config.validate().map_err(NodeError::Startup)?;
    resolve_data_dir(&mut config)?;
    let identity = crate::tls::load_or_create(&config.data_dir, &config.advertised_host)?;
    let server_config = crate::tls::server_config(&identity)?;
    let (catalog, catalog_exists) = match file::load(&config.data_dir)? {
        Some(catalog) => (catalog, true),
        None => (Catalog::new(SystemClock.now_ms()), false),
    };
    let catalog = Arc::new(catalog);

    let sockets = bind_shard_sockets(&config)?;
    let ports: Vec<u16> = sockets
        .iter()
        .map(|socket| socket.local_addr().map_or(0, |address| address.port()))
        .collect();
    let node = NodeInfo {
        node_id: config.node_id,
        host: config.advertised_host.clone(),
        shard_ports: ports.clone(),
    };
    let mesh = MeshBuilder::<ShardMessage, _>::full(config.shard_count, SHARD_CHANNEL_CAPACITY);
    let shared_catalog = SharedCatalog::new(catalog.clone());
    let (tier_senders, mut tier_receivers): (Vec<_>, Vec<_>) =
        (0..config.shard_count).map(|_| tier_channel()).unzip();

    let (ready_sender, ready_receiver) = std::sync::mpsc::channel::<Readiness>();
    let mut shards = Vec::with_capacity(config.shard_count);
    for (index, socket) in sockets.into_iter().enumerate() {
        let context = ShardContext {
            index,
            config: config.clone(),
            node: node.clone(),
            metrics: Arc::new(ShardMetrics::default()),
            catalog: catalog.clone(),
            catalog_exists,
            server_config: server_config.clone(),
            tier_requests: tier_receivers.remove(0),
            lake_catalog: (index == 0).then(|| shared_catalog.clone()),
        };
        shards.push(spawn_shard(context, mesh.clone(), socket, ready_sender.clone())?);
    }
    drop(ready_sender);
    let mut node = NodeHandle {
        shards,
        lake: None,
        metrics_server: None,
        host: config.advertised_host.clone(),
        ports,
        data_dir: config.data_dir.clone(),
    };
    if let Err(failure) = wait_until_serving(node.shards.len(), &ready_receiver) {
        return stopped_with(node, failure);
    }
    match LakeService::start(&config, shared_catalog, tier_senders) {
        Ok(lake) => node.lake = Some(lake),
        Err(error) => return stopped_with(node, error),
    }
    if let Some(listen) = &config.metrics_listen {
        let counters = node.shards.iter().map(|shard| shard.metrics.clone()).collect();
        match MetricsServer::start(listen, counters, node.lake_metrics()) {
            Ok(server) => node.metrics_server = Some(server),
            Err(error) => return stopped_with(node, error),
        }
    }
    Ok(node)
}

/// Makes `config.data_dir` absolute and creates it if it is missing.
fn resolve_data_dir(config: &mut NodeConfig) -> Result<(), NodeError> {
    config.data_dir = std::path::absolute(&config.data_dir).map_err(|error| {
        NodeError::Startup(format!("resolving {}: {error}", config.data_dir.display()))
    })?;
    std::fs::create_dir_all(&config.data_dir).map_err(|error| {
        NodeError::Startup(format!("creating {}: {error}", config.data_dir.display()))
    })
}

/// One UDP socket per shard: on consecutive ports from `base_port`, or on ports the system
/// picks when it is 0.
fn bind_shard_sockets(config: &NodeConfig) -> Result<Vec<std::net::UdpSocket>, NodeError> {
    let mut sockets = Vec::with_capacity(config.shard_count);
    for shard in 0..config.shard_count {
        let port = if config.base_port == 0 { 0 } else { config.base_port + shard as u16 };
        let address: SocketAddr =
            format!("{}:{port}", config.listen_host).parse().map_err(|error| {
                NodeError::Startup(format!("listen address {}: {error}", config.listen_host))
            })?;
        let socket = bind_udp(address, config.udp_buffer_size_bytes)
            .map_err(|error| NodeError::Startup(format!("binding UDP {address}: {error}")))?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Starts shard `context.index` on an executor of its own; it reports on `ready` once it
/// serves, or why it could not start.
fn spawn_shard(
    context: ShardContext,
    mesh: MeshBuilder<ShardMessage, Full>,
    socket: std::net::UdpSocket,
    ready: std::sync::mpsc::Sender<Readiness>,
) -> Result<ShardThread, NodeError> {
    let index = context.index;
    let metrics = context.metrics.clone();
    let (shutdown, shutdown_signal) = oneshot::channel();
    let placement =
        if context.config.pin_shards { Placement::Fixed(index) } else { Placement::Unbound };
    let mut builder = LocalExecutorBuilder::new(placement)
        .name(&format!("ufer-shard-{index}"))
        .io_memory(SHARD_IO_MEMORY_BYTES);
    if !context.config.spin_before_park.is_zero() {
        builder = builder.spin_before_park(context.config.spin_before_park);
    }
    let join = builder
        .spawn(move || async move {
            let result = shard_main(context, mesh, socket, shutdown_signal, &ready).await;
            if let Err(reason) = &result {
                let _ = ready.send((index, Err(reason.clone())));
            }
            result
        })
        .map_err(|error| NodeError::Startup(format!("starting shard {index}: {error}")))?;
    Ok(ShardThread { join, shutdown, metrics })
}

/// Waits until each of `shard_count` shards reports serving. Serving only once every shard
/// is: a shard that failed to start (its data directory, the catalog) fails the start,
/// instead of leaving its buckets unanswered.
fn wait_until_serving(
    shard_count: usize,
    ready: &std::sync::mpsc::Receiver<Readiness>,
) -> Result<(), NodeError> {
    let mut serving = 0;
    while serving < shard_count {
        match ready.recv_timeout(SHARD_START_MAX) {
            Ok((_, Ok(()))) => serving += 1,
            Ok((shard, Err(reason))) => return Err(NodeError::Shard { shard, reason }),
            Err(_) => {
                return Err(NodeError::Startup(format!(
                    "{} of {} shards serving after {} s",
                    serving,
                    shard_count,
                    SHARD_START_MAX.as_secs()
                )))
            }
        }
    }
    Ok(())
}

/// Stops what of a starting node already runs and fails the start with `error`.
fn stopped_with(node: NodeHandle, error: NodeError) -> Result<NodeHandle, NodeError> {
    let _ = node.shutdown();
    Err(error)
}

struct ShardContext {
    index: usize,
    config: NodeConfig,
    node: NodeInfo,
    metrics: Arc<ShardMetrics>,
    catalog: Arc<Catalog>,
    catalog_exists: bool,
    server_config: quinn::ServerConfig,
    tier_requests: futures_channel::mpsc::UnboundedReceiver<TierRequest>,
    lake_catalog: Option<SharedCatalog>,
}

async fn shard_main(
    context: ShardContext,
    mesh: MeshBuilder<ShardMessage, Full>,
    socket: std::net::UdpSocket,
    shutdown: oneshot::Receiver<()>,
    ready: &std::sync::mpsc::Sender<Readiness>,
) -> Result<(), String> {
    let (senders, mut receivers) =
        mesh.join().await.map_err(|_| "joining the shard mesh failed".to_string())?;
    let config = Rc::new(context.config);
    let catalog_dir = if context.index == 0 {
        Some(
            DataDir::open(file::catalog_dir(&config.data_dir))
                .await
                .map_err(|error| error.to_string())?,
        )
    } else {
        None
    };
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let mut shard = Shard::new(
        context.index,
        config.clone(),
        context.node,
        senders,
        context.metrics,
        clock,
        context.catalog.clone(),
        catalog_dir,
    );
    // KV flushes and compactions get a tenth of the shard's time when requests are waiting.
    let background = glommio::executor().create_task_queue(
        Shares::Static(100),
        Latency::NotImportant,
        "kv-background",
    );
    shard.background_queue = Some(background);
    shard.lake_catalog = context.lake_catalog;
    let shard = Rc::new(shard);
    if context.index == 0 {
        prepare_data_dir(&shard, &context.catalog, context.catalog_exists).await?;
    }
    for (_, stream) in receivers.streams() {
        glommio::spawn_local(receive_messages(shard.clone(), stream)).detach();
    }
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(context.server_config),
        socket,
        Arc::new(GlommioRuntime),
    )
    .map_err(|error| format!("QUIC endpoint: {error}"))?;
    glommio::spawn_local(serve(shard.clone(), endpoint.clone())).detach();
    let retention = glommio::spawn_local(retention_loop(shard.clone()));
    glommio::spawn_local(serve_tier_requests(shard.clone(), context.tier_requests)).detach();
    let _ = ready.send((context.index, Ok(())));
    panic_if_asked(context.index);

    let _ = shutdown.await;
    stop_serving(&shard, endpoint, retention).await;
    Ok(())
}

/// For the test that a shard's panic stops the node: `UFER_TEST_SHARD_PANIC=N` makes shard
/// N panic once it serves.
fn panic_if_asked(index: usize) {
    let asked = std::env::var("UFER_TEST_SHARD_PANIC").ok().and_then(|value| value.parse().ok());
    if asked == Some(index) {
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            panic!("shard {index} panics, as UFER_TEST_SHARD_PANIC asks");
        })
        .detach();
    }
}

/// Handles each message another shard sends on `stream`, each in a task of its own.
async fn receive_messages(shard: Rc<Shard>, stream: ConnectedReceiver<ShardMessage>) {
    while let Some(message) = stream.recv().await {
        let shard = shard.clone();
        glommio::spawn_local(async move { handle_message(&shard, message).await }).detach();
    }
}

/// Graceful shutdown of one shard: stop accepting, let in-flight requests finish (up to
/// [`SHUTDOWN_DRAIN_MAX`]), stop the retention loop, close connections and logs, and wait
/// for the endpoint's port to be released.
async fn stop_serving(shard: &Shard, endpoint: quinn::Endpoint, retention: glommio::Task<()>) {
    shard.draining.set(true);
    shard.drain_started.notify_all();
    endpoint.set_server_config(None);
    let drained = async {
        while shard.active_requests.get() > 0 {
            let seen = shard.request_finished.epoch();
            if shard.active_requests.get() == 0 {
                break;
            }
            shard.request_finished.changed(seen).await;
        }
    };
    futures_util::future::select(Box::pin(drained), glommio::timer::Timer::new(SHUTDOWN_DRAIN_MAX))
        .await;
    drop(retention);
    endpoint.close(0u32.into(), b"node shutting down");
    shard.close_all().await;
    futures_util::future::select(
        Box::pin(endpoint.wait_idle()),
        glommio::timer::Timer::new(Duration::from_secs(2)),
    )
    .await;
    let address = endpoint.local_addr().ok();
    drop(endpoint);
    if let Some(address) = address {
        wait_until_released(address).await;
    }
    shard.peers.close();
}

/// Waits (up to [`PORT_RELEASE_WAIT_MAX`]) until the endpoint's UDP port can be bound again.
/// The socket closes only once quinn's endpoint task has ended and the io_uring receive
/// waiting on it has been cancelled, both on this executor: stopping it first would leave
/// the port bound until the kernel tore the ring down, and a node restarted in the same
/// process could not bind it.
async fn wait_until_released(address: SocketAddr) {
    let deadline = std::time::Instant::now() + PORT_RELEASE_WAIT_MAX;
    while std::net::UdpSocket::bind(address).is_err() && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Shard 0 at start: write the catalog on first start; remove the files of tables the
/// catalog dropped (a crash between a drop and the deletion of its files). Any other
/// directory the catalog does not know is left as it is, and said so.
async fn prepare_data_dir(
    shard: &Shard,
    catalog: &Catalog,
    catalog_exists: bool,
) -> Result<(), String> {
    if !catalog_exists {
        if let Some(dir) = &shard.catalog_dir {
            file::persist(dir, catalog).await.map_err(|error| error.to_string())?;
        }
    }
    let tables_dir = shard.config.data_dir.join(TABLES_DIR_NAME);
    if let Ok(entries) = std::fs::read_dir(&tables_dir) {
        for entry in entries.flatten() {
            let table_id = entry.file_name().to_str().and_then(|name| name.parse::<u64>().ok());
            match table_id {
                Some(table_id) if catalog.table_by_id(table_id).is_ok() => {}
                Some(table_id) if catalog.dropped(table_id) => {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                _ => eprintln!(
                    "ufer: {} is not a table of the catalog, nor one it dropped: left as it is",
                    entry.path().display()
                ),
            }
        }
    }
    Ok(())
}

async fn retention_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(shard.config.retention_check_interval).await;
        shard.snapshot_stale_kvs().await;
        shard.apply_retention().await;
    }
}
