//! The command line: every command and flag, with `--help` text that shows an example.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ufer_wire::protocol::messages::Acks;

/// ufer: streaming storage for real-time analytics.
///
/// Start a node with `ufer serve`, then create tables, write rows and read them back:
///
///   ufer table create events --schema 'id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)'
///   echo '{"id":1,"name":"a","ts":"2026-01-01T00:00:00Z"}' | ufer produce events
///   ufer consume events --columns id,name
///
/// `ufer demo` shows all of it on a throw-away node.
#[derive(Debug, Parser)]
#[command(name = "ufer", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    /// The node to talk to: any shard endpoint, HOST:PORT.
    #[arg(long, global = true, env = "UFER_SERVER", default_value = "127.0.0.1:7070")]
    pub server: SocketAddr,
    /// Data directory of a local node, whose certificate is trusted (default ./ufer-data).
    #[arg(long, global = true, env = "UFER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Trust the CA certificates in this PEM file instead of a local node's certificate.
    #[arg(long, global = true, env = "UFER_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Name the node's certificate must carry.
    #[arg(long, global = true, env = "UFER_SERVER_NAME", default_value = "localhost")]
    pub server_name: String,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (embedded defaults: ./ufer-data, 127.0.0.1, one shard per core on ports
    /// from 7070, a self-signed certificate).
    ///
    /// Example: ufer serve --shards 2 --port 7070
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),
    /// Create, list, describe and drop tables.
    #[command(subcommand)]
    Table(TableCommand),
    /// Create, list and drop databases.
    #[command(subcommand)]
    Database(DatabaseCommand),
    /// Write rows read from standard input (one JSON object per line, or CSV with a header).
    ///
    /// Example: printf '{"id":1,"name":"a"}\n{"id":2,"name":"b"}\n' | ufer produce events
    #[command(verbatim_doc_comment)]
    Produce(ProduceArgs),
    /// Read rows and print them.
    ///
    /// Example: ufer consume events --from earliest --columns id,name --format table
    #[command(verbatim_doc_comment)]
    Consume(ConsumeArgs),
    /// Upsert or delete rows of a primary-key table, read from standard input (JSON lines, or
    /// CSV with a header). A row with "_op":"delete" (a last CSV column `_op` = delete)
    /// deletes its key; every other row is upserted and merged by the table's merge engine.
    ///
    /// Example: printf '{"id":1,"name":"a"}\n{"id":2,"_op":"delete"}\n' | ufer upsert users
    #[command(verbatim_doc_comment)]
    Upsert(UpsertArgs),
    /// Look rows of a primary-key table up by key (or, with --prefix, by bucket-key prefix).
    ///
    /// Example: ufer lookup users --key '{"id":1}' --key '{"id":2}'
    #[command(verbatim_doc_comment)]
    Lookup(LookupArgs),
    /// Print the current rows of a primary-key table (a consistent snapshot per bucket).
    ///
    /// Example: ufer scan users --format table
    #[command(verbatim_doc_comment)]
    Scan(ScanArgs),
    /// Run a SQL query (DataFusion) over the node's tables: a lake-enabled log table is read
    /// from its Iceberg table up to the tiered offsets and from the live log after them, so
    /// every row is seen once; a primary-key table is its current rows. Needs a `ufer`
    /// built with the SQL engine (`cargo build --release -p ufer-node --features sql`).
    ///
    /// Example: ufer sql "SELECT name, count(*) FROM events GROUP BY name" --format table
    #[command(verbatim_doc_comment)]
    Sql(SqlArgs),
    /// A guided tour on a throw-away node: create a table, write, read with and without
    /// projection.
    Demo,
}

/// `ufer serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (flags and UFER_* variables override it).
    #[arg(long, env = "UFER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "UFER_LISTEN")]
    pub listen: Option<String>,
    /// Host clients are told to connect to.
    #[arg(long, env = "UFER_ADVERTISE")]
    pub advertise: Option<String>,
    /// First UDP port; shard k listens on PORT + k (0: any free ports).
    #[arg(long, env = "UFER_PORT")]
    pub port: Option<u16>,
    /// Shards (one per core by default).
    #[arg(long, env = "UFER_SHARDS")]
    pub shards: Option<usize>,
    /// Do not pin shards to cores.
    #[arg(long, env = "UFER_NO_PIN")]
    pub no_pin: bool,
    /// This node's id.
    #[arg(long, env = "UFER_NODE_ID")]
    pub node_id: Option<u32>,
    /// Prometheus endpoint address (`off` for none; default 127.0.0.1:9464, or a free port
    /// when --port is 0).
    #[arg(long, env = "UFER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Microseconds an idle shard spins before parking (0: park at once). Keep it well
    /// below the disk's fdatasync time: io_uring runs fsync in a kernel worker that a
    /// spinning shard keeps off its core (1 000 µs made acks=all 3× slower here).
    #[arg(long, env = "UFER_SPIN_BEFORE_PARK_US")]
    pub spin_before_park_us: Option<u64>,
    /// UDP socket receive/send buffer per shard, in bytes (the kernel caps it).
    #[arg(long, env = "UFER_UDP_BUFFER_BYTES")]
    pub udp_buffer_bytes: Option<usize>,
}

