//! A node never deletes table data that its catalog has not provably dropped: without its
//! catalog file it refuses to start (naming the file and how to recover) and leaves every
//! table directory as it was; with a catalog, a start removes only the directories of tables
//! that catalog dropped (a crash between a drop and the deletion of its files) and keeps
//! any other directory it does not know.

// Test code: a panic is a failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ufer_node::{start, NodeConfig};
use ufer_tests::client_runtime;
use ufer_tests::table::record_batch;
use ufer_wire::client::{Admin, AppendOptions, AppendWriter, ClientConfig, Connection};
use ufer_wire::protocol::messages::{TableDefinition, TablePath};

/// Creates `default.NAME` and writes 10 rows into it; returns its table id.
async fn create_and_fill(connection: &Connection, name: &str) -> u64 {
    let path = TablePath::new("default", name);
    let definition = TableDefinition {
        schema: ufer_tests::table::SCHEMA_TEXT.into(),
        bucket_count: 1,
        ..TableDefinition::default()
    };
    let table_id =
        Admin::new(connection.clone()).create_table(&path, definition, false).await.unwrap();
    let writer =
        AppendWriter::new(connection.clone(), &path, AppendOptions::default()).await.unwrap();
    writer.append(record_batch(0, 10)).await.unwrap().wait().await.unwrap();
    writer.close().await.unwrap();
    table_id
}

/// Every file under `dir` with its size, sorted.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                let name = entry.path().strip_prefix(dir).unwrap().display().to_string();
                found.push((name, entry.metadata().unwrap().len()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_node_without_its_catalog_refuses_to_start_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let node = start(config.clone()).unwrap();
    let bootstrap = node.shard_addresses()[0];
    client_runtime().block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        create_and_fill(&connection, "events").await;
        connection.close().await;
    });
    node.shutdown().unwrap();
    let tables = dir.path().join("tables");
    let before = files(&tables);
    assert!(before.iter().any(|(name, size)| name.ends_with(".log") && *size > 0), "{before:?}");

    let catalog_file = dir.path().join("catalog").join("catalog");
    std::fs::remove_file(&catalog_file).unwrap();
    let error = start(config.clone()).unwrap_err().to_string();
    assert!(error.contains(&catalog_file.display().to_string()), "{error}");
    assert!(error.contains("restore"), "the message says how to recover: {error}");
    assert_eq!(files(&tables), before, "the table data is untouched");
    assert!(!catalog_file.exists(), "no empty catalog was written in its place");

    // Moving the tables aside, as the message says, lets the node start empty.
    std::fs::rename(&tables, dir.path().join("tables.saved")).unwrap();
    start(config).unwrap().shutdown().unwrap();
}

#[test]
fn a_start_removes_only_the_files_of_tables_its_catalog_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig::test_min(dir.path().to_path_buf());
    let node = start(config.clone()).unwrap();
    let bootstrap = node.shard_addresses()[0];
    let (dropped, kept) = client_runtime().block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        let dropped = create_and_fill(&connection, "dropped").await;
        let kept = create_and_fill(&connection, "kept").await;
        let admin = Admin::new(connection.clone());
        admin.drop_table(&TablePath::new("default", "dropped"), false).await.unwrap();
        connection.close().await;
        (dropped, kept)
    });
    node.shutdown().unwrap();
    let tables = dir.path().join("tables");
    // A crash between the drop and the deletion of its files leaves them behind.
    std::fs::create_dir_all(tables.join(dropped.to_string()).join("0")).unwrap();
    std::fs::write(tables.join(dropped.to_string()).join("0").join("leftover"), b"x").unwrap();
    // Directories the catalog never knew: a table id it never gave out, and not a table id.
    // The id the next table would get, too: a new table must not open those files.
    for stranger in [format!("{}", kept + 1), format!("{}", kept + 1000), "notes".to_string()] {
        std::fs::create_dir_all(tables.join(&stranger)).unwrap();
        std::fs::write(tables.join(&stranger).join("keep-me"), b"x").unwrap();
    }
    let kept_files = files(&tables.join(kept.to_string()));

    let node = start(config).unwrap();
    assert!(!tables.join(dropped.to_string()).exists(), "the dropped table's files are gone");
    assert_eq!(files(&tables.join(kept.to_string())), kept_files);
    let bootstrap = node.shard_addresses()[0];
    let fresh = client_runtime().block_on(async {
        let connection = Connection::new(ClientConfig::local(bootstrap, dir.path())).unwrap();
        let fresh = create_and_fill(&connection, "fresh").await;
        connection.close().await;
        fresh
    });
    node.shutdown().unwrap();
    assert_ne!(fresh, kept + 1, "a new table does not take the id of files it did not write");
    for stranger in [format!("{}", kept + 1), format!("{}", kept + 1000), "notes".to_string()] {
        let file = tables.join(&stranger).join("keep-me");
        assert_eq!(std::fs::read(&file).unwrap(), b"x", "{} untouched", file.display());
    }
}
