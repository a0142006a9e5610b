//! `ufer-bench all`: produce, consume, e2e, mixed, upsert, lookup and limits in one session,
//! each with its own defaults except where a default would outlast `--seconds`: consume's
//! fill lasts `--seconds`, the key space loads in about `--seconds`, and there are 1 000
//! round trips per second of `--seconds` (200 to 5 000), so a short smoke run stays short.

use crate::command::consume::ConsumeArgs;
use crate::command::kv::KvArgs;
use crate::command::limits::LimitsArgs;
use crate::command::measurement::Measurement;
use crate::error::BenchError;
use crate::options::{defaults, GlobalOptions};

/// The measurements of `ufer-bench all`, in the order they run.
pub fn measurements(options: &GlobalOptions) -> Result<Vec<Measurement>, BenchError> {
    let consume = ConsumeArgs { fill_seconds: options.seconds, ..defaults()? };
    let upsert = KvArgs {
        keys: ((options.seconds * 20_000.0) as u64).clamp(1_000, 1_000_000),
        ..defaults()?
    };
    let lookup = KvArgs { batch_rows: 1, ..upsert.clone() };
    let limits =
        LimitsArgs { ping_samples: ((options.seconds * 1_000.0) as usize).clamp(200, 5_000) };
    Ok(vec![
        Measurement::Produce(defaults()?),
        Measurement::Consume(consume),
        Measurement::E2e(defaults()?),
        Measurement::Mixed(defaults()?),
        Measurement::Upsert(upsert),
        Measurement::Lookup(lookup),
        Measurement::Limits(limits),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_runs_every_measurement_with_the_commands_defaults_scaled_to_seconds() {
        let mut options: GlobalOptions = defaults().unwrap();
        options.seconds = 0.5;
        let measurements = measurements(&options).unwrap();
        let text = format!("{measurements:?}");
        for expected in [
            "Produce(ProduceArgs { writers: [1, 4], buckets: 4, batch_rows: 1024, \
             acks: \"all\", compression: \"none\", tables: 1, row_bytes: 1024, \
             append_rows: None, linger_ms: 1.0 })",
            "Consume(ConsumeArgs { fill_seconds: 0.5, buckets: 4 })",
            "E2e(E2eArgs { rate: [\"1000\"], batch_rows: 10, buckets: 4, acks: \"all\" })",
            "Mixed(MixedArgs { writers: 2, readers: 2, buckets: 4, batch_rows: 1024, \
             columns: \"all\" })",
            "Upsert(KvArgs { keys: 10000, distribution: [\"uniform\", \"zipfian\"], actors: 4, \
             batch_rows: 100, buckets: 4 })",
            "Lookup(KvArgs { keys: 10000, distribution: [\"uniform\", \"zipfian\"], actors: 4, \
             batch_rows: 1, buckets: 4 })",
            "Limits(LimitsArgs { ping_samples: 500 })",
        ] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
        assert_eq!(measurements.len(), 7);
    }
}