/// `ufer table ...`.
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create a table.
    ///
    /// Example: ufer table create shop.orders --schema 'id BIGINT NOT NULL, amount DECIMAL(10, 2), at TIMESTAMP(3)' --buckets 8 --bucket-key id
    #[command(verbatim_doc_comment)]
    Create(CreateTableArgs),
    /// List the tables of a database (default: `default`).
    List {
        /// The database.
        #[arg(default_value = "default")]
        database: String,
    },
    /// Show a table's definition and each bucket's offsets and size.
    Describe {
        /// `TABLE` or `DATABASE.TABLE`.
        name: String,
    },
    /// Drop a table and its data.
    Drop {
        /// `TABLE` or `DATABASE.TABLE`.
        name: String,
        /// Succeed if it does not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

/// `ufer table create`.
#[derive(Debug, Args)]
pub struct CreateTableArgs {
    /// `TABLE` or `DATABASE.TABLE`.
    pub name: String,
    /// Columns, e.g. 'id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)'.
    #[arg(long)]
    pub schema: String,
    /// Buckets.
    #[arg(long, default_value_t = 1)]
    pub buckets: u32,
    /// Columns whose hash picks a row's bucket (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub bucket_key: Vec<String>,
    /// Primary key columns (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub primary_key: Vec<String>,
    /// Partition column.
    #[arg(long)]
    pub partition_by: Option<String>,
    /// A table property, KEY=VALUE (retention.bytes, retention.ms, segment.bytes, segment.ms;
    /// lake.enabled=true and lake.freshness.ms to tier it to the lake; for primary-key
    /// tables also table.merge-engine, table.delete.behavior, table.changelog.image,
    /// fields.COLUMN.agg, ...).
    #[arg(long = "property")]
    pub properties: Vec<String>,
    /// Succeed if it exists.
    #[arg(long)]
    pub if_not_exists: bool,
}

/// `ufer database ...`.
#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Create a database.
    Create {
        /// Name.
        name: String,
    },
    /// List databases.
    List,
    /// Drop a database.
    Drop {
        /// Name.
        name: String,
        /// Drop its tables too.
        #[arg(long)]
        cascade: bool,
    },
}

/// Row formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
    /// An aligned table (output only).
    Table,
}

/// When a produce is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AcksArg {
    /// Once durable (fdatasync'd).
    All,
    /// Once written, before it is synced.
    Leader,
    /// Without waiting for the node.
    None,
}

impl From<AcksArg> for Acks {
    fn from(arg: AcksArg) -> Self {
        match arg {
            AcksArg::All => Acks::All,
            AcksArg::Leader => Acks::Leader,
            AcksArg::None => Acks::None,
        }
    }
}

/// `ufer produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// `TABLE` or `DATABASE.TABLE`.
    pub name: String,
    /// Input format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// When the node acknowledges.
    #[arg(long, value_enum, default_value_t = AcksArg::All)]
    pub acks: AcksArg,
    /// Rows per batch read from the input.
    #[arg(long, default_value_t = 8192)]
    pub batch_rows: usize,
}

/// `ufer consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// `TABLE` or `DATABASE.TABLE`.
    pub name: String,
    /// earliest, latest, an offset, or an ISO-8601 time such as 2026-01-01T00:00:00Z.
    #[arg(long, default_value = "earliest")]
    pub from: String,
    /// Columns to read (comma-separated, in the order to print); projected on the node.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Stop after this many rows.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Keep reading new rows as they arrive.
    #[arg(long)]
    pub follow: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Only these buckets (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub buckets: Option<Vec<u32>>,
}

/// `ufer upsert`.
#[derive(Debug, Args)]
pub struct UpsertArgs {
    /// `TABLE` or `DATABASE.TABLE`.
    pub name: String,
    /// Input format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// When the node acknowledges.
    #[arg(long, value_enum, default_value_t = AcksArg::All)]
    pub acks: AcksArg,
    /// Partial update: only these columns are written (comma-separated, with the key).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Rows per request read from the input.
    #[arg(long, default_value_t = 4096)]
    pub batch_rows: usize,
}

/// `ufer lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// `TABLE` or `DATABASE.TABLE`.
    pub name: String,
    /// A key as a JSON object of the key columns (repeat for several).
    #[arg(long = "key", required = true)]
    pub keys: Vec<String>,
    /// The keys are bucket-key prefixes: print every row with that bucket key.
    #[arg(long)]
    pub prefix: bool,
    /// Columns to print (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
}

/// `ufer sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query.
    pub query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The node's lake catalog URI (default: the sqlite file in the data directory).
    #[arg(long, env = "UFER_LAKE_CATALOG_URI")]
    pub lake_catalog_uri: Option<String>,
    /// The node's lake warehouse (default: the data directory's lake/warehouse).
    #[arg(long, env = "UFER_LAKE_WAREHOUSE")]
    pub lake_warehouse: Option<String>,
    /// The node's lake catalog name.
    #[arg(long, env = "UFER_LAKE_CATALOG_NAME", default_value = crate::config::CATALOG_NAME_DEFAULT)]
    pub lake_catalog_name: String,
}

/// `ufer scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// `TABLE` or `DATABASE.TABLE`.
    pub name: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Only these buckets (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub buckets: Option<Vec<u32>>,
}
