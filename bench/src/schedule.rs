//! [`Schedule`]: when an open-loop load sends, and how its latency is measured.
//!
//! Send `k` is due at `start + k × rows_per_send / rate`, computed from the index in integer
//! nanoseconds (no drift however long the run). Latency is measured from when a send was
//! *due*, not from when it went out: a sender held up by a stall sends late, and every send
//! the stall delayed carries the wait it caused. Measuring from the actual send instead
//! would record one slow sample per stall and hide the rest (coordinated omission).

use std::time::{Duration, Instant};

/// Nanoseconds per second.
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A fixed-rate schedule of sends.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    start: Instant,
    rows_per_send: u64,
    rate_rows_per_s: u64,
}

impl Schedule {
    /// `rate_rows_per_s` rows a second in sends of `rows_per_send`, from `start`; `None` if
    /// either is zero.
    pub fn new(start: Instant, rate_rows_per_s: u64, rows_per_send: u64) -> Option<Self> {
        (rate_rows_per_s > 0 && rows_per_send > 0).then_some(Self {
            start,
            rows_per_send,
            rate_rows_per_s,
        })
    }

    /// When the schedule began.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// How long after the start send `index` is due.
    pub fn offset(&self, index: u64) -> Duration {
        let nanos = u128::from(index) * u128::from(self.rows_per_send) * NANOS_PER_SECOND
            / u128::from(self.rate_rows_per_s);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// When send `index` is due.
    pub fn due(&self, index: u64) -> Instant {
        self.start + self.offset(index)
    }

    /// How many sends are due in the first `span` of the schedule.
    pub fn sends_within(&self, span: Duration) -> u64 {
        // The sends k with k × rows_per_send / rate < span.
        let numerator = span.as_nanos() * u128::from(self.rate_rows_per_s);
        let denominator = u128::from(self.rows_per_send) * NANOS_PER_SECOND;
        u64::try_from(numerator.div_ceil(denominator)).unwrap_or(u64::MAX)
    }

    /// The latency of send `index` that completed at `done`: from when it was due.
    pub fn latency(&self, index: u64, done: Instant) -> Duration {
        done.saturating_duration_since(self.due(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{latency_histogram, record, Percentiles};

    #[test]
    fn sends_are_due_at_the_rate_without_drift() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 1_000, 10).unwrap();
        assert_eq!(schedule.offset(1), Duration::from_millis(10));
        assert_eq!(schedule.sends_within(Duration::from_secs(3)), 300);
        // A rate whose interval is not a whole number of nanoseconds: 3 rows a second.
        let thirds = Schedule::new(start, 3, 1).unwrap();
        assert_eq!(thirds.offset(3), Duration::from_secs(1));
        assert_eq!(thirds.offset(3_000_000), Duration::from_secs(1_000_000));
        assert_eq!(thirds.sends_within(Duration::from_secs(3)), 9);
        assert_eq!(thirds.sends_within(Duration::from_millis(3_001)), 10);
        assert!(Schedule::new(start, 0, 1).is_none() && Schedule::new(start, 1, 0).is_none());
    }

    /// A sender that sends each request when it is due or when the previous one came back,
    /// whichever is later, against a server that answers in 100 µs except for one 200 ms
    /// stall: the latencies it reports from the due times, and from the actual sends.
    fn simulate_stall() -> (Percentiles, Percentiles, u64) {
        let start = Instant::now();
        let schedule = Schedule::new(start, 1_000, 1).unwrap();
        let service = Duration::from_micros(100);
        let stall = (start + Duration::from_secs(1), Duration::from_millis(200));
        let (mut from_due, mut from_send) = (latency_histogram(), latency_histogram());
        let mut free_at = start;
        let sends = schedule.sends_within(Duration::from_secs(3));
        for index in 0..sends {
            let sent = schedule.due(index).max(free_at);
            let mut done = sent + service;
            if sent <= stall.0 && stall.0 < done {
                done += stall.1;
            }
            free_at = done;
            record(&mut from_due, schedule.latency(index, done).as_micros() as u64);
            record(&mut from_send, (done - sent).as_micros() as u64);
        }
        (Percentiles::of(&from_due), Percentiles::of(&from_send), sends)
    }

    #[test]
    fn a_stall_delays_every_send_it_holds_up() {
        let (from_due, from_send, sends) = simulate_stall();
        assert_eq!(from_due.samples, sends);
        // 200 ms at 1 000 sends a second holds up ~200 sends, waiting 200 ms down to 0:
        // about 6.7% of 3 000 samples, so p99 is deep in the stall and p90 is not.
        assert!(from_due.p99_us > 100_000, "{from_due:?}");
        assert!(from_due.p90_us < 1_000, "{from_due:?}");
        assert!(from_due.max_us >= 200_000, "{from_due:?}");
        // Measured from the actual sends, the stall is one sample and vanishes below max.
        assert!(from_send.p99_us < 1_000, "{from_send:?}");
        assert!(from_send.p999_us < 1_000, "{from_send:?}");
        assert!(from_send.max_us >= 200_000, "{from_send:?}");
    }
}
