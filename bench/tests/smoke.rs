//! Every workload runs end to end against an embedded node for a moment and reports sane,
//! non-zero figures in its JSON file. No timing thresholds: speed is the harness's output,
//! not something a test asserts.

use std::process::Command;

use serde_json::Value;

/// A short `ufer-bench` run with `shards` shards (unpinned) in `dir`, writing its figures to
/// `json` if given; the caller adds the command and runs it.
fn short_run(dir: &std::path::Path, shards: &str, json: Option<&std::path::Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ufer-bench"));
    command
        .args(["--seconds", "0.3", "--warmup-seconds", "0.1", "--reps", "1", "--shards", shards])
        .arg("--no-pin")
        .arg("--dir")
        .arg(dir);
    if let Some(json) = json {
        command.arg("--json").arg(json);
    }
    command
}

#[test]
fn every_workload_completes_and_reports_figures() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("figures.json");
    let output = short_run(dir.path(), "2", Some(&json)).args(["all"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ufer-bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let number = |pointer: &str| -> f64 {
        figures
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{pointer} missing in {figures:#}"))
    };
    assert!(number("/machine/cores") >= 1.0);
    for writers in 0..2 {
        assert!(number(&format!("/results/produce/{writers}/produce_mb_per_s/median")) > 0.0);
        assert!(number(&format!("/results/produce/{writers}/raw_requests_mb_per_s/median")) > 0.0);
        assert!(number(&format!("/results/produce/{writers}/batch_latency/p50_us")) > 0.0);
    }
    assert!(number("/results/consume/all_columns/rows_per_s/median") > 0.0);
    let projected = number("/results/consume/projected_2_of_20/wire_mb_per_s/median");
    let all = number("/results/consume/all_columns/wire_mb_per_s/median");
    assert!(projected > 0.0 && all > 0.0);
    assert!(number("/results/e2e/0/latency/samples") > 0.0);
    assert!(number("/results/e2e/0/latency/p50_us") > 0.0);
    assert!(number("/results/limits/stream_mb_per_s/median") > 0.0);
    assert!(number("/results/limits/ping_pong_64b/p50_us") > 0.0);
    assert!(number("/results/limits/produce_10_rows_acks_all/p50_us") > 0.0);
    assert!(number("/results/mixed/produce_mb_per_s/median") > 0.0);
    assert!(number("/results/mixed/consumed_mb_per_s/median") > 0.0);
    // The disk's own limits beside the figures.
    assert!(number("/results/produce/0/disk_durable_writes_mb_per_s/median") > 0.0);
    assert!(number("/results/limits/disk_durable_1mib_mb_per_s/median") > 0.0);
    assert!(number("/results/limits/disk_durable_10kib_latency/p50_us") > 0.0);
    assert!(number("/results/e2e/0/floor_us/durable_write_p50") > 0.0);
    for distribution in ["uniform", "zipfian"] {
        assert!(
            number(&format!("/results/upsert/by_distribution/{distribution}/rows_per_s/median"))
                > 0.0
        );
        assert!(
            number(&format!("/results/lookup/by_distribution/{distribution}/rows_per_s/median"))
                > 0.0
        );
        assert!(
            number(&format!(
                "/results/lookup/by_distribution/{distribution}/request_latency/p50_us"
            )) > 0.0
        );
    }

    // The run plots: one line for its one e2e rate.
    let svg = dir.path().join("e2e.svg");
    let plotted = Command::new(env!("CARGO_BIN_EXE_ufer-bench"))
        .arg("plot")
        .arg(format!("{}=smoke", json.display()))
        .arg("--output")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(plotted.status.success(), "{}", String::from_utf8_lossy(&plotted.stderr));
    let document = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(document.matches("<polyline").count(), 1);
    assert!(document.contains("smoke, 1000 rows/s"), "{document}");
    // The embedded node's data directory is removed afterwards.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("ufer-bench"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn produce_spreads_over_tables_with_small_appends_and_rows_of_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("produce.json");
    let output = short_run(dir.path(), "2", Some(&json))
        .args(["produce", "--writers", "2", "--tables", "2", "--buckets", "2"])
        .args([
            "--batch-rows",
            "256",
            "--append-rows",
            "16",
            "--linger-ms",
            "2",
            "--row-bytes",
            "300",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("(16 rows per append, linger 2 ms), 2 table(s) × 2 buckets"),
        "{stdout}"
    );
    let figures: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &figures["results"]["produce"][0];
    assert_eq!(run["tables"], 2);
    assert_eq!(run["row_size_bytes"], 300);
    assert!(run["produce_rows_per_s"]["median"].as_f64().unwrap() > 0.0, "{run:#}");
    // A row of 300 bytes: 256 of them make a batch of about 75 KiB, not 256 KiB.
    let batch = run["batch_size_bytes"].as_u64().unwrap();
    assert!((256 * 300..256 * 300 + 8192).contains(&batch), "{batch}");

    let rate = short_run(dir.path(), "1", None).args(["e2e", "--rate", "1MB"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&rate.stdout);
    assert!(rate.status.success(), "{stdout}");
    assert!(stdout.contains("977 rows/s = 1.00 MB/s"), "{stdout}");
}
