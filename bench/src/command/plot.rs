//! `ufer-bench plot`: a latency-by-percentile SVG of runs saved with `--json`, overlaid: one
//! line per run and rate (e2e) or writer count (produce).

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::error::BenchError;
use crate::plot::{svg, Point, Series};

/// The options of `ufer-bench plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// JSON files written by --json, each optionally `FILE=LABEL` for the legend.
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// Which latency: `e2e` (produce to consume) or `produce` (batch acknowledgements).
    #[arg(long, default_value = "e2e")]
    pub workload: String,
    /// The SVG file to write.
    #[arg(long, short, default_value = "latency.svg")]
    pub output: PathBuf,
    /// The plot's title.
    #[arg(long)]
    pub title: Option<String>,
    /// Only these e2e rates (rows/s), comma-separated: lines of very different scales
    /// flatten each other on one linear latency axis.
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<u64>,
}

/// Which figures of a run's JSON file are plotted.
struct Latency {
    /// The run's results key: `e2e` or `produce`.
    key: &'static str,
    /// The key of the spectrum in each of its entries.
    spectrum_key: &'static str,
    /// What the title calls it.
    what: &'static str,
}

/// Writes the plot of `args.runs` to `args.output`.
pub fn run(args: &PlotArgs) -> Result<(), BenchError> {
    let latency = match args.workload.as_str() {
        "e2e" => Latency {
            key: "e2e",
            spectrum_key: "latency_spectrum",
            what: "produce-to-consume latency",
        },
        "produce" => Latency {
            key: "produce",
            spectrum_key: "batch_latency_spectrum",
            what: "produce batch latency",
        },
        other => {
            return Err(BenchError::Other(format!("--workload is e2e or produce, not {other:?}")))
        }
    };
    let mut series = Vec::new();
    for run in &args.runs {
        series.extend(series_of_run(run, &latency, &args.rates)?);
    }
    let title =
        args.title.clone().unwrap_or_else(|| format!("ufer {} by percentile", latency.what));
    std::fs::write(&args.output, svg(&title, &series))?;
    println!("{} line(s) plotted to {}", series.len(), args.output.display());
    Ok(())
}

/// The lines of one run, `FILE` or `FILE=LABEL`; e2e lines only at `rates` if any are given.
fn series_of_run(run: &str, latency: &Latency, rates: &[u64]) -> Result<Vec<Series>, BenchError> {
    let (file, label) = match run.split_once('=') {
        Some((file, label)) => (file, label.to_string()),
        None => (run, run.trim_end_matches(".json").to_string()),
    };
    let key = latency.key;
    let document: Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
    let entries = document["results"][key].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return Err(BenchError::Other(format!("{file} has no {key} results")));
    }
    let mut series = Vec::new();
    for entry in entries {
        let rate = entry["rate_rows_per_s"].as_u64();
        if key == "e2e" && !rates.is_empty() && !rate.is_some_and(|rate| rates.contains(&rate)) {
            continue;
        }
        let spectrum_key = latency.spectrum_key;
        let points: Vec<Point> = serde_json::from_value(entry[spectrum_key].clone())
            .map_err(|_| BenchError::Other(format!("{file}: no {spectrum_key} (an older run?)")))?;
        let detail = match key {
            "e2e" => format!("{} rows/s", entry["rate_rows_per_s"]),
            _ => format!("{} writer(s)", entry["writers"]),
        };
        series.push(Series { label: format!("{label}, {detail}"), points });
    }
    Ok(series)
}
