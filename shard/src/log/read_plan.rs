//! [`ReadPlan`]: the budget of one read of a log tablet — how many bytes it still returns,
//! how many stored bytes it still goes through, which batch it takes next and how large a
//! window the scanner reads at a time. Pure arithmetic: no file, no clock.
//!
//! Invariants: the first batch of a read is taken whatever its size; every later one only
//! if it fits what is left; without a projection the two budgets are the same; with one a
//! read goes through at most [`PROJECTED_READ_SCAN_MAX_BYTES`] (or `max_bytes`, if more) of
//! stored batches.

use ufer_wire::header::BATCH_HEADER_SIZE_BYTES;

/// Smallest and largest window of a read.
const READ_WINDOW_SIZE_MIN_BYTES: usize = 64 * 1024;
const READ_WINDOW_SIZE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Batches at least this large are read on their own when projected (the scanner's windows
/// then hold headers only); smaller ones come with the window (fewer, larger reads win).
const LARGE_BATCH_MIN_BYTES: u64 = 256 * 1024;
/// The window of a projected read among large batches: their headers.
const HEADER_WINDOW_SIZE_BYTES: usize = 4096;
/// Most stored bytes one projected read goes through (its answer is a fraction of them).
pub const PROJECTED_READ_SCAN_MAX_BYTES: usize = 64 * 1024 * 1024;

/// What a read returns of each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadShape {
    /// The stored batches.
    Stored,
    /// The batches cut down to a projection.
    Projected,
}

/// The budgets of one read and the decisions that follow from them.
#[derive(Clone, Debug)]
pub(crate) struct ReadPlan {
    shape: ReadShape,
    /// Bytes still to return.
    budget: usize,
    /// Stored bytes still to go through.
    scan_budget: usize,
    /// With a projection: whether the batches seen are large enough to read by ranges
    /// (batches in a bucket tend to be alike: the size of one picks how the next is read).
    large_batches: bool,
    /// Batches taken so far.
    taken_count: usize,
}

impl ReadPlan {
    /// The plan of a read returning up to `max_bytes` (at least one batch).
    pub(crate) fn new(max_bytes: usize, shape: ReadShape) -> Self {
        let scan_budget = match shape {
            ReadShape::Stored => max_bytes,
            ReadShape::Projected => PROJECTED_READ_SCAN_MAX_BYTES.max(max_bytes),
        };
        Self { shape, budget: max_bytes, scan_budget, large_batches: true, taken_count: 0 }
    }

    /// Stored bytes the read may still go through: how far ahead to look for batch starts.
    pub(crate) fn scan_budget(&self) -> usize {
        self.scan_budget
    }

