//! Rows from standard input for `produce` and `upsert`: lines read on a thread of their
//! own, in chunks of a batch's rows, each chunk decoded by the command (JSON lines, or CSV
//! after its header line) with the number of its first line, so an error names its line.
//!
//! [`Input`] reads ahead: until [`READ_AHEAD_MAX_BYTES`] of input have been read and
//! decoded, nothing is handed out. An input that ends within that is checked whole before
//! anything is written (a bad line anywhere writes nothing); a longer one is handed out as
//! it goes, and a bad line stops it there, so the command can say exactly what it wrote.

use std::collections::VecDeque;
use std::io::BufRead;

use tokio::sync::mpsc;

/// Bytes of input read and decoded before anything is written.
pub const READ_AHEAD_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Chunks decoded ahead of the writer once past the read-ahead.
const CHUNKS_IN_FLIGHT_MAX: usize = 4;

/// Lines of input, each with its number (from 1).
pub type Lines = [(usize, String)];

/// A decoded chunk: what the command writes, and the lines it came from.
#[derive(Debug)]
pub struct Chunk<T> {
    /// What the command decoded.
    pub value: T,
    /// The first and last line numbers of the chunk.
    pub lines: (usize, usize),
}

/// Why reading the input stopped.
#[derive(Debug)]
pub struct InputError {
    /// The line that failed (0: not a line's fault, e.g. standard input failed).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(formatter, "{}", self.message),
            line => write!(formatter, "line {line}: {}", self.message),
        }
    }
}

/// The decoded chunks of standard input, read ahead.
#[derive(Debug)]
pub struct Input<T> {
    receiver: mpsc::Receiver<Result<(Chunk<T>, usize), InputError>>,
    ahead: VecDeque<Chunk<T>>,
    /// A bad line met while reading ahead: nothing may be written.
    failed_ahead: Option<InputError>,
}

impl<T: Send + 'static> Input<T> {
    /// Reads standard input in chunks of `rows` lines (after `header_lines` lines that are
    /// passed to `decode` with every chunk, e.g. a CSV header), decoding each with `decode`,
    /// and reads ahead (see the module docs).
    pub async fn read(
        rows: usize,
        header_lines: usize,
        decode: impl Fn(&Lines, &Lines) -> Result<T, String> + Send + 'static,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT_MAX);
        let _thread = std::thread::spawn(move || {
            let reader = std::io::stdin().lock();
            read_chunks(reader, rows.max(1), header_lines, decode, &sender)
        });
        let mut input = Self { receiver, ahead: VecDeque::new(), failed_ahead: None };
        let mut bytes = 0usize;
        while bytes < READ_AHEAD_MAX_BYTES {
            match input.receiver.recv().await {
                None => break,
                Some(Ok((chunk, size))) => {
                    bytes += size;
                    input.ahead.push_back(chunk);
                }
                Some(Err(error)) => {
                    input.failed_ahead = Some(error);
                    break;
                }
            }
        }
        input
    }

    /// The error of a bad line within the read-ahead, if there was one: then nothing may be
    /// written.
    pub fn failed_ahead(&mut self) -> Option<InputError> {
        self.failed_ahead.take()
    }

    /// The next chunk, `None` at the end, or the error of a bad line past the read-ahead.
    pub async fn next(&mut self) -> Option<Result<Chunk<T>, InputError>> {
        if let Some(chunk) = self.ahead.pop_front() {
            return Some(Ok(chunk));
        }
        match self.receiver.recv().await? {
            Ok((chunk, _)) => Some(Ok(chunk)),
            Err(error) => Some(Err(error)),
        }
    }
}

/// Reads `reader` line by line into chunks and sends each decoded (with its size in bytes),
/// or the first error, until the receiver is gone.
fn read_chunks<T>(
    reader: impl BufRead,
    rows: usize,
    header_lines: usize,
    decode: impl Fn(&Lines, &Lines) -> Result<T, String>,
    sender: &mpsc::Sender<Result<(Chunk<T>, usize), InputError>>,
) {
    let (mut header, mut lines, mut size) = (Vec::new(), Vec::new(), 0usize);
    for (index, line) in reader.lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                let error = InputError { line: 0, message: format!("reading input: {error}") };
                let _ = sender.blocking_send(Err(error));
                return;
            }
        };
        if header.len() < header_lines {
            header.push((index + 1, line));
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        size += line.len() + 1;
        lines.push((index + 1, line));
        if lines.len() == rows {
            if !send_chunk(&header, &lines, size, &decode, sender) {
                return;
            }
            (lines, size) = (Vec::new(), 0);
        }
    }
    if !lines.is_empty() {
        send_chunk(&header, &lines, size, &decode, sender);
    }
}

/// Decodes and sends one chunk; on an error, finds the first line that fails alone, sends
/// the lines before it as a chunk, then that line's error. Returns whether reading goes on.
fn send_chunk<T>(
    header: &Lines,
    lines: &Lines,
    size: usize,
    decode: &impl Fn(&Lines, &Lines) -> Result<T, String>,
    sender: &mpsc::Sender<Result<(Chunk<T>, usize), InputError>>,
) -> bool {
    let (first, last) = (lines[0].0, lines[lines.len() - 1].0);
    match decode(header, lines) {
        Ok(value) => {
            sender.blocking_send(Ok((Chunk { value, lines: (first, last) }, size))).is_ok()
        }
        Err(message) => {
            let bad = (0..lines.len())
                .find_map(|at| decode(header, &lines[at..=at]).err().map(|error| (at, error)));
            let error = match bad {
                Some((at, message)) => {
                    // The lines before the bad one are good: they go first.
                    let good = &lines[..at];
                    if let (false, Ok(value)) = (good.is_empty(), decode(header, good)) {
                        let chunk = Chunk { value, lines: (first, good[good.len() - 1].0) };
                        let _ = sender.blocking_send(Ok((chunk, size)));
                    }
                    InputError { line: lines[at].0, message }
                }
                None => InputError { line: first, message },
            };
            let _ = sender.blocking_send(Err(error));
            false
        }
    }
}
