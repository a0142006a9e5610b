//! `ufer-bench server` (internal): the node side of an embedded run, as
//! [`crate::target::Embedded`] starts it in a child process.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::BenchError;
use crate::server::{self, ServerOptions};

/// The options of `ufer-bench server`, as the parent passes them.
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    shards: usize,
    #[arg(long)]
    spin_before_park_us: u64,
    #[arg(long)]
    udp_buffer_bytes: usize,
    #[arg(long)]
    no_pin: bool,
}

/// Runs the node until standard input closes.
pub fn run(args: &ServerArgs) -> Result<(), BenchError> {
    server::run(&ServerOptions {
        data_dir: args.data_dir.clone(),
        shards: args.shards,
        pin: !args.no_pin,
        spin_before_park: Duration::from_micros(args.spin_before_park_us),
        udp_buffer_size_bytes: args.udp_buffer_bytes,
    })
}
