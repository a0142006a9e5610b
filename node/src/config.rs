//! [`NodeConfig`]: what one `ufer serve` process needs, from a TOML file, `UFER_*`
//! environment variables and flags (flags win, then the environment, then the file).
//!
//! The embedded default needs nothing: data in `./ufer-data`, listening on `127.0.0.1`,
//! one shard per available core on consecutive UDP ports from 7070, a self-signed
//! certificate generated on first start and kept in the data directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use ufer_shard::{KvConfig, LogConfig};

/// Default first UDP port; shard `k` listens on `base_port + k`.
pub const BASE_PORT_DEFAULT: u16 = 7070;

/// Default port of the Prometheus metrics endpoint (the exporter port range's usual pick).
pub const METRICS_PORT_DEFAULT: u16 = 9464;

/// Default UDP socket buffer size of a shard endpoint.
pub const UDP_BUFFER_SIZE_DEFAULT_BYTES: usize =
    ufer_io::quic_runtime::UDP_SOCKET_BUFFER_SIZE_BYTES;

/// Most shards a node runs.
pub const SHARD_COUNT_MAX: usize = 256;

/// Shortest `request_read_timeout`: below it a client across any real network could not
/// send a request before being cut off.
pub const REQUEST_READ_TIMEOUT_MIN: Duration = Duration::from_millis(100);

/// Smallest `fetch_size_max_bytes`: one direct-I/O block; below it every fetch would carry
/// a single batch and consumers would crawl.
pub const FETCH_SIZE_MIN_BYTES: u32 = 4096;

/// Shortest `retention_check_interval`: below it the shards would do little but look at
/// their segments.
pub const RETENTION_CHECK_INTERVAL_MIN: Duration = Duration::from_millis(10);

/// Default catalog name (pyiceberg and other readers must use the same one).
pub const CATALOG_NAME_DEFAULT: &str = "ufer";

/// How the node reaches its lake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeConfig {
    /// Iceberg SQL catalog URI (`sqlite:…`); `None`: `<data_dir>/lake/catalog.db`.
    pub catalog_uri: Option<String>,
    /// Warehouse location (a local directory, `file:///…` or a path); `None`:
    /// `<data_dir>/lake/warehouse`.
    pub warehouse: Option<String>,
    /// The catalog's name (readers must use the same).
    pub catalog_name: String,
    /// Pin the tiering thread to this CPU; `None`: unpinned, so it never holds a shard's core.
    pub core: Option<usize>,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            catalog_uri: None,
            warehouse: None,
            catalog_name: CATALOG_NAME_DEFAULT.into(),
            core: None,
        }
    }
}

impl LakeConfig {
    /// The catalog URI for a node with data in `data_dir`.
    pub fn catalog_uri(&self, data_dir: &Path) -> String {
        self.catalog_uri.clone().unwrap_or_else(|| {
            format!("sqlite:{}?mode=rwc", data_dir.join("lake").join("catalog.db").display())
        })
    }

    /// The warehouse location for a node with data in `data_dir`.
    pub fn warehouse(&self, data_dir: &Path) -> String {
        self.warehouse.clone().unwrap_or_else(|| {
            format!("file://{}", data_dir.join("lake").join("warehouse").display())
        })
    }
}

