//! Baselines: the median time of every criterion benchmark, recorded in
//! `perf/baselines/<name>.json` (a map from benchmark id to median nanoseconds), and the
//! comparison of a new run against them (`perf_compare`; `perf/baselines/README.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

/// Benchmark id (`group/function`) to median time in nanoseconds.
pub type Baseline = BTreeMap<String, f64>;

/// Directories deeper than this under criterion's output are not searched (criterion nests
/// `group/function/parameter/new`).
const CRITERION_DEPTH_MAX: usize = 6;

/// Why baselines or criterion's results could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// A file or directory could not be read or written; check the path.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not the JSON expected (criterion's format changed, or a hand edit broke a
    /// baseline).
    #[error("{path} is not a valid {what}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// One benchmark's latest result in criterion's output.
#[derive(Clone, Debug, PartialEq)]
pub struct CriterionResult {
    /// `group/function` (criterion's `full_id`).
    pub id: String,
    /// Median time per iteration, in nanoseconds.
    pub median_ns: f64,
    /// Bytes per iteration, if the benchmark declared a byte throughput.
    pub throughput_bytes: Option<u64>,
    /// When the result was written (old results of renamed benchmarks linger).
    pub modified: Option<SystemTime>,
}

impl CriterionResult {
    /// Throughput at the median time in GiB/s, if the benchmark declared bytes.
    pub fn gib_per_s(&self) -> Option<f64> {
        let bytes = self.throughput_bytes? as f64;
        Some(bytes / (self.median_ns / 1e9) / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Reads the latest result (`.../new/{benchmark,estimates}.json`) of every benchmark under
/// criterion's output directory, sorted by id.
pub fn read_criterion_results(dir: &Path) -> Result<Vec<CriterionResult>, BaselineError> {
    let mut result_dirs = Vec::new();
    find_result_dirs(dir, 0, &mut result_dirs)?;
    let mut results = Vec::with_capacity(result_dirs.len());
    for result_dir in result_dirs {
        results.push(read_result(&result_dir)?);
    }
    results.sort_by(|left, right| left.id.cmp(&right.id));
    Ok(results)
}

/// Splits `results` into those of the latest run and stale ones. Criterion keeps the
/// results of renamed or removed benchmarks, and of benchmarks a filtered run skipped,
/// forever; a run is taken to be the results written one after another, newest first, with
/// no pause longer than `gap_max` between two of them. Results without a time are kept.
pub fn split_stale(
    results: Vec<CriterionResult>,
    gap_max: Duration,
) -> (Vec<CriterionResult>, Vec<CriterionResult>) {
    let mut times: Vec<SystemTime> = results.iter().filter_map(|result| result.modified).collect();
    times.sort_unstable_by(|left, right| right.cmp(left));
    let mut run_start = times.first().copied();
    for pair in times.windows(2) {
        let gap = pair[0].duration_since(pair[1]).unwrap_or_default();
        if gap > gap_max {
            break;
        }
        run_start = Some(pair[1]);
    }
    results.into_iter().partition(|result| match (result.modified, run_start) {
        (Some(modified), Some(start)) => modified >= start,
        _ => true,
    })
}

fn find_result_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), BaselineError> {
    let io_error = |source| BaselineError::Io { action: "listing", path: dir.into(), source };
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if !path.is_dir() {
            continue;
        }
        let is_result = path.file_name().is_some_and(|name| name == "new")
            && path.join("estimates.json").is_file()
            && path.join("benchmark.json").is_file();
        if is_result {
            out.push(path);
        } else if depth < CRITERION_DEPTH_MAX {
            find_result_dirs(&path, depth + 1, out)?;
        }
    }
    Ok(())
}

fn read_result(dir: &Path) -> Result<CriterionResult, BaselineError> {
    let benchmark_path = dir.join("benchmark.json");
    let benchmark = read_json(&benchmark_path)?;
    let estimates_path = dir.join("estimates.json");
    let estimates = read_json(&estimates_path)?;
    let format_error = |path: &Path, what, reason: &str| BaselineError::Format {
        path: path.into(),
        what,
        reason: reason.into(),
    };
    let id = benchmark["full_id"]
        .as_str()
        .ok_or_else(|| format_error(&benchmark_path, "criterion benchmark", "no full_id"))?
        .to_string();
    let median_ns = estimates["median"]["point_estimate"].as_f64().ok_or_else(|| {
        format_error(&estimates_path, "criterion estimate", "no median.point_estimate")
    })?;
    let throughput = &benchmark["throughput"];
    let throughput_bytes =
        throughput["Bytes"].as_u64().or_else(|| throughput["BytesDecimal"].as_u64());
    let modified = std::fs::metadata(&estimates_path).and_then(|meta| meta.modified()).ok();
    Ok(CriterionResult { id, median_ns, throughput_bytes, modified })
}

fn read_json(path: &Path) -> Result<Value, BaselineError> {
    let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io {
        action: "reading",
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|error| BaselineError::Format {
        path: path.into(),
        what: "JSON file",
        reason: error.to_string(),
    })
}

/// Reads a baseline file.
pub fn read_baseline(path: &Path) -> Result<Baseline, BaselineError> {
    let value = read_json(path)?;
    let format_error = |reason: String| BaselineError::Format {
        path: path.into(),
        what: "baseline (a map of benchmark id to median ns)",
        reason,
    };
    let Value::Object(entries) = value else {
        return Err(format_error("not a JSON object".into()));
    };
    let mut baseline = Baseline::new();
    for (id, median) in entries {
        match median.as_f64() {
            Some(median_ns) if median_ns > 0.0 => baseline.insert(id, median_ns),
            _ => return Err(format_error(format!("{id}: {median} is not a positive number"))),
        };
    }
    Ok(baseline)
}

/// Writes `baseline` to `path` (creating its directory) as pretty JSON, sorted by id,
/// medians to 0.1 ns.
pub fn write_baseline(path: &Path, baseline: &Baseline) -> Result<(), BaselineError> {
    let rounded: BTreeMap<&str, f64> = baseline
        .iter()
        .map(|(id, median_ns)| (id.as_str(), (median_ns * 10.0).round() / 10.0))
        .collect();
    let mut text = serde_json::to_string_pretty(&rounded).map_err(|error| {
        BaselineError::Format { path: path.into(), what: "baseline", reason: error.to_string() }
    })?;
    text.push('\n');
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| BaselineError::Io {
            action: "creating",
            path: dir.into(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| BaselineError::Io {
        action: "writing",
        path: path.into(),
        source,
    })
}

/// How a benchmark's median moved against its baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Slower by more than the noise threshold.
    Regression,
    /// Faster by more than the noise threshold.
    Improvement,
    /// Within the noise threshold.
    Unchanged,
    /// In the results but not in the baseline.
    New,
    /// In the baseline but not in the results (not run, or renamed).
    Missing,
}

/// One benchmark's median against its baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Benchmark id.
    pub id: String,
    /// Median in the baseline, ns.
    pub baseline_ns: Option<f64>,
    /// Median now, ns.
    pub current_ns: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

impl Comparison {
    /// `current / baseline - 1`: +0.25 is 25% slower.
    pub fn change(&self) -> Option<f64> {
        Some(self.current_ns? / self.baseline_ns? - 1.0)
    }
}

/// Compares `current` medians with `baseline`; a change beyond `threshold` (0.10 for 10%)
/// either way is a regression or an improvement. Sorted by id.
pub fn compare(baseline: &Baseline, current: &Baseline, threshold: f64) -> Vec<Comparison> {
    assert!(threshold >= 0.0, "a noise threshold is not negative");
    let mut ids: Vec<&String> = baseline.keys().chain(current.keys()).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let baseline_ns = baseline.get(id).copied();
            let current_ns = current.get(id).copied();
            let verdict = match (baseline_ns, current_ns) {
                (None, _) => Verdict::New,
                (_, None) => Verdict::Missing,
                (Some(old), Some(new)) if new > old * (1.0 + threshold) => Verdict::Regression,
                (Some(old), Some(new)) if new < old * (1.0 - threshold) => Verdict::Improvement,
                _ => Verdict::Unchanged,
            };
            Comparison { id: id.clone(), baseline_ns, current_ns, verdict }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(entries: &[(&str, f64)]) -> Baseline {
        entries.iter().map(|(id, ns)| (id.to_string(), *ns)).collect()
    }

    #[test]
    fn verdicts_follow_the_threshold() {
        let old = baseline(&[("a", 100.0), ("b", 100.0), ("c", 100.0), ("gone", 1.0)]);
        let new = baseline(&[("a", 111.0), ("b", 89.0), ("c", 109.0), ("fresh", 1.0)]);
        let verdicts: Vec<(String, Verdict)> = compare(&old, &new, 0.10)
            .into_iter()
            .map(|comparison| (comparison.id, comparison.verdict))
            .collect();
        let expected = [
            ("a", Verdict::Regression),
            ("b", Verdict::Improvement),
            ("c", Verdict::Unchanged),
            ("fresh", Verdict::New),
            ("gone", Verdict::Missing),
        ];
        let expected: Vec<(String, Verdict)> =
            expected.iter().map(|(id, verdict)| (id.to_string(), *verdict)).collect();
        assert_eq!(verdicts, expected);
    }

    #[test]
    fn baselines_round_trip_and_reject_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines/b.json");
        let written = baseline(&[("build/plain", 136_000.04), ("verify/crc", 55_000.0)]);
        write_baseline(&path, &written).unwrap();
        let read = read_baseline(&path).unwrap();
        assert_eq!(read, baseline(&[("build/plain", 136_000.0), ("verify/crc", 55_000.0)]));
        std::fs::write(&path, r#"{"x": "fast"}"#).unwrap();
        assert!(matches!(read_baseline(&path), Err(BaselineError::Format { .. })));
        std::fs::write(&path, "[1]").unwrap();
        assert!(matches!(read_baseline(&path), Err(BaselineError::Format { .. })));
    }

    #[test]
    fn old_results_are_stale() {
        let now = SystemTime::now();
        let result = |id: &str, age_s: u64| CriterionResult {
            id: id.into(),
            median_ns: 1.0,
            throughput_bytes: None,
            modified: Some(now - Duration::from_secs(age_s)),
        };
        let results = vec![
            result("fresh", 0),
            result("same_run", 50),
            result("start_of_run", 150),
            result("older_run", 800),
            result("oldest", 7200),
        ];
        let (kept, stale) = split_stale(results, Duration::from_secs(300));
        let ids = |results: &[CriterionResult]| -> Vec<String> {
            results.iter().map(|result| result.id.clone()).collect()
        };
        assert_eq!(ids(&kept), ["fresh", "same_run", "start_of_run"]);
        assert_eq!(ids(&stale), ["older_run", "oldest"]);
    }

    #[test]
    fn reads_criterion_output() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("decode/all_columns/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::create_dir_all(dir.path().join("decode/all_columns/base")).unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"decode","function_id":"all_columns","full_id":"decode/all_columns",
                "throughput":{"Bytes":1073741824}}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":2.0e9},"median":{"point_estimate":1.0e9}}"#,
        )
        .unwrap();
        let results = read_criterion_results(dir.path()).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].id, "decode/all_columns");
        assert_eq!(results[0].median_ns, 1.0e9);
        assert_eq!(results[0].gib_per_s(), Some(1.0));
    }
}
