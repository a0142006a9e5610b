//! [`LakeMetrics`]: what the tiering thread has done and how far behind the log it is,
//! readable from any thread, and their Prometheus text exposition.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The tiering thread's counters and per-table lag. Written by the tiering thread only.
#[derive(Debug, Default)]
pub struct LakeMetrics {
    /// Tiering rounds that found something to tier and committed it.
    pub commits: AtomicU64,
    /// Rows written to the lake.
    pub rows: AtomicU64,
    /// Bytes of batches (as stored in the log) read for tiering.
    pub batch_bytes: AtomicU64,
    /// Data files committed.
    pub files: AtomicU64,
    /// Rounds or table set-ups that failed (retried; the error is printed on stderr).
    pub errors: AtomicU64,
    /// Records skipped because retention deleted them before they were tiered.
    pub skipped_records: AtomicU64,
    tables: Mutex<BTreeMap<String, TableLag>>,
}

/// How far one table's lake is behind its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableLag {
    /// Durable records (summed over buckets) not in the lake, as of the last round.
    pub records: u64,
    /// Wall time of the last commit (Unix ms; 0: none yet).
    pub last_commit_ms: i64,
}

impl LakeMetrics {
    /// Adds `amount` to `counter`.
    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Sets a table's lag.
    pub fn set_lag(&self, table: &str, lag: TableLag) {
        self.tables_locked().insert(table.to_string(), lag);
    }

    /// A table's lag, if it is tiered.
    pub fn lag(&self, table: &str) -> Option<TableLag> {
        self.tables_locked().get(table).copied()
    }

    /// Forgets tables not in `keep`.
    pub fn retain_tables(&self, keep: &[String]) {
        self.tables_locked().retain(|name, _| keep.contains(name));
    }

    fn tables_locked(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TableLag>> {
        // A panic while holding it cannot leave the map half-written.
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Prometheus text exposition (appended to the shards').
    pub fn render_prometheus(&self, out: &mut String, now_ms: i64) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 6] = [
            ("ufer_lake_commits_total", "Iceberg commits of tiered records.", load(&self.commits)),
            ("ufer_lake_rows_total", "Rows written to the lake.", load(&self.rows)),
            (
                "ufer_lake_batch_bytes_total",
                "Bytes of log batches read for tiering.",
                load(&self.batch_bytes),
            ),
            ("ufer_lake_files_total", "Data files committed to the lake.", load(&self.files)),
            ("ufer_lake_errors_total", "Failed tiering rounds (retried).", load(&self.errors)),
            (
                "ufer_lake_skipped_records_total",
                "Records deleted by retention before they were tiered.",
                load(&self.skipped_records),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let tables = self.tables_locked().clone();
        let _ = writeln!(
            out,
            "# HELP ufer_lake_lag_records Durable records not yet in the lake (as of the last round).\n# TYPE ufer_lake_lag_records gauge"
        );
        for (table, lag) in &tables {
            let _ = writeln!(out, "ufer_lake_lag_records{{table=\"{table}\"}} {}", lag.records);
        }
        let _ = writeln!(
            out,
            "# HELP ufer_lake_last_commit_age_seconds Time since the table's last lake commit.\n# TYPE ufer_lake_last_commit_age_seconds gauge"
        );
        for (table, lag) in &tables {
            if lag.last_commit_ms > 0 {
                let age = (now_ms - lag.last_commit_ms).max(0) as f64 / 1000.0;
                let _ =
                    writeln!(out, "ufer_lake_last_commit_age_seconds{{table=\"{table}\"}} {age}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_each_tables_lag() {
        let metrics = LakeMetrics::default();
        LakeMetrics::add(&metrics.rows, 12);
        metrics.set_lag("db.a", TableLag { records: 5, last_commit_ms: 1_000 });
        metrics.set_lag("db.b", TableLag { records: 0, last_commit_ms: 0 });
        let mut out = String::new();
        metrics.render_prometheus(&mut out, 3_500);
        assert!(out.contains("ufer_lake_rows_total 12\n"), "{out}");
        assert!(out.contains("ufer_lake_lag_records{table=\"db.a\"} 5\n"), "{out}");
        assert!(out.contains("ufer_lake_last_commit_age_seconds{table=\"db.a\"} 2.5\n"), "{out}");
        assert!(!out.contains("age_seconds{table=\"db.b\"}"), "{out}");
        metrics.retain_tables(&["db.b".to_string()]);
        assert_eq!(metrics.lag("db.a"), None);
    }
}