/// How a node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Where tables, the catalog and the certificate live.
    pub data_dir: PathBuf,
    /// Address the endpoints bind to.
    pub listen_host: String,
    /// Host clients are told to connect to (defaults to `listen_host`).
    pub advertised_host: String,
    /// First UDP port (0: any free ports, for tests).
    pub base_port: u16,
    /// Shards (executor threads).
    pub shard_count: usize,
    /// Pin shard `k` to CPU `k`.
    pub pin_shards: bool,
    /// How long an executor spins before parking when idle (0: park at once). Waking a
    /// parked executor costs tens of microseconds on virtual machines; spinning longer than
    /// a fraction of the disk's fdatasync time hurts, because io_uring runs fsync in a
    /// kernel worker that the spinning shard keeps off its core (measured: 1 000 µs took
    /// produce acks=all p50 from 0.85 to 2.9 ms pinned, 1.35 ms unpinned).
    pub spin_before_park: Duration,
    /// This node's id in metadata answers.
    pub node_id: u32,
    /// Log limits of every bucket (tables may lower retention and segment sizes).
    pub log: LogConfig,
    /// KV limits of every bucket of a primary-key table.
    pub kv: KvConfig,
    /// Longest a fetch may long-poll.
    pub fetch_wait_max: Duration,
    /// Most bytes of batches a fetch answer carries, and one bucket's part of it, whatever
    /// the request asks (a read still returns at least one whole batch).
    pub fetch_size_max_bytes: u32,
    /// Bytes of request bodies a shard holds in memory at once, counted as they arrive;
    /// requests beyond wait.
    pub inflight_request_bytes_max: usize,
    /// QUIC connections one shard keeps open at once; more are refused.
    pub connections_per_shard_max: usize,
    /// Longest a client may take to send a whole request frame (header and body) once its
    /// stream is open; a stream that stalls is answered with an error then.
    pub request_read_timeout: Duration,
    /// Receive and send buffer asked of the kernel for each shard's UDP socket (capped by
    /// `net.core.rmem_max` / `wmem_max`); bursts beyond it are dropped and retransmitted.
    pub udp_buffer_size_bytes: usize,
    /// Where the Prometheus metrics endpoint (`GET /metrics`) listens; `None`: no endpoint.
    pub metrics_listen: Option<String>,
    /// The lake lake-enabled tables are tiered to.
    pub lake: LakeConfig,
    /// How often each shard applies retention (and snapshots stale KVs).
    pub retention_check_interval: Duration,
}

impl NodeConfig {
    /// The embedded default.
    pub fn production() -> Self {
        Self {
            data_dir: PathBuf::from("ufer-data"),
            listen_host: "127.0.0.1".into(),
            advertised_host: "127.0.0.1".into(),
            base_port: BASE_PORT_DEFAULT,
            shard_count: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            pin_shards: true,
            spin_before_park: Duration::from_micros(50),
            node_id: 1,
            log: LogConfig::production(),
            kv: KvConfig::production(),
            fetch_wait_max: Duration::from_secs(30),
            fetch_size_max_bytes: 64 * 1024 * 1024,
            inflight_request_bytes_max: 256 * 1024 * 1024,
            request_read_timeout: Duration::from_secs(30),
            connections_per_shard_max: 4096,
            udp_buffer_size_bytes: UDP_BUFFER_SIZE_DEFAULT_BYTES,
            metrics_listen: Some(format!("127.0.0.1:{METRICS_PORT_DEFAULT}")),
            lake: LakeConfig::default(),
            retention_check_interval: Duration::from_secs(60),
        }
    }

