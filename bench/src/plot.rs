//! Latency-by-percentile plots in the HdrHistogram style: the percentile axis is
//! logarithmic in `1 / (1 - p)`, so 90%, 99%, 99.9% and 99.99% sit at equal steps and the
//! tail gets as much room as the median. Several runs are overlaid, one line each.
//!
//! [`spectrum`] turns a histogram into the points that `ufer-bench --json` stores;
//! [`svg`] draws series of them as a self-contained SVG document.

use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::Serialize;

/// One point of a latency spectrum: the share of samples at or below `value_us`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Point {
    /// Percentile, 0 to 100.
    pub percentile: f64,
    /// Latency at it, in microseconds.
    pub value_us: u64,
}

/// A named line of the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub label: String,
    /// Its points, by increasing percentile.
    pub points: Vec<Point>,
}

/// Deepest percentile drawn: 99.999% (one in 100 000).
const DEPTH_NINES: f64 = 5.0;
/// Plot area and margins, in SVG units.
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// The plot area inside the margins.
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;
/// Line colours, in order.
const COLOURS: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

/// The percentile spectrum of `histogram`: five points per halving of the distance to
/// 100%, then the maximum. Empty for an empty histogram.
pub fn spectrum(histogram: &Histogram<u64>) -> Vec<Point> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<Point> = histogram
        .iter_quantiles(5)
        .map(|step| Point {
            percentile: step.quantile_iterated_to() * 100.0,
            value_us: histogram.highest_equivalent(step.value_iterated_to()),
        })
        .collect();
    points.dedup_by(|later, earlier| later.percentile == earlier.percentile);
    points
}

/// How far right a percentile sits: the number of nines, `log10(1 / (1 - p))`, capped.
fn nines(percentile: f64) -> f64 {
    let remaining = (100.0 - percentile) / 100.0;
    if remaining <= 0.0 {
        DEPTH_NINES
    } else {
        (-remaining.log10()).clamp(0.0, DEPTH_NINES)
    }
}

/// A round latency above `value_us` for the top of the axis, and the tick step under it.
fn latency_axis(value_us: u64) -> (f64, f64) {
    let value = (value_us.max(1)) as f64;
    let magnitude = 10f64.powf(value.log10().floor());
    for step in [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0] {
        let top = (value / (magnitude * step)).ceil() * magnitude * step;
        if top / (magnitude * step) <= 10.0 {
            return (top, magnitude * step);
        }
    }
    (value, value / 5.0)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn label_us(value_us: f64) -> String {
    if value_us >= 1_000_000.0 {
        format!("{} s", value_us / 1e6)
    } else if value_us >= 1_000.0 {
        format!("{} ms", value_us / 1e3)
    } else {
        format!("{value_us} µs")
    }
}

/// `series` drawn as one SVG document titled `title`.
pub fn svg(title: &str, series: &[Series]) -> String {
    let highest = series.iter().flat_map(|line| line.points.iter()).map(|point| point.value_us);
    let (top_us, step_us) = latency_axis(highest.max().unwrap_or(1));
    let scale = Scale { top_us };

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
        LEFT + PLOT_WIDTH / 2.0,
        escape(title)
    );
    write_percentile_axis(&mut out, &scale);
    write_latency_axis(&mut out, &scale, step_us);
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#444"/>"##
    );
    write_series(&mut out, series, &scale);
    out.push_str("</svg>\n");
    out
}

/// Where a point lands in the plot area, for a latency axis topping out at `top_us`.
struct Scale {
    top_us: f64,
}

impl Scale {
    fn x(&self, percentile: f64) -> f64 {
        LEFT + nines(percentile) / DEPTH_NINES * PLOT_WIDTH
    }

    fn y(&self, value_us: f64) -> f64 {
        TOP + PLOT_HEIGHT - value_us / self.top_us * PLOT_HEIGHT
    }
}

