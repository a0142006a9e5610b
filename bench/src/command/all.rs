//! `ufer-bench all`: produce, consume, e2e, mixed, upsert, lookup and limits in one session,
//! each with its own defaults except where a default would outlast `--seconds`: consume's
//! fill lasts `--seconds`, the key space loads in about `--seconds`, and there are 1 000
//! round trips per second of `--seconds` (200 to 5 000), so a short smoke run stays short.

use crate::command::consume::ConsumeArgs;
use crate::command::e2e::E2eArgs;
use crate::command::kv::KvArgs;
use crate::command::limits::LimitsArgs;
use crate::command::mixed::MixedArgs;
use crate::command::produce::ProduceArgs;
use crate::options::GlobalOptions;
use crate::rows::ROW_SIZE_BYTES;
use crate::session::Measurement;

/// The measurements of `ufer-bench all`, in the order they run.
pub fn measurements(options: &GlobalOptions) -> Vec<Measurement> {
    let produce = ProduceArgs {
        writers: vec![1, 4],
        buckets: 4,
        batch_rows: 1024,
        acks: "all".into(),
        compression: "none".into(),
        tables: 1,
        row_bytes: ROW_SIZE_BYTES,
        append_rows: None,
        linger_ms: 1.0,
    };
    let consume = ConsumeArgs { fill_seconds: options.seconds, buckets: 4 };
    let e2e = E2eArgs { rate: vec!["1000".into()], batch_rows: 10, buckets: 4, acks: "all".into() };
    let mixed =
        MixedArgs { writers: 2, readers: 2, buckets: 4, batch_rows: 1024, columns: "all".into() };
    let upsert = KvArgs {
        keys: ((options.seconds * 20_000.0) as u64).clamp(1_000, 1_000_000),
        distribution: vec!["uniform".into(), "zipfian".into()],
        actors: 4,
        batch_rows: 100,
        buckets: 4,
    };
    let lookup = KvArgs { batch_rows: 1, ..upsert.clone() };
    let limits =
        LimitsArgs { ping_samples: ((options.seconds * 1_000.0) as usize).clamp(200, 5_000) };
    vec![
        Measurement::Produce(produce),
        Measurement::Consume(consume),
        Measurement::E2e(e2e),
        Measurement::Mixed(mixed),
        Measurement::Upsert(upsert),
        Measurement::Lookup(lookup),
        Measurement::Limits(limits),
    ]
}
