//! Where the shard's time comes from — wall-clock time for commit timestamps, segment ages
//! and retention, monotonic time for idle limits and intervals — so time-driven behaviour
//! can be driven by tests without sleeping.
//!
//! Invariants: a clock's monotonic readings never go back; a manual clock's monotonic time
//! moves only when the clock is advanced (setting its wall time is a step, not time
//! passing). Timers that really sleep (glommio's) are not clocks and stay real.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time.
pub trait Clock {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Now on the clock's monotonic time line, for measuring how long something took or
    /// has been idle.
    fn monotonic_now(&self) -> MonotonicTime;
}

/// A reading of a clock's monotonic time. Only the difference between two readings of the
/// same clock means anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonotonicTime(Instant);

impl MonotonicTime {
    /// The time from `earlier` to this reading; zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: MonotonicTime) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as i64)
            .unwrap_or(0)
    }

    fn monotonic_now(&self) -> MonotonicTime {
        MonotonicTime(Instant::now())
    }
}

/// A clock that moves only when told to. Clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now_ms: Rc<Cell<i64>>,
    /// Where its monotonic time line starts (any instant will do: only differences count).
    origin: Instant,
    /// Time advanced since it was made.
    elapsed: Rc<Cell<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(0)
    }
}

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self {
            now_ms: Rc::new(Cell::new(now_ms)),
            origin: Instant::now(),
            elapsed: Rc::new(Cell::new(Duration::ZERO)),
        }
    }

    /// Sets the wall time (a step, as when the system clock is set: monotonic time does not
    /// move).
    pub fn set(&self, now_ms: i64) {
        self.now_ms.set(now_ms);
    }

    /// Lets `delta_ms` milliseconds pass: wall and monotonic time move forward.
    pub fn advance(&self, delta_ms: i64) {
        assert!(delta_ms >= 0, "time passes forward; `set` steps the wall time back");
        self.now_ms.set(self.now_ms.get() + delta_ms);
        self.elapsed.set(self.elapsed.get() + Duration::from_millis(delta_ms as u64));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.get()
    }

    fn monotonic_now(&self) -> MonotonicTime {
        MonotonicTime(self.origin + self.elapsed.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_its_clones_move_with_it() {
        let clock = ManualClock::new(1_000);
        let start = clock.monotonic_now();
        assert_eq!(clock.monotonic_now(), start, "no time passes by itself");
        let clone = clock.clone();
        clone.advance(250);
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(
            clock.monotonic_now().saturating_duration_since(start),
            Duration::from_millis(250)
        );
        clock.set(500);
        assert_eq!(clock.now_ms(), 500, "the wall time steps back");
        assert_eq!(
            clock.monotonic_now().saturating_duration_since(start),
            Duration::from_millis(250),
            "a step of the wall time is not time passing"
        );
        assert_eq!(start.saturating_duration_since(clock.monotonic_now()), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "forward")]
    fn a_manual_clock_does_not_advance_backwards() {
        ManualClock::new(0).advance(-1);
    }
}
