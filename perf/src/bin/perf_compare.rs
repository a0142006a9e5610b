//! Compares criterion's latest medians with a recorded baseline and flags regressions beyond
//! a noise threshold, or records a new baseline (`perf/baselines/README.md`).
//!
//! `cargo run -p ufer-perf --release --bin perf_compare -- [--baseline NAME|PATH.json]
//! [--threshold PCT] [--record] [--criterion-dir DIR]`
//!
//! Exits with 1 if any benchmark regressed, 2 on bad usage or unreadable files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use ufer_perf::baseline::{compare, split_stale, CriterionResult, Verdict};
use ufer_perf::{read_baseline, read_criterion_results, write_baseline, Baseline};

/// The baseline of the development VM the figures in the README come from.
const BASELINE_NAME_DEFAULT: &str = "dev-2vcpu";

/// Changes within this many percent either way count as noise.
const THRESHOLD_PERCENT_DEFAULT: f64 = 10.0;

/// A pause this long between two results separates runs; older runs are ignored.
const RUN_GAP_MINUTES_DEFAULT: u64 = 5;

const USAGE: &str = "flags: --baseline NAME|PATH.json (default dev-2vcpu, in perf/baselines/) \
    --threshold PCT (default 10) --record (write the baseline instead of comparing) \
    --criterion-dir DIR (default $CARGO_TARGET_DIR/criterion, else next to this binary) \
    --run-gap-minutes M (a pause this long between results ends the latest run; default 5)";

struct Args {
    baseline: PathBuf,
    threshold_percent: f64,
    record: bool,
    criterion_dir: PathBuf,
    run_gap: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut baseline = BASELINE_NAME_DEFAULT.to_string();
    let mut threshold_percent = THRESHOLD_PERCENT_DEFAULT;
    let mut record = false;
    let mut criterion_dir = None;
    let mut run_gap_minutes = RUN_GAP_MINUTES_DEFAULT;
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--baseline" => baseline = value()?,
            "--threshold" => {
                let text = value()?;
                threshold_percent = text
                    .trim_end_matches('%')
                    .parse()
                    .ok()
                    .filter(|percent: &f64| *percent >= 0.0)
                    .ok_or_else(|| format!("--threshold takes a percentage, not {text:?}"))?;
            }
            "--record" => record = true,
            "--criterion-dir" => criterion_dir = Some(PathBuf::from(value()?)),
            "--run-gap-minutes" => {
                let text = value()?;
                run_gap_minutes = text
                    .parse()
                    .map_err(|_| format!("--run-gap-minutes takes a whole number, not {text:?}"))?;
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let baseline = if baseline.ends_with(".json") || baseline.contains('/') {
        PathBuf::from(baseline)
    } else {
        // `cargo run` sets the variable at run time; a binary built in another clone (CI
        // shares one target directory) falls back to where it was built.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        manifest_dir.join("baselines").join(format!("{baseline}.json"))
    };
    let criterion_dir = criterion_dir.unwrap_or_else(default_criterion_dir);
    let run_gap = Duration::from_secs(run_gap_minutes * 60);
    Ok(Args { baseline, threshold_percent, record, criterion_dir, run_gap })
}

/// `$CARGO_TARGET_DIR/criterion`, else the target directory this binary was built into
/// (`<target>/<profile>/perf_compare`).
fn default_criterion_dir() -> PathBuf {
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("criterion")))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let results = match read_criterion_results(&args.criterion_dir) {
        Ok(results) if !results.is_empty() => results,
        Ok(_) => {
            eprintln!(
                "no criterion results in {}; run the benches first",
                args.criterion_dir.display()
            );
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let (results, stale) = split_stale(results, args.run_gap);
    println!("{} results of the latest run in {}", results.len(), args.criterion_dir.display());
    for result in &stale {
        println!("ignored (older than the latest run): {}", result.id);
    }
    let current: Baseline =
        results.iter().map(|result| (result.id.clone(), result.median_ns)).collect();
    if args.record {
        if let Err(error) = write_baseline(&args.baseline, &current) {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
        println!("recorded {} medians in {}", current.len(), args.baseline.display());
        return ExitCode::SUCCESS;
    }
    let baseline = match read_baseline(&args.baseline) {
        Ok(baseline) => baseline,
        Err(error) => {
            eprintln!("{error}\n(record one with --record)");
            return ExitCode::from(2);
        }
    };
    let regressions = print_comparison(&baseline, &results, &args);
    if regressions > 0 {
        println!(
            "{regressions} regression(s) beyond {}%; re-run them before believing it (README)",
            args.threshold_percent
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Prints the table; returns the number of regressions.
fn print_comparison(baseline: &Baseline, results: &[CriterionResult], args: &Args) -> usize {
    let current: Baseline =
        results.iter().map(|result| (result.id.clone(), result.median_ns)).collect();
    let comparisons = compare(baseline, &current, args.threshold_percent / 100.0);
    println!("baseline {}, noise threshold {}%", args.baseline.display(), args.threshold_percent);
    println!(
        "{:<32} {:>12} {:>12} {:>8} {:>10}  verdict",
        "benchmark", "baseline", "now", "change", "now GiB/s"
    );
    let mut regressions = 0;
    for comparison in &comparisons {
        let gib_per_s = results
            .iter()
            .find(|result| result.id == comparison.id)
            .and_then(CriterionResult::gib_per_s)
            .map_or("-".into(), |rate| format!("{rate:.2}"));
        let change =
            comparison.change().map_or("-".into(), |change| format!("{:+.1}%", change * 100.0));
        let verdict = match comparison.verdict {
            Verdict::Regression => {
                regressions += 1;
                "REGRESSION"
            }
            Verdict::Improvement => "faster",
            Verdict::Unchanged => "ok",
            Verdict::New => "new (not in the baseline)",
            Verdict::Missing => "missing (not run?)",
        };
        println!(
            "{:<32} {:>12} {:>12} {:>8} {:>10}  {verdict}",
            comparison.id,
            comparison.baseline_ns.map_or("-".into(), format_ns),
            comparison.current_ns.map_or("-".into(), format_ns),
            change,
            gib_per_s,
        );
    }
    regressions
}

fn format_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.3} ms", ns / 1e6)
    }
}
