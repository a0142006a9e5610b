//! The `ufer` binary: runs a node, or talks to one (see `ufer --help`).

use clap::Parser;

fn main() {
    let cli = ufer_node::cli::args::Cli::parse();
    if let Err(error) = ufer_node::cli::run(cli) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
