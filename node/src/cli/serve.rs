//! `ufer serve`: run a node until SIGINT or SIGTERM, then stop it gracefully.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::args::{Cli, ServeArgs};
use crate::config::NodeConfig;

/// Makes a panic anywhere in the process stop it at once, saying where: a shard whose
/// executor died would leave the node half alive — its buckets unanswered, the other shards
/// waiting on it for ever. Every acknowledged write is durable before its answer, so the next
/// start recovers everything acknowledged.
fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let thread = std::thread::current();
        eprintln!(
            "ufer: thread {} panicked; the node stops now rather than serve without it \
             (acknowledged writes are durable; the next start recovers)",
            thread.name().unwrap_or("unnamed")
        );
        std::process::abort();
    }));
}

pub fn run(cli: &Cli, args: &ServeArgs) -> Result<(), String> {
    let mut config = NodeConfig::production();
    if let Some(file) = &args.config {
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("reading {}: {error}", file.display()))?;
        config.apply_file(&text).map_err(|error| format!("{}: {error}", file.display()))?;
    }
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = &args.listen {
        config.listen_host = listen.clone();
        config.advertised_host = listen.clone();
    }
    if let Some(advertise) = &args.advertise {
        config.advertised_host = advertise.clone();
    }
    if let Some(port) = args.port {
        config.base_port = port;
        if port == 0 && config.metrics_listen == NodeConfig::production().metrics_listen {
            // Free ports for everything: several nodes side by side (tests, benchmarks).
            config.metrics_listen = Some(format!("{}:0", config.listen_host));
        }
    }
    if let Some(listen) = &args.metrics_listen {
        config.metrics_listen = (listen != "off").then(|| listen.clone());
    }
    if let Some(spin) = args.spin_before_park_us {
        config.spin_before_park = std::time::Duration::from_micros(spin);
    }
    if let Some(bytes) = args.udp_buffer_bytes {
        config.udp_buffer_size_bytes = bytes;
    }
    if let Some(shards) = args.shards {
        config.shard_count = shards;
    }
    if args.no_pin {
        config.pin_shards = false;
    }
    if let Some(node_id) = args.node_id {
        config.node_id = node_id;
    }
    abort_on_panic();
    // Register for signals before starting, so none is missed.
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|error| format!("handling signals: {error}"))?;
    let node = crate::start(config.clone()).map_err(|error| error.to_string())?;
    let addresses: Vec<String> = node.shard_addresses().iter().map(ToString::to_string).collect();
    let metrics = node.metrics_address().map_or_else(
        || "no metrics endpoint".to_string(),
        |address| format!("metrics on http://{address}/metrics"),
    );
    println!(
        "ufer node {} serving {} shard(s) on {}\ndata in {}; clients trust {}; {metrics}",
        config.node_id,
        addresses.len(),
        addresses.join(", "),
        config.data_dir.display(),
        crate::tls::certificate_path(&config.data_dir).display()
    );
    if let Some(signal) = signals.forever().next() {
        eprintln!("signal {signal}: stopping (finishing requests, syncing, closing)");
    }
    node.shutdown().map_err(|error| error.to_string())?;
    eprintln!("stopped");
    Ok(())
}