    /// True once the read has taken all it may.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.budget == 0 || self.scan_budget == 0
    }

    /// How many bytes the scanner's next read at `position` fetches. Projecting large
    /// batches: their headers only (each batch is read on its own). Otherwise up to the last
    /// known batch start within the scan budget (and the largest window), plus the header of
    /// the batch there — so no partial batch is read only to be thrown away (a read that stops
    /// at the budget cuts the batch after it, which the next fetch reads again) and the header
    /// says whether that batch still fits. With no batch start known there: the budget, but at
    /// least a generous window for the first batch (taken whatever its size).
    pub(crate) fn window_size(&self, batch_starts: &[u64], position: u64) -> usize {
        if self.shape == ReadShape::Projected && self.large_batches {
            return HEADER_WINDOW_SIZE_BYTES;
        }
        let budget = self.scan_budget;
        let limit = position.saturating_add(budget.min(READ_WINDOW_SIZE_MAX_BYTES) as u64);
        // `batch_starts` is ascending: the last start at or below the limit, if past `position`.
        let below = batch_starts.partition_point(|start| *start <= limit);
        let last = below.checked_sub(1).map(|index| batch_starts[index]);
        let smallest = match self.taken_count {
            0 => READ_WINDOW_SIZE_MIN_BYTES,
            _ => BATCH_HEADER_SIZE_BYTES,
        };
        match last.filter(|start| *start > position) {
            Some(end) => (end - position) as usize + BATCH_HEADER_SIZE_BYTES,
            None => budget.clamp(smallest, READ_WINDOW_SIZE_MAX_BYTES),
        }
    }

    /// Whether a stored batch of `length` bytes is taken (projected or not): the first
    /// always, a later one if the stored bytes left hold it.
    pub(crate) fn admits_stored(&self, length: u64) -> bool {
        self.taken_count == 0 || length <= self.scan_budget as u64
    }

    /// Notes a projected batch of `length` stored bytes: its size decides how the next one
    /// is scanned.
    pub(crate) fn note_projected(&mut self, length: u64) {
        assert_eq!(self.shape, ReadShape::Projected, "only a projected read projects");
        self.large_batches = length >= LARGE_BATCH_MIN_BYTES;
    }

    /// Whether a projected batch of `size` bytes is returned: the first always, a later one
    /// if the bytes left to return hold it.
    pub(crate) fn admits_projected(&self, size: usize) -> bool {
        self.taken_count == 0 || size <= self.budget
    }

    /// Notes a batch taken: `stored` bytes gone through, `returned` bytes returned.
    pub(crate) fn take(&mut self, stored: u64, returned: usize) {
        assert!(
            self.taken_count == 0 || returned <= self.budget,
            "only the first batch of a read may pass its budget"
        );
        self.budget = self.budget.saturating_sub(returned);
        self.scan_budget = match self.shape {
            ReadShape::Stored => self.budget,
            ReadShape::Projected => self.scan_budget.saturating_sub(stored as usize),
        };
        self.taken_count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_ends_at_the_last_known_batch_start_within_the_budget_plus_its_header() {
        let plan = ReadPlan::new(1 << 20, ReadShape::Stored);
        let starts = [100, 5_000, 70_000, 2 << 20];
        assert_eq!(plan.window_size(&starts, 0), 70_000 + BATCH_HEADER_SIZE_BYTES);
        assert_eq!(plan.window_size(&starts, 5_000), 70_000 - 5_000 + BATCH_HEADER_SIZE_BYTES);
        // No start known past the position: the budget.
        assert_eq!(plan.window_size(&starts, 70_000), 1 << 20);
        let huge = ReadPlan::new(1 << 30, ReadShape::Stored);
        assert_eq!(huge.window_size(&[], 0), READ_WINDOW_SIZE_MAX_BYTES, "capped");
    }

    #[test]
    fn the_first_batch_gets_a_generous_window_and_later_ones_just_their_budget() {
        let mut plan = ReadPlan::new(1_000, ReadShape::Stored);
        assert_eq!(plan.window_size(&[5_000], 0), READ_WINDOW_SIZE_MIN_BYTES);
        plan.take(600, 600);
        assert_eq!(plan.window_size(&[5_000], 600), 400);
        plan.take(390, 390);
        assert_eq!(plan.window_size(&[], 990), BATCH_HEADER_SIZE_BYTES, "room for a header");
    }

    #[test]
    fn the_first_batch_is_taken_whatever_its_size_and_later_ones_only_if_they_fit() {
        let mut plan = ReadPlan::new(100, ReadShape::Stored);
        assert!(plan.admits_stored(10_000));
        plan.take(60, 60);
        assert!(!plan.is_exhausted());
        assert!(!plan.admits_stored(41));
        assert!(plan.admits_stored(40));
        plan.take(40, 40);
        assert!(plan.is_exhausted());

        let mut over = ReadPlan::new(100, ReadShape::Stored);
        over.take(500, 500);
        assert!(over.is_exhausted(), "a first batch past the budget ends the read");
    }

    #[test]
    fn a_projected_read_returns_its_budget_but_goes_through_more_stored_bytes() {
        let mut plan = ReadPlan::new(1_000, ReadShape::Projected);
        assert_eq!(plan.scan_budget(), PROJECTED_READ_SCAN_MAX_BYTES);
        // Large batches are scanned by their headers and read on their own.
        assert_eq!(plan.window_size(&[], 0), HEADER_WINDOW_SIZE_BYTES);
        plan.note_projected(1 << 20);
        plan.take(1 << 20, 300);
        assert!(plan.admits_stored(1 << 20), "stored bytes count against the scan budget");
        assert!(plan.admits_projected(700));
        assert!(!plan.admits_projected(701));
        // A small batch: the next ones are read whole, in windows.
        plan.note_projected(1_000);
        assert_eq!(plan.window_size(&[], 0), READ_WINDOW_SIZE_MAX_BYTES);
        plan.take(1_000, 700);
        assert!(plan.is_exhausted());
    }

    #[test]
    fn a_projected_read_goes_through_at_most_its_scan_budget() {
        let mut plan = ReadPlan::new(1 << 30, ReadShape::Projected);
        assert_eq!(plan.scan_budget(), 1 << 30, "at least max_bytes");
        plan.take(1 << 30, 10);
        assert!(plan.is_exhausted(), "scanned all it may, returned little");
    }
}