/// The percentile axis: 0%, 90%, 99%, … at equal steps, and its title.
fn write_percentile_axis(out: &mut String, scale: &Scale) {
    for nine in 0..=DEPTH_NINES as usize {
        let percentile = 100.0 - 100.0 / 10f64.powi(nine as i32);
        let at = scale.x(percentile);
        let label = match nine {
            0 => "0%".to_string(),
            _ => format!("{:.*}%", nine.saturating_sub(2), percentile),
        };
        let _ = writeln!(
            out,
            r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#ddd"/><text x="{at:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + PLOT_HEIGHT,
            TOP + PLOT_HEIGHT + 18.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + PLOT_WIDTH / 2.0,
        HEIGHT - 12.0
    );
}

/// The latency axis: a tick every `step_us` up to the top, and its title.
fn write_latency_axis(out: &mut String, scale: &Scale, step_us: f64) {
    let mut tick = 0.0;
    while tick <= scale.top_us + step_us / 2.0 {
        let at = scale.y(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + PLOT_WIDTH,
            LEFT - 6.0,
            at + 4.0,
            label_us(tick)
        );
        tick += step_us;
    }
    let _ = writeln!(
        out,
        r#"<text x="18" y="{:.1}" transform="rotate(-90 18 {:.1})" text-anchor="middle">latency</text>"#,
        TOP + PLOT_HEIGHT / 2.0,
        TOP + PLOT_HEIGHT / 2.0
    );
}

/// One line per series, and its legend entry.
fn write_series(out: &mut String, series: &[Series], scale: &Scale) {
    for (index, line) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<String> = line
            .points
            .iter()
            .map(|point| {
                format!("{:.1},{:.1}", scale.x(point.percentile), scale.y(point.value_us as f64))
            })
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let legend_y = TOP + 10.0 + index as f64 * 20.0;
        let legend_x = LEFT + PLOT_WIDTH + 14.0;
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x}" y1="{legend_y}" x2="{:.1}" y2="{legend_y}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            legend_x + 20.0,
            legend_x + 26.0,
            legend_y + 4.0,
            escape(&line.label)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{latency_histogram, record};

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut histogram = latency_histogram();
        for value in values {
            record(&mut histogram, value);
        }
        histogram
    }

    #[test]
    fn the_spectrum_climbs_to_the_maximum() {
        // 9 990 fast samples and 10 slow ones: the slow ones are the top 0.1%.
        let points = spectrum(&histogram((0..9_990).map(|_| 100).chain((0..10).map(|_| 50_000))));
        assert!(points.windows(2).all(|pair| pair[0].percentile < pair[1].percentile));
        assert!(points.windows(2).all(|pair| pair[0].value_us <= pair[1].value_us));
        let at = |percentile: f64| {
            points.iter().find(|point| point.percentile >= percentile).map(|point| point.value_us)
        };
        assert!(at(99.0).is_some_and(|value| value < 200), "{points:?}");
        assert!(at(99.95).is_some_and(|value| value >= 49_000), "{points:?}");
        assert_eq!(points.last().map(|point| point.percentile), Some(100.0));
        assert!(spectrum(&latency_histogram()).is_empty());
    }

    #[test]
    fn the_percentile_axis_gives_each_nine_the_same_room() {
        let step = nines(90.0) - nines(0.0);
        assert!((nines(99.0) - nines(90.0) - step).abs() < 1e-9);
        assert!((nines(99.99) - nines(99.9) - step).abs() < 1e-9);
        assert_eq!(nines(100.0), DEPTH_NINES);
    }

    #[test]
    fn the_svg_has_a_line_and_a_legend_entry_per_series() {
        let fast = Series {
            label: "spin 50 µs <a&b>".into(),
            points: spectrum(&histogram((1..=1_000).map(|value| value * 2))),
        };
        let slow = Series {
            label: "spin 0".into(),
            points: spectrum(&histogram((1..=1_000).map(|value| value * 3))),
        };
        let document = svg("e2e latency", &[fast, slow]);
        assert!(document.starts_with("<svg") && document.trim_end().ends_with("</svg>"));
        assert_eq!(document.matches("<polyline").count(), 2);
        assert!(document.contains("spin 50 µs &lt;a&amp;b&gt;"));
        assert!(document.contains(">99.9%<") && document.contains(">90%<"));
        // The axis reaches past the slowest sample (3 ms).
        assert!(document.contains(">3 ms<") || document.contains(">4 ms<"), "{document}");
    }

    #[test]
    fn latency_axes_end_on_round_numbers() {
        assert_eq!(latency_axis(3_000), (3_000.0, 500.0));
        let (top, step) = latency_axis(7_300);
        assert!((7_300.0..=10_000.0).contains(&top) && (top / step).fract() == 0.0);
    }
}
