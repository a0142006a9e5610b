//! The progress of a measurement's repetitions, shown on a terminal's standard error.

use std::io::{IsTerminal, Write};

/// The repetitions of `what` (`reps` of them, at least one), each announced as it starts.
pub fn repetitions(what: impl Into<String>, reps: usize) -> impl Iterator<Item = usize> {
    let what = what.into();
    let reps = reps.max(1);
    (0..reps).inspect(move |&rep| show(&what, rep, reps))
}

/// A progress line on a terminal's standard error (overwritten in place; nothing when
/// standard error is not a terminal, so logs and JSON stay clean).
fn show(what: &str, rep: usize, reps: usize) {
    let mut stderr = std::io::stderr();
    if stderr.is_terminal() {
        let _ = write!(stderr, "\r\x1b[2K  … {what}: repetition {} of {reps}\r", rep + 1);
        let _ = stderr.flush();
    }
}
