//! The `ufer` binary end to end: `ufer serve` as a child process, then table commands,
//! produce from JSON lines and CSV on standard input, consume with and without projection,
//! bad input answered with a clear error and exit code 1, and SIGTERM stopping the node
//! cleanly.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ok, scrape, send_signal, serve, serve_in, ufer, Served};

/// Rows of `events` (`id`, `name`, `ts`) as JSON lines.
fn events_jsonl(ids: std::ops::Range<i64>) -> String {
    ids.map(|id| {
        format!("{{\"id\":{id},\"name\":\"n{id}\",\"ts\":\"2026-01-01T00:00:0{}Z\"}}\n", id % 10)
    })
    .collect()
}

/// Rows of `events` as CSV with a header line.
fn events_csv(ids: std::ops::Range<i64>) -> String {
    std::iter::once("id,name,ts\n".to_string())
        .chain(ids.map(|id| format!("{id},c{id},2026-01-01T00:00:00Z\n")))
        .collect()
}

/// The `id` of each JSON line `consume` printed, sorted.
fn sorted_ids(consumed: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = consumed
        .lines()
        .map(|line| {
            line.split("\"id\":").nth(1).unwrap().split(',').next().unwrap().parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// The sum of the high watermarks in the bucket lines `table describe` printed.
fn high_watermarks(described: &str) -> u64 {
    described
        .lines()
        .filter(|line| line.trim_start().chars().next().is_some_and(|first| first.is_ascii_digit()))
        .map(|line| line.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap())
        .sum()
}

/// The Prometheus `exposition` counts what happened: produced batches, error responses, UDP
/// transmits.
fn assert_counted(exposition: &str) {
    let produced: u64 = exposition
        .lines()
        .filter(|line| line.starts_with("ufer_produced_batches_total{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(produced >= 2, "{exposition}");
    assert!(exposition.contains("ufer_error_responses_total{shard=\"0\"}"), "{exposition}");
    let transmits = exposition
        .lines()
        .find_map(|line| line.strip_prefix("ufer_udp_transmits_total "))
        .map(|value| value.parse::<u64>().unwrap());
    assert!(transmits.is_some_and(|count| count > 0), "{exposition}");
}

#[test]
fn the_cli_creates_writes_reads_and_drops_tables() {
    let dir = tempfile::tempdir().unwrap();
    let Served { child: mut node, address: server, metrics } = serve(dir.path());
    let run = |args: &[&str], stdin: Option<&str>| ufer(dir.path(), &server, args, stdin);

    let created = ok(&run(
        &[
            "table",
            "create",
            "events",
            "--schema",
            "id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)",
            "--buckets",
            "3",
            "--bucket-key",
            "id",
        ],
        None,
    ));
    assert!(created.contains("created table default.events"), "{created}");

    let produced = ok(&run(&["produce", "events"], Some(&events_jsonl(0..1000))));
    assert!(produced.contains("wrote 1000 row(s)"), "{produced}");
    assert!(produced.contains("bucket 0: offsets 0..="), "{produced}");
    let csv = events_csv(1000..1500);
    assert!(ok(&run(&["produce", "events", "--format", "csv"], Some(&csv)))
        .contains("wrote 500 row(s)"));

    let consumed = ok(&run(&["consume", "events"], None));
    assert_eq!(sorted_ids(&consumed), (0..1500).collect::<Vec<_>>());

    let projected = ok(&run(
        &["consume", "events", "--columns", "name,id", "--format", "csv", "--limit", "10"],
        None,
    ));
    let mut lines = projected.lines();
    assert_eq!(lines.next(), Some("name,id"));
    assert_eq!(lines.count(), 10);

    // A table gathers the rows of all buckets and polls into one.
    let table = ok(&run(
        &["consume", "events", "--columns", "id", "--format", "table", "--limit", "1000"],
        None,
    ));
    assert_eq!(table.lines().filter(|line| line.starts_with('+')).count(), 3, "{table}");
    assert_eq!(table.lines().filter(|line| line.starts_with("| ")).count(), 1 + 1000, "{table}");

    let described = ok(&run(&["table", "describe", "events"], None));
    assert!(described.contains("id BIGINT NOT NULL, name STRING, ts TIMESTAMP(3)"), "{described}");
    assert_eq!(high_watermarks(&described), 1500);

    let bad = run(&["table", "create", "broken", "--schema", "id BIGINTEGER"], None);
    assert_eq!(bad.status.code(), Some(1));
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(
        message.contains("INVALID_TABLE_DEFINITION") && message.contains("unknown type"),
        "{message}"
    );
    let missing = run(&["consume", "nowhere"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("TABLE_NOT_FOUND"));

    assert_counted(&scrape(&metrics));

    assert!(ok(&run(&["table", "list"], None)).contains("events"));
    ok(&run(&["table", "drop", "events"], None));
    assert!(!ok(&run(&["table", "list"], None)).contains("events"));

    // SIGTERM: stop accepting, finish, sync, close, exit 0.
    send_signal(node.id(), "-TERM");
    let status = node.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(node.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn the_embedded_defaults_work_from_any_directory() {
    // What the README's quick start does: `ufer serve` with no data directory (so
    // `./ufer-data`, a relative path) and CLI commands in the same directory that trust the
    // certificate found there without flags.
    let dir = tempfile::tempdir().unwrap();
    let Served { child: mut node, address, .. } = serve_in(dir.path());
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = std::process::Command::new(common::UFER)
            .arg("--server")
            .arg(&address)
            .args(args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut input, stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    };
    ok(&run(&["table", "create", "events", "--schema", "id BIGINT NOT NULL, name STRING"], None));
    ok(&run(&["produce", "events"], Some("{\"id\":7,\"name\":\"seven\"}\n")));
    let read = ok(&run(&["consume", "events", "--limit", "1"], None));
    assert!(read.contains("seven"), "{read}");
    assert!(dir.path().join("ufer-data").join("catalog").is_dir());

    send_signal(node.id(), "-TERM");
    let status = node.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(node.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status}\n{stderr}");
}

#[test]
fn the_cli_upserts_looks_up_and_scans_primary_key_tables() {
    let dir = tempfile::tempdir().unwrap();
    let Served { child: mut node, address: server, .. } = serve(dir.path());
    let run = |args: &[&str], stdin: Option<&str>| ufer(dir.path(), &server, args, stdin);
    ok(&run(
        &[
            "table",
            "create",
            "users",
            "--schema",
            "id BIGINT NOT NULL, name STRING NOT NULL, visits BIGINT",
            "--primary-key",
            "id",
            "--buckets",
            "2",
            "--property",
            "table.merge-engine=aggregation",
            "--property",
            "fields.visits.agg=sum",
        ],
        None,
    ));
    let rows = "{\"id\":1,\"name\":\"ada\",\"visits\":1}\n\
                {\"id\":2,\"name\":\"bob\",\"visits\":1}\n\
                {\"id\":1,\"name\":\"ada\",\"visits\":2}\n";
    let upserted = ok(&run(&["upsert", "users"], Some(rows)));
    assert!(upserted.contains("upserted 3 row(s) and deleted 0 key(s)"), "{upserted}");
    // A delete names only the key; deletes are on for aggregation only when allowed, so the
    // table ignores it (Fluss's default) — and says nothing changed.
    let ignored = ok(&run(&["upsert", "users"], Some("{\"id\":2,\"_op\":\"delete\"}\n")));
    assert!(ignored.contains("deleted 1 key(s)") && ignored.contains(": 0 changelog"), "{ignored}");
    let csv = "id,name,visits,_op\n3,cy,5,\n1,ada,10,upsert\n";
    ok(&run(&["upsert", "users", "--format", "csv"], Some(csv)));

    let found = ok(&run(&["lookup", "users", "--key", "{\"id\":1}", "--key", "{\"id\":9}"], None));
    assert_eq!(found.trim(), "{\"id\":1,\"name\":\"ada\",\"visits\":13}", "{found}");
    let projected =
        ok(&run(&["lookup", "users", "--key", "{\"id\":3}", "--columns", "visits"], None));
    assert_eq!(projected.trim(), "{\"visits\":5}");

    let scanned = ok(&run(&["scan", "users", "--format", "csv"], None));
    let mut lines: Vec<&str> = scanned.lines().filter(|line| !line.starts_with("id,")).collect();
    lines.sort_unstable();
    assert_eq!(lines, vec!["1,ada,13", "2,bob,1", "3,cy,5"], "{scanned}");

    // The log of a primary-key table is its changelog: every row with its change type.
    let changelog = ok(&run(&["consume", "users", "--format", "csv"], None));
    let mut changes: Vec<&str> =
        changelog.lines().filter(|line| !line.starts_with("_change")).collect();
    changes.sort_unstable();
    assert_eq!(
        changes,
        vec![
            "+I,1,ada,1",
            "+I,2,bob,1",
            "+I,3,cy,5",
            "+U,1,ada,13",
            "+U,1,ada,3",
            "-U,1,ada,1",
            "-U,1,ada,3"
        ],
        "{changelog}"
    );

    // Bad input: a typed error and exit code 1.
    let produce = run(&["produce", "users"], Some("{\"id\":4,\"name\":\"x\",\"visits\":1}\n"));
    assert_eq!(produce.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&produce.stderr).contains("upsert"));
    let no_key = run(&["upsert", "users"], Some("{\"name\":\"x\"}\n"));
    assert_eq!(no_key.status.code(), Some(1));
    let bad_op = run(&["upsert", "users"], Some("{\"id\":5,\"name\":\"x\",\"_op\":\"merge\"}\n"));
    assert!(String::from_utf8_lossy(&bad_op.stderr).contains("not upsert or delete"));

    send_signal(node.id(), "-TERM");
    assert!(node.wait().unwrap().success());
}

// `ufer sql` needs the SQL engine (feature `sql`, which `cargo test --workspace` turns on).
#[cfg(feature = "sql")]
#[test]
fn the_cli_tiers_a_lake_table_and_queries_it_with_sql() {
    let dir = tempfile::tempdir().unwrap();
    let Served { child: mut node, address: server, .. } = serve(dir.path());
    let run = |args: &[&str], stdin: Option<&str>| ufer(dir.path(), &server, args, stdin);
    ok(&run(
        &[
            "table",
            "create",
            "clicks",
            "--schema",
            "id BIGINT NOT NULL, v INT",
            "--buckets",
            "2",
            "--property",
            "lake.enabled=true",
            "--property",
            "lake.freshness.ms=200",
        ],
        None,
    ));
    let jsonl: String = (0..300).map(|id| format!("{{\"id\":{id},\"v\":{}}}\n", id % 7)).collect();
    ok(&run(&["produce", "clicks"], Some(&jsonl)));
    // `describe` shows the tiered offset and the lag per bucket; wait for lag 0.
    let started = std::time::Instant::now();
    loop {
        let described = ok(&run(&["table", "describe", "clicks"], None));
        assert!(described.contains("tiered offset"), "{described}");
        let lags: Vec<String> = described
            .lines()
            .filter(|line| line.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(|line| line.split_whitespace().last().unwrap().to_string())
            .collect();
        if lags.len() == 2 && lags.iter().all(|lag| lag == "0") {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "not tiered: {described}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let total: i64 = (0..300).map(|id| id % 7).sum();
    let counted = ok(&run(
        &["sql", "SELECT count(*) AS n, sum(v) AS total FROM clicks", "--format", "csv"],
        None,
    ));
    assert_eq!(counted, format!("n,total\n300,{total}\n"));
    let rows = ok(&run(
        &["sql", "SELECT id FROM default.clicks WHERE id < 3 ORDER BY id", "--format", "jsonl"],
        None,
    ));
    assert_eq!(rows, "{\"id\":0}\n{\"id\":1}\n{\"id\":2}\n");
    let table = ok(&run(&["sql", "SELECT id, v FROM clicks WHERE id > 1000"], None));
    assert!(table.contains("| id | v |"), "headers even without rows: {table}");
    let bad = run(&["sql", "SELECT nope FROM clicks"], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope"));
    send_signal(node.id(), "-TERM");
    assert!(node.wait().unwrap().success());
}