    /// Small limits for tests: two shards on free ports, unpinned, tiny segments.
    pub fn test_min(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            base_port: 0,
            shard_count: 2,
            pin_shards: false,
            spin_before_park: Duration::ZERO,
            log: LogConfig::test_min(),
            kv: KvConfig::test_min(),
            inflight_request_bytes_max: crate::limits::request_body_size_max() + 16 * 1024 * 1024,
            request_read_timeout: Duration::from_secs(2),
            connections_per_shard_max: 16,
            fetch_size_max_bytes: 1024 * 1024,
            metrics_listen: None,
            ..Self::production()
        }
    }

    /// Checks the relations between settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.shard_count == 0 || self.shard_count > SHARD_COUNT_MAX {
            return Err(format!(
                "shard_count must be in 1..={SHARD_COUNT_MAX}, not {}",
                self.shard_count
            ));
        }
        if self.base_port != 0
            && usize::from(self.base_port) + self.shard_count > usize::from(u16::MAX)
        {
            return Err(format!(
                "ports {}.. for {} shards run past 65535",
                self.base_port, self.shard_count
            ));
        }
        if self.lake.catalog_name.trim().is_empty() {
            return Err("the lake catalog name must not be empty".into());
        }
        if let Some(warehouse) = &self.lake.warehouse {
            if !(warehouse.starts_with("file:/") || warehouse.starts_with('/')) {
                return Err(format!(
                    "lake warehouse {warehouse:?}: only a local directory (an absolute path or file:///...) is built in"
                ));
            }
        }
        self.validate_client_limits()?;
        if self.inflight_request_bytes_max < crate::limits::request_body_size_max() {
            return Err("inflight_request_bytes_max must hold at least one largest request".into());
        }
        self.log.validate()
    }

    /// Limits that, set too low, would have the node time out, refuse or starve every
    /// client (or spin on housekeeping): refused at start rather than served badly.
    fn validate_client_limits(&self) -> Result<(), String> {
        if self.request_read_timeout < REQUEST_READ_TIMEOUT_MIN {
            return Err(format!(
                "request_read_timeout must be at least {REQUEST_READ_TIMEOUT_MIN:?}, not {:?}",
                self.request_read_timeout
            ));
        }
        if self.connections_per_shard_max == 0 {
            return Err(
                "connections_per_shard_max must be at least 1 (0 refuses every client)".into()
            );
        }
        if self.fetch_size_max_bytes < FETCH_SIZE_MIN_BYTES {
            return Err(format!(
                "fetch_size_max_bytes must be at least {FETCH_SIZE_MIN_BYTES}, not {}",
                self.fetch_size_max_bytes
            ));
        }
        if self.retention_check_interval < RETENTION_CHECK_INTERVAL_MIN {
            return Err(format!(
                "retention_check_interval must be at least {RETENTION_CHECK_INTERVAL_MIN:?}, not {:?}",
                self.retention_check_interval
            ));
        }
        Ok(())
    }

    /// Applies a TOML file's settings.
    pub fn apply_file(&mut self, text: &str) -> Result<(), String> {
        let file: FileConfig = toml::from_str(text).map_err(|error| error.to_string())?;
        if let Some(value) = file.data_dir {
            self.data_dir = value;
        }
        if let Some(value) = file.listen_host {
            self.advertised_host = value.clone();
            self.listen_host = value;
        }
        if let Some(value) = file.advertised_host {
            self.advertised_host = value;
        }
        if let Some(value) = file.base_port {
            self.base_port = value;
        }
        if let Some(value) = file.shard_count {
            self.shard_count = value;
        }
        if let Some(value) = file.pin_shards {
            self.pin_shards = value;
        }
        if let Some(value) = file.spin_before_park_us {
            self.spin_before_park = Duration::from_micros(value);
        }
        if let Some(value) = file.request_read_timeout_ms {
            self.request_read_timeout = Duration::from_millis(value);
        }
        if let Some(value) = file.udp_buffer_bytes {
            self.udp_buffer_size_bytes = value;
        }
        if let Some(value) = file.metrics_listen {
            self.metrics_listen = (value != "off").then_some(value);
        }
        if let Some(value) = file.node_id {
            self.node_id = value;
        }
        if let Some(value) = file.segment_size_max_bytes {
            self.log.segment_size_max_bytes = value;
        }
        if let Some(value) = file.retention_size_max_bytes {
            self.log.retention_size_max_bytes = Some(value);
        }
        if let Some(value) = file.retention_age_max_s {
            self.log.retention_age_max = Some(Duration::from_secs(value));
        }
        if let Some(value) = file.lake_catalog_uri {
            self.lake.catalog_uri = Some(value);
        }
        if let Some(value) = file.lake_warehouse {
            self.lake.warehouse = Some(value);
        }
        if let Some(value) = file.lake_catalog_name {
            self.lake.catalog_name = value;
        }
        if let Some(value) = file.lake_core {
            self.lake.core = Some(value);
        }
        Ok(())
    }
}

