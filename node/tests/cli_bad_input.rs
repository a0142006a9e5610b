//! The `ufer` CLI with input it cannot take: names and schema texts too long for the
//! protocol are refused with exit code 1 and a message (never a panic), and `produce` with a
//! malformed line writes nothing when the input fits in its read-ahead, or says exactly
//! which offsets it wrote and which line failed when it does not — so a re-run duplicates
//! nothing.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ok, send_signal, serve, ufer, Served};

#[test]
fn names_and_schemas_too_long_for_the_protocol_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let Served { child: mut node, address: server, .. } = serve(dir.path());
    let run = |args: &[&str]| ufer(dir.path(), &server, args, None);
    let long_name = "n".repeat(70_000);
    let long_schema = format!("{} BIGINT", "c".repeat(70_000));
    for args in [
        vec!["table", "create", long_name.as_str(), "--schema", "id BIGINT"],
        vec!["table", "create", "t", "--schema", long_schema.as_str()],
        vec!["table", "describe", long_name.as_str()],
        vec!["database", "create", long_name.as_str()],
    ] {
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{:?}: {stderr}", &args[..2]);
        assert!(stderr.contains("65535"), "says the limit: {stderr}");
    }
    send_signal(node.id(), "-TERM");
    assert!(node.wait().unwrap().success());
}

#[test]
fn produce_with_a_malformed_line_writes_nothing_or_says_exactly_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let Served { child: mut node, address: server, .. } = serve(dir.path());
    let run = |args: &[&str], stdin: Option<&str>| ufer(dir.path(), &server, args, stdin);
    ok(&run(&["table", "create", "events", "--schema", "id BIGINT NOT NULL, name STRING"], None));

    // Small input: validated whole before anything is written.
    let mut lines: Vec<String> =
        (0..1_000).map(|id| format!("{{\"id\":{id},\"name\":\"n{id}\"}}")).collect();
    lines[700] = "{\"id\":\"not a number\"}".into();
    let output =
        run(&["produce", "events", "--batch-rows", "100"], Some(&(lines.join("\n") + "\n")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 701"), "names the line: {stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    let consumed = ok(&run(&["consume", "events"], None));
    assert_eq!(consumed.lines().count(), 0, "nothing was written: {consumed}");

    // Input larger than the read-ahead: what was written before the bad line is said exactly.
    let big: Vec<String> = (0..120_000)
        .map(|id| format!("{{\"id\":{id},\"name\":\"{}\"}}", "x".repeat(200)))
        .collect();
    let mut input = big.join("\n") + "\n";
    input.push_str("{\"id\":\"bad\"}\n");
    let output = run(&["produce", "events"], Some(&input));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 120001"), "names the line: {stderr}");
    assert!(stdout.contains("wrote 120000 row(s)"), "says what was written: {stdout}");
    assert!(stdout.contains("bucket 0: offsets 0..=119999"), "{stdout}");
    let consumed = ok(&run(&["consume", "events"], None));
    assert_eq!(consumed.lines().count(), 120_000);

    // The same for upsert: a bad line among a small input writes nothing.
    let schema = "id BIGINT NOT NULL, v BIGINT";
    ok(&run(&["table", "create", "users", "--schema", schema, "--primary-key", "id"], None));
    let mut rows: Vec<String> = (0..100).map(|id| format!("{{\"id\":{id},\"v\":1}}")).collect();
    rows[49] = "{\"id\":49,\"_op\":\"explode\"}".into();
    let output = run(&["upsert", "users"], Some(&(rows.join("\n") + "\n")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 50") && stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(ok(&run(&["scan", "users"], None)).lines().count(), 0, "nothing was written");
    send_signal(node.id(), "-TERM");
    assert!(node.wait().unwrap().success());
}

#[test]
fn a_write_the_node_refuses_says_what_was_acknowledged_before_it_and_where_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let Served { child: mut node, address: server, .. } = serve(dir.path());
    let run = |args: &[&str], stdin: Option<&str>| ufer(dir.path(), &server, args, stdin);

    // upsert: the node refuses a row over the KV's value limit (4 MiB) in the third chunk.
    let schema = "id BIGINT NOT NULL, v STRING";
    ok(&run(&["table", "create", "users", "--schema", schema, "--primary-key", "id"], None));
    let mut rows: Vec<String> = (0..20).map(|id| format!("{{\"id\":{id},\"v\":\"a\"}}")).collect();
    rows[12] = format!("{{\"id\":12,\"v\":\"{}\"}}", "x".repeat(5 * 1024 * 1024));
    let output = run(&["upsert", "users", "--batch-rows", "5"], Some(&(rows.join("\n") + "\n")));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("upserted 10 row(s)"), "says what was acknowledged: {stdout}");
    assert!(stderr.contains("lines 11..=15"), "names the refused lines: {stderr}");
    assert!(stderr.contains("go on with the input from line 11"), "{stderr}");

    // produce: a row that makes a batch over the batch limit (64 MiB), after acknowledged ones.
    ok(&run(&["table", "create", "events", "--schema", "id BIGINT NOT NULL, name STRING"], None));
    let mut lines: Vec<String> =
        (0..10).map(|id| format!("{{\"id\":{id},\"name\":\"n\"}}")).collect();
    lines.push(format!("{{\"id\":10,\"name\":\"{}\"}}", "x".repeat(65 * 1024 * 1024)));
    lines.push("{\"id\":11,\"name\":\"n\"}".into());
    let output = run(&["produce", "events", "--batch-rows", "5"], Some(&(lines.join("\n") + "\n")));
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("wrote 10 row(s)"), "says what was acknowledged: {stdout} {stderr}");
    assert!(stdout.contains("offsets 0..=9"), "{stdout}");
    assert!(stderr.contains("rows up to line 10 were written"), "{stderr}");
    assert!(stderr.contains("lines 11..="), "names the lines not acknowledged: {stderr}");
    assert_eq!(ok(&run(&["consume", "events"], None)).lines().count(), 10);

    // The same in CSV: the hint says to keep the header line when going on.
    let mut csv: Vec<String> = vec!["id,name".into()];
    csv.extend((0..10).map(|id| format!("{id},n")));
    csv.push(format!("10,{}", "x".repeat(65 * 1024 * 1024)));
    let output = run(
        &["produce", "events", "--format", "csv", "--batch-rows", "5"],
        Some(&(csv.join("\n") + "\n")),
    );
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("wrote 10 row(s)"), "{stdout} {stderr}");
    assert!(stderr.contains("after the header line"), "{stderr}");
    send_signal(node.id(), "-TERM");
    assert!(node.wait().unwrap().success());
}
