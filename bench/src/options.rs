//! The options every command shares (`--target`, `--seconds`, `--reps`, `--json`, …), what
//! follows from them, and the option values that more than one command parses (`--acks`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ufer_wire::protocol::messages::Acks;

use crate::error::BenchError;

/// Options given before or after the command; every command reads the ones it needs.
#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// `embedded` (start a node) or HOST:PORT of a running node's shard endpoint.
    #[arg(long, default_value = "embedded", global = true)]
    pub target: String,
    /// A running node's data directory, whose certificate to trust (with --target HOST:PORT).
    #[arg(long, global = true)]
    pub trust_dir: Option<PathBuf>,
    /// Where the embedded node's data directory is made (a fresh one inside, removed after).
    #[arg(long, global = true)]
    pub dir: Option<PathBuf>,
    /// Shards of the embedded node (default: one per core).
    #[arg(long, global = true)]
    pub shards: Option<usize>,
    /// Do not pin the embedded node's shards to cores.
    #[arg(long, global = true)]
    pub no_pin: bool,
    /// Microseconds the embedded node's idle shards spin before parking.
    #[arg(long, default_value_t = 50, global = true)]
    pub spin_before_park_us: u64,
    /// UDP socket buffer of the embedded node's endpoints, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024, global = true)]
    pub udp_buffer_bytes: usize,
    /// Measured seconds per repetition.
    #[arg(long, default_value_t = 5.0, global = true)]
    pub seconds: f64,
    /// Warm-up seconds per repetition (not measured).
    #[arg(long, default_value_t = 1.0, global = true)]
    pub warmup_seconds: f64,
    /// Repetitions (figures are medians; runs being compared are interleaved).
    #[arg(long, default_value_t = 3, global = true)]
    pub reps: usize,
    /// Write every figure, the parameters and the machine's facts to this JSON file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
}

impl GlobalOptions {
    /// The warm-up and the measured time of one repetition.
    pub fn durations(&self) -> (Duration, Duration) {
        (
            Duration::from_secs_f64(self.warmup_seconds.max(0.0)),
            Duration::from_secs_f64(self.seconds.max(0.1)),
        )
    }

    /// Shards of a node this process starts: `--shards`, or one per core.
    pub fn shard_count(&self) -> usize {
        self.shards
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cores| cores.get()))
    }

    /// Where a node this process starts makes its data directory: `--dir`, or the temporary
    /// directory.
    pub fn parent_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}

/// The value of `--acks`: 0, 1 or all (or their other names).
pub fn acks(text: &str) -> Result<Acks, BenchError> {
    match text {
        "0" | "none" => Ok(Acks::None),
        "1" | "leader" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        other => Err(BenchError::Other(format!("--acks {other:?}: use 0, 1 or all"))),
    }
}

/// `T` as a command line without any of its flags gives it: every option at its default,
/// read from the one place the defaults are written (the `#[arg]` attributes).
pub fn defaults<T: Args + clap::FromArgMatches>() -> Result<T, BenchError> {
    let invalid = |error: clap::Error| BenchError::Other(format!("defaults: {error}"));
    let matches = T::augment_args(clap::Command::new("defaults"))
        .try_get_matches_from(["defaults"])
        .map_err(invalid)?;
    T::from_arg_matches(&matches).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_take_numbers_and_names() {
        assert_eq!(acks("0").ok(), Some(Acks::None));
        assert_eq!(acks("leader").ok(), Some(Acks::Leader));
        assert_eq!(acks("-1").ok(), Some(Acks::All));
        assert!(acks("2").is_err());
    }
}
