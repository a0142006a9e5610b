//! What a run measured and how it is summarized: throughput over a measurement window that
//! leaves out the warm-up, latency percentiles from histograms merged across every actor
//! (never averaged percentiles), medians of repeated runs with their spread, and the text of
//! the report lines that show them.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::BenchError;

/// Largest latency recorded, in microseconds (longer samples are clamped to it).
pub const LATENCY_MAX_US: u64 = 60_000_000;

/// Significant digits of latency histograms.
const LATENCY_PRECISION_DIGITS: u8 = 3;

/// A latency histogram in microseconds.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure is a programming error.
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_PRECISION_DIGITS)
        .unwrap_or_else(|error| panic!("latency histogram bounds: {error}"))
}

/// Records `value_us`, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, value_us: u64) {
    histogram.saturating_record(value_us.clamp(1, LATENCY_MAX_US));
}

/// A latency histogram (µs) of `latencies`.
pub fn histogram_of(latencies: &[Duration]) -> Histogram<u64> {
    let mut histogram = latency_histogram();
    for latency in latencies {
        record(&mut histogram, latency.as_micros() as u64);
    }
    histogram
}

/// Adds the samples of `part` (one repetition, one actor) to `total`.
pub fn merge_into(total: &mut Histogram<u64>, part: &Histogram<u64>) -> Result<(), BenchError> {
    total.add(part).map_err(|error| BenchError::Other(error.to_string()))
}

/// The part of a run that is measured: from the end of the warm-up for `duration`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Measurement starts.
    pub start: Instant,
    /// Measurement ends.
    pub end: Instant,
}

impl Window {
    /// A window starting `warmup` from now and lasting `duration`.
    pub fn after(warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now() + warmup;
        Self { start, end: start + duration }
    }

    /// True if `at` is inside.
    pub fn contains(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }

    /// Its length.
    pub fn duration(&self) -> Duration {
        self.end - self.start
    }
}

/// Work done in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Bytes moved (on the wire, or as the workload says).
    pub bytes: u64,
    /// Rows (0 for raw transfers).
    pub rows: u64,
    /// Requests or batches.
    pub requests: u64,
    /// Length of the window.
    pub seconds: f64,
}

impl Throughput {
    /// Adds one completed request of `bytes` and `rows`.
    pub fn add(&mut self, bytes: u64, rows: u64) {
        self.bytes += bytes;
        self.rows += rows;
        self.requests += 1;
    }

    /// Sums two counts over the same window.
    pub fn merge(&mut self, other: &Throughput) {
        self.bytes += other.bytes;
        self.rows += other.rows;
        self.requests += other.requests;
        self.seconds = self.seconds.max(other.seconds);
    }

    /// Megabytes (10^6 bytes) per second.
    pub fn mb_per_s(&self) -> f64 {
        per_second(self.bytes as f64 / 1e6, self.seconds)
    }

    /// Rows per second.
    pub fn rows_per_s(&self) -> f64 {
        per_second(self.rows as f64, self.seconds)
    }

    /// Requests per second.
    pub fn requests_per_s(&self) -> f64 {
        per_second(self.requests as f64, self.seconds)
    }
}

fn per_second(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        amount / seconds
    } else {
        0.0
    }
}

/// Percentiles of a latency histogram (microseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th.
    pub p99_us: u64,
    /// 99.9th (meaningful with well over 1 000 samples).
    pub p999_us: u64,
    /// 99.99th (meaningful with well over 10 000 samples).
    pub p9999_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Percentiles {
    /// Reads them from `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let at = |quantile| histogram.value_at_quantile(quantile);
        Self {
            samples: histogram.len(),
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            p999_us: at(0.999),
            p9999_us: at(0.9999),
            max_us: histogram.max(),
        }
    }

    /// As a report line shows them: `p50 1.36 ms / p90 … / max …`.
    pub fn line(&self) -> String {
        format!(
            "p50 {} / p90 {} / p99 {} / p99.9 {} / p99.99 {} / max {}",
            human_us(self.p50_us),
            human_us(self.p90_us),
            human_us(self.p99_us),
            human_us(self.p999_us),
            // Fewer than 10 000 samples put p99.99 on the largest one or two.
            if self.samples >= 10_000 { human_us(self.p9999_us) } else { "—".into() },
            human_us(self.max_us)
        )
    }
}