/// The TOML file: every setting optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen_host: Option<String>,
    advertised_host: Option<String>,
    base_port: Option<u16>,
    shard_count: Option<usize>,
    pin_shards: Option<bool>,
    spin_before_park_us: Option<u64>,
    udp_buffer_bytes: Option<usize>,
    request_read_timeout_ms: Option<u64>,
    metrics_listen: Option<String>,
    node_id: Option<u32>,
    segment_size_max_bytes: Option<u64>,
    retention_size_max_bytes: Option<u64>,
    retention_age_max_s: Option<u64>,
    lake_catalog_uri: Option<String>,
    lake_warehouse: Option<String>,
    lake_catalog_name: Option<String>,
    lake_core: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_override_defaults_and_unknown_keys_are_refused() {
        let mut config = NodeConfig::production();
        config
            .apply_file("data_dir = \"/var/lib/ufer\"\nbase_port = 9000\nshard_count = 3\nretention_age_max_s = 60\nmetrics_listen = \"off\"\nudp_buffer_bytes = 1048576\n")
            .unwrap();
        assert_eq!(config.metrics_listen, None);
        assert_eq!(config.udp_buffer_size_bytes, 1 << 20);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/ufer"));
        assert_eq!((config.base_port, config.shard_count), (9000, 3));
        assert_eq!(config.log.retention_age_max, Some(Duration::from_secs(60)));
        config.validate().unwrap();
        config
            .apply_file(
                "lake_warehouse = \"/srv/lake\"\nlake_core = 1\nlake_catalog_name = \"prod\"\n",
            )
            .unwrap();
        assert_eq!(config.lake.warehouse.as_deref(), Some("/srv/lake"));
        assert_eq!((config.lake.core, config.lake.catalog_name.as_str()), (Some(1), "prod"));
        config.validate().unwrap();
        config.lake.warehouse = Some("s3://bucket/lake".into());
        assert!(config.validate().unwrap_err().contains("local directory"));
        config.lake.warehouse = None;
        assert!(config.apply_file("shards = 3").is_err());
        config.shard_count = 0;
        assert!(config.validate().is_err());
        NodeConfig::test_min(PathBuf::from("x")).validate().unwrap();
    }

    #[test]
    fn settings_that_would_starve_every_client_are_refused_at_start() {
        let base = NodeConfig::test_min(PathBuf::from("x"));
        let refused = |change: fn(&mut NodeConfig), names: &str| {
            let mut config = base.clone();
            change(&mut config);
            let message = config.validate().unwrap_err();
            assert!(message.contains(names), "{message}");
        };
        refused(|c| c.request_read_timeout = Duration::ZERO, "request_read_timeout");
        refused(|c| c.request_read_timeout = Duration::from_millis(99), "request_read_timeout");
        refused(|c| c.connections_per_shard_max = 0, "connections_per_shard_max");
        refused(|c| c.fetch_size_max_bytes = 0, "fetch_size_max_bytes");
        refused(|c| c.fetch_size_max_bytes = 4095, "fetch_size_max_bytes");
        refused(|c| c.retention_check_interval = Duration::ZERO, "retention_check_interval");
        let mut lowest = base.clone();
        lowest.request_read_timeout = REQUEST_READ_TIMEOUT_MIN;
        lowest.connections_per_shard_max = 1;
        lowest.fetch_size_max_bytes = FETCH_SIZE_MIN_BYTES;
        lowest.retention_check_interval = RETENTION_CHECK_INTERVAL_MIN;
        lowest.validate().unwrap();
    }

    #[test]
    fn the_embedded_default_lives_in_the_data_dir() {
        let config = LakeConfig::default();
        let dir = Path::new("/data");
        assert_eq!(config.catalog_uri(dir), "sqlite:/data/lake/catalog.db?mode=rwc");
        assert_eq!(config.warehouse(dir), "file:///data/lake/warehouse");
    }
}
