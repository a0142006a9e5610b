//! What a throughput or latency run measured, and how repeated runs are summarized: medians
//! with their spread, because the machines these run on are shared and noisy.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Bytes and batches made durable in `elapsed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Batch bytes (not counting padding to blocks).
    pub bytes: u64,
    /// Batches.
    pub batches: u64,
    /// Wall time from the first write to the last one being durable.
    pub elapsed: Duration,
}

impl Rate {
    /// Throughput in megabytes (10^6 bytes) per second.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }

    /// Batches per second.
    pub fn batches_per_s(&self) -> f64 {
        self.batches as f64 / self.elapsed.as_secs_f64()
    }
}

/// The median and range of repeated measurements of one quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (the upper one of an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// Summarizes `values`.
    ///
    /// # Panics
    /// If `values` is empty: a benchmark ran no repetition.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.into_iter().collect();
        assert!(!values.is_empty(), "a spread of no values");
        values.sort_by(f64::total_cmp);
        Self { median: values[values.len() / 2], min: values[0], max: values[values.len() - 1] }
    }

    /// `(max - min) / median`: how far apart the repetitions were.
    pub fn relative_range(&self) -> f64 {
        (self.max - self.min) / self.median
    }
}

/// Percentiles of a latency histogram recorded in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencySummary {
    /// Samples recorded.
    pub sample_count: u64,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile (only meaningful with well over 1 000 samples).
    pub p999: Duration,
    /// Largest sample.
    pub max: Duration,
}

impl LatencySummary {
    /// Reads the percentiles of `histogram`, whose values are nanoseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let at = |quantile| Duration::from_nanos(histogram.value_at_quantile(quantile));
        Self {
            sample_count: histogram.len(),
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_nanos(histogram.max()),
        }
    }
}

/// A duration in the unit that reads best: `850 µs`, `1.36 ms`, `2.1 s`.
pub fn human_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1_000_000.0 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.1} s", micros / 1e6)
    }
}

/// A size in KiB or MiB: `15.9 KiB`, `1.0 MiB`.
pub fn human_size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_value() {
        let spread = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!(spread, Spread { median: 2.0, min: 1.0, max: 3.0 });
        assert_eq!(spread.relative_range(), 1.0);
        assert_eq!(Spread::of([5.0]).median, 5.0);
    }

    #[test]
    fn rates_and_percentiles() {
        let rate = Rate { bytes: 2_000_000, batches: 4, elapsed: Duration::from_secs(2) };
        assert_eq!(rate.mb_per_s(), 1.0);
        assert_eq!(rate.batches_per_s(), 2.0);
        let mut histogram = Histogram::<u64>::new(3).unwrap();
        for micros in 1..=1000u64 {
            histogram.record(micros * 1000).unwrap();
        }
        let summary = LatencySummary::of(&histogram);
        assert_eq!(summary.sample_count, 1000);
        assert!((499..=501).contains(&summary.p50.as_micros()), "{:?}", summary.p50);
        assert_eq!(human_duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(human_duration(Duration::from_micros(1_360)), "1.36 ms");
        assert_eq!(human_size(16 * 1024), "16.0 KiB");
    }
}
