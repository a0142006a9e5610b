//! Counters of each shard, readable from any thread (the node handle, a metrics endpoint),
//! and their Prometheus text exposition.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// One shard's counters. Written only by its shard; read by anyone.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Requests received on this shard's endpoint.
    pub requests: AtomicU64,
    /// Requests this shard passed to another shard because that one owns the bucket (or,
    /// for catalog changes, because shard 0 owns the catalog).
    pub forwarded_requests: AtomicU64,
    /// Requests answered with an error.
    pub error_responses: AtomicU64,
    /// Batches appended.
    pub produced_batches: AtomicU64,
    /// Bytes of batches appended.
    pub produced_bytes: AtomicU64,
    /// Batches an idempotent writer sent again that were already stored (answered with
    /// their original offsets, not stored twice).
    pub duplicate_batches: AtomicU64,
    /// Bytes of batches returned by fetches.
    pub fetched_bytes: AtomicU64,
    /// QUIC connections accepted.
    pub connections: AtomicU64,
    /// Damaged offset ranges found in the buckets this shard opened (kept on disk because
    /// valid batches follow them; `ufer table describe` lists them).
    pub damaged_ranges: AtomicU64,
}

/// A point-in-time copy of a shard's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardMetricsSnapshot {
    /// See [`ShardMetrics::requests`].
    pub requests: u64,
    /// See [`ShardMetrics::forwarded_requests`].
    pub forwarded_requests: u64,
    /// See [`ShardMetrics::error_responses`].
    pub error_responses: u64,
    /// See [`ShardMetrics::produced_batches`].
    pub produced_batches: u64,
    /// See [`ShardMetrics::produced_bytes`].
    pub produced_bytes: u64,
    /// See [`ShardMetrics::duplicate_batches`].
    pub duplicate_batches: u64,
    /// See [`ShardMetrics::fetched_bytes`].
    pub fetched_bytes: u64,
    /// See [`ShardMetrics::connections`].
    pub connections: u64,
    /// See [`ShardMetrics::damaged_ranges`].
    pub damaged_ranges: u64,
}

impl ShardMetrics {
    /// Adds `amount` to `counter`.
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> ShardMetricsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ShardMetricsSnapshot {
            requests: load(&self.requests),
            forwarded_requests: load(&self.forwarded_requests),
            error_responses: load(&self.error_responses),
            produced_batches: load(&self.produced_batches),
            produced_bytes: load(&self.produced_bytes),
            duplicate_batches: load(&self.duplicate_batches),
            fetched_bytes: load(&self.fetched_bytes),
            connections: load(&self.connections),
            damaged_ranges: load(&self.damaged_ranges),
        }
    }
}

/// The Prometheus text exposition of every shard's counters.
pub fn render_prometheus(shards: &[ShardMetricsSnapshot]) -> String {
    let mut out = String::new();
    type Family = (&'static str, &'static str, fn(&ShardMetricsSnapshot) -> u64);
    let families: [Family; 9] = [
        ("ufer_requests_total", "Requests received by a shard's endpoint.", |m| m.requests),
        ("ufer_forwarded_requests_total", "Requests passed to the owning shard.", |m| {
            m.forwarded_requests
        }),
        ("ufer_error_responses_total", "Requests answered with an error.", |m| m.error_responses),
        ("ufer_produced_batches_total", "Batches appended.", |m| m.produced_batches),
        ("ufer_produced_bytes_total", "Bytes of batches appended.", |m| m.produced_bytes),
        (
            "ufer_duplicate_batches_total",
            "Retried batches already stored (not stored again).",
            |m| m.duplicate_batches,
        ),
        ("ufer_fetched_bytes_total", "Bytes of batches returned by fetches.", |m| m.fetched_bytes),
        ("ufer_connections_total", "QUIC connections accepted.", |m| m.connections),
        (
            "ufer_damaged_ranges_total",
            "Damaged offset ranges found in opened buckets (kept; reads of them fail).",
            |m| m.damaged_ranges,
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (shard, metrics) in shards.iter().enumerate() {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", value(metrics));
        }
    }
    // The QUIC sockets' sends, for the whole process.
    let udp = ufer_io::quic_runtime::udp_send_stats();
    let process: [(&str, &str, u64); 3] = [
        ("ufer_udp_transmits_total", "UDP transmits (GSO: several datagrams each).", udp.transmits),
        (
            "ufer_udp_sends_blocked_total",
            "UDP sends refused because the socket buffer was full.",
            udp.blocked,
        ),
        (
            "ufer_udp_send_retry_waits_total",
            "Waits before sending again after a full socket buffer.",
            udp.retry_waits,
        ),
    ];
    for (name, help, value) in process {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    out
}
