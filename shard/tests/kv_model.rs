//! Model test of the KV tablet: random puts, deletes, reads, scans, flushes, compactions,
//! views and reopens (with the changelog replayed from `snapshot_log_offset`) against a
//! `BTreeMap`, with `KvConfig::test_min()` so flushes and compactions happen constantly.
//! `UFER_PROPTEST_CASES` runs more cases than the default 32.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use ufer_io::DataDir;
use ufer_shard::{KvConfig, KvTablet, KvView};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    MultiGet(Vec<Vec<u8>>),
    ScanPrefix(Vec<u8>, usize),
    Flush,
    Compact,
    TakeView,
    CheckViews,
    Reopen,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(b'a'..=b'd', 1..=3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (key(), prop::collection::vec(any::<u8>(), 0..60)).prop_map(|(k, v)| Op::Put(k, v)),
        3 => key().prop_map(Op::Delete),
        3 => key().prop_map(Op::Get),
        1 => prop::collection::vec(key(), 0..6).prop_map(Op::MultiGet),
        2 => (prop::collection::vec(b'a'..=b'd', 0..=2), 1..20usize)
            .prop_map(|(prefix, count)| Op::ScanPrefix(prefix, count)),
        1 => Just(Op::Flush),
        2 => Just(Op::Compact),
        1 => Just(Op::TakeView),
        1 => Just(Op::CheckViews),
        1 => Just(Op::Reopen),
    ]
}

fn cases() -> u32 {
    std::env::var("UFER_PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(32)
}

async fn open(path: &Path) -> KvTablet {
    let dir = DataDir::open(path).await.unwrap();
    KvTablet::open(&dir, KvConfig::test_min()).await.unwrap()
}

/// Every live entry of a view, read in chunks of about `byte_limit` bytes.
async fn scan_all(view: &KvView, byte_limit: usize) -> Model {
    let mut entries = Model::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let (chunk, more) = view.scan(after.as_deref(), b"", byte_limit).await.unwrap();
        assert!(!chunk.is_empty() || !more, "an empty chunk must end the scan");
        after = chunk.last().map(|(key, _)| key.clone());
        for (key, value) in chunk {
            assert!(entries.insert(key, value).is_none(), "a key came twice");
        }
        if !more {
            return entries;
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "the model's interpreter: one match arm per operation, each checked against the \
              BTreeMap, all sharing the tablet, the model, the changelog and the views"
)]
async fn run_ops(path: &Path, ops: Vec<Op>) {
    let mut tablet = open(path).await;
    let mut model = Model::new();
    // The changelog: entry i has offset i + 1.
    let mut log: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut views: Vec<(KvView, Model)> = Vec::new();
    for op in ops {
        match op {
            Op::Put(key, value) => {
                log.push((key.clone(), Some(value.clone())));
                tablet.apply(log.len() as u64, [(key.clone(), Some(value.clone()))]);
                model.insert(key, value);
            }
            Op::Delete(key) => {
                log.push((key.clone(), None));
                tablet.apply(log.len() as u64, [(key.clone(), None)]);
                model.remove(&key);
            }
            Op::Get(key) => assert_eq!(tablet.get(&key).await.unwrap(), model.get(&key).cloned()),
            Op::MultiGet(keys) => {
                let expected: Vec<_> = keys.iter().map(|key| model.get(key).cloned()).collect();
                assert_eq!(tablet.multi_get(&keys).await.unwrap(), expected);
            }
            Op::ScanPrefix(prefix, count) => {
                let expected: Vec<_> = model
                    .range(prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(&prefix))
                    .take(count)
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                assert_eq!(tablet.scan_prefix(&prefix, count).await.unwrap(), expected);
            }
            Op::Flush => {
                assert_eq!(tablet.flush().await.unwrap(), log.len() as u64);
                assert_eq!(tablet.snapshot_log_offset(), log.len() as u64);
            }
            Op::Compact => {
                tablet.compact_step().await.unwrap();
            }
            Op::TakeView => {
                if views.len() == 3 {
                    views.remove(0);
                }
                let view = tablet.read_view();
                assert_eq!(view.log_offset(), log.len() as u64);
                views.push((view, model.clone()));
            }
            Op::CheckViews => {
                for (view, expected) in &views {
                    assert_eq!(&scan_all(view, 64).await, expected);
                    for key in [&b"a"[..], b"ab", b"dd"] {
                        assert_eq!(view.get(key).await.unwrap(), expected.get(key).cloned());
                    }
                }
            }
            Op::Reopen => {
                views.clear();
                tablet.close().await.unwrap();
                tablet = open(path).await;
                let snapshot = tablet.snapshot_log_offset();
                assert!(snapshot <= log.len() as u64);
                for (index, mutation) in log.iter().enumerate().skip(snapshot as usize) {
                    tablet.apply(index as u64 + 1, [mutation.clone()]);
                }
            }
        }
        if tablet.needs_flush() {
            tablet.flush().await.unwrap();
        }
        if tablet.needs_compaction() {
            tablet.compact_step().await.unwrap();
        }
    }
    assert_eq!(scan_all(&tablet.read_view(), 200).await, model);
    let stats = tablet.stats();
    assert!(stats.level_file_counts.iter().all(|count| *count < 2 || stats.compaction_count > 0));
    tablet.close().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn kv_tablet_matches_a_btreemap(ops in prop::collection::vec(op(), 1..300)) {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().to_path_buf();
        ufer_io::executor::run_on_new_thread(move || async move { run_ops(&path, ops).await })
            .unwrap_or_else(|error| panic!("{error}"));
    }
}
