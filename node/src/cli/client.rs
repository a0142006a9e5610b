//! What every client command shares: the connection the global flags describe, and table
//! names as they are typed (`TABLE` or `DATABASE.TABLE`).

use std::path::PathBuf;
use std::time::Duration;

use ufer_wire::client::{ClientConfig, Connection, Trust};
use ufer_wire::protocol::messages::TablePath;

use crate::catalog::DEFAULT_DATABASE;
use crate::cli::args::Cli;

/// The default data directory of a local node.
pub const DATA_DIR_DEFAULT: &str = "ufer-data";

/// A client connection as the flags describe it.
pub fn connect(cli: &Cli) -> Result<Connection, String> {
    let trust = match &cli.ca_file {
        Some(file) => Trust::CaFile(file.clone()),
        None => {
            Trust::DataDir(cli.data_dir.clone().unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)))
        }
    };
    let config = ClientConfig {
        bootstrap: cli.server,
        server_name: cli.server_name.clone(),
        trust,
        request_timeout: Duration::from_secs(30),
    };
    Connection::new(config).map_err(|error| error.to_string())
}

/// `TABLE` (in the default database) or `DATABASE.TABLE`.
pub fn table_path(name: &str) -> TablePath {
    match name.split_once('.') {
        Some((database, table)) => TablePath::new(database, table),
        None => TablePath::new(DEFAULT_DATABASE, name),
    }
}
