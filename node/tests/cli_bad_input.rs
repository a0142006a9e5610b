//! The `ufer` CLI with input it cannot take: names and schema texts too long for the
//! protocol are refused with exit code 1 and a message (never a panic).

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{send_signal, serve, ufer, Served};

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