/// The median and range of repeated measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Median (the upper one of an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Summarizes `values` (all zero if there are none).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.into_iter().collect();
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        Self { median: values[values.len() / 2], min: values[0], max: values[values.len() - 1] }
    }

    /// As a report line shows it: `259 MB/s (231–301)`, the median and the range in `unit`.
    pub fn line(&self, unit: &str) -> String {
        format!("{:.0} {unit} ({:.0}–{:.0})", self.median, self.min, self.max)
    }
}

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Microseconds as the unit that reads best: `850 µs`, `1.36 ms`, `2.1 s`.
pub fn human_us(micros: u64) -> String {
    let micros = micros as f64;
    if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1_000_000.0 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.1} s", micros / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_counts_per_second_and_merges() {
        let mut a = Throughput { seconds: 2.0, ..Throughput::default() };
        a.add(4_000_000, 10);
        a.add(2_000_000, 0);
        let mut b = Throughput { seconds: 2.0, ..Throughput::default() };
        b.add(2_000_000, 10);
        a.merge(&b);
        assert_eq!((a.bytes, a.rows, a.requests), (8_000_000, 20, 3));
        assert_eq!(a.mb_per_s(), 4.0);
        assert_eq!(a.rows_per_s(), 10.0);
        assert_eq!(a.requests_per_s(), 1.5);
        assert_eq!(Throughput::default().mb_per_s(), 0.0);
    }

    #[test]
    fn percentiles_come_from_merged_histograms_not_averages() {
        // One actor saw 99 fast requests, another one slow one: the merged p99 is fast and
        // the max is the slow one; averaging per-actor p99s would say ~500 ms.
        let mut fast = latency_histogram();
        for _ in 0..99 {
            record(&mut fast, 100);
        }
        let mut slow = latency_histogram();
        record(&mut slow, 1_000_000);
        fast.add(&slow).unwrap();
        let percentiles = Percentiles::of(&fast);
        assert_eq!(percentiles.samples, 100);
        assert!((100..=101).contains(&percentiles.p99_us), "{percentiles:?}");
        assert!(percentiles.max_us >= 999_000, "{percentiles:?}");
        record(&mut fast, u64::MAX);
        assert!(Percentiles::of(&fast).max_us >= LATENCY_MAX_US);
        assert_eq!(Percentiles::of(&latency_histogram()), Percentiles::default());
    }

    #[test]
    fn spreads_take_the_median_and_windows_exclude_the_warmup() {
        let spread = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((spread.median, spread.min, spread.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([]).median, 0.0);
        let window = Window::after(Duration::from_secs(10), Duration::from_secs(1));
        assert!(!window.contains(Instant::now()));
        assert!(window.contains(window.start));
        assert!(!window.contains(window.end));
        assert_eq!(window.duration(), Duration::from_secs(1));
        assert_eq!(ratio(1.0, 0.0), 0.0);
        assert_eq!(human_us(1_360), "1.36 ms");
    }

    #[test]
    fn report_lines_show_medians_ranges_and_no_p9999_from_few_samples() {
        assert_eq!(Spread::of([231.0, 259.4, 301.0]).line("MB/s"), "259 MB/s (231–301)");
        let mut histogram = histogram_of(&[Duration::from_micros(850), Duration::from_secs(2)]);
        assert_eq!(
            Percentiles::of(&histogram).line(),
            "p50 850 µs / p90 2.0 s / p99 2.0 s / p99.9 2.0 s / p99.99 — / max 2.0 s"
        );
        merge_into(&mut histogram, &histogram_of(&[Duration::from_millis(1); 10_000])).unwrap();
        assert!(!Percentiles::of(&histogram).line().contains("p99.99 —"));
    }
}
