//! Running a crash-test child process and killing it with SIGKILL at a random moment: half
//! the kills land at any time (start-up and recovery included), half a while after the child
//! printed `READY` (while it works) — or, when asked, the moment it prints a line containing
//! a given text (to land right after an answer the test wants to put to the proof). Its
//! standard output lines are returned for the test to read what it reported durable.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rng::Rng;

/// Longest a child may take to print `READY` before it is killed anyway.
const READY_WAIT_MAX: Duration = Duration::from_secs(20);

/// Runs `program` with `args`, kills it after up to `delay_max_ms` milliseconds (from its
/// start or from its `READY` line, chosen at random), and returns every line it printed.
pub fn run_and_kill(
    program: &Path,
    args: &[String],
    delay_max_ms: u64,
    rng: &mut Rng,
) -> Vec<String> {
    run_and_kill_on(program, args, delay_max_ms, rng, None)
}

/// [`run_and_kill`], and with `kill_on`, killed as soon as a line containing it is read
/// (if one comes before the delay is over).
pub fn run_and_kill_on(
    program: &Path,
    args: &[String],
    delay_max_ms: u64,
    rng: &mut Rng,
    kill_on: Option<&str>,
) -> Vec<String> {
    let mut spawned = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = spawned.stdout.take().unwrap();
    let child = Arc::new(Mutex::new(spawned));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(Mutex::new(None::<Instant>));
    let reader = {
        let (lines, ready, child) = (lines.clone(), ready.clone(), child.clone());
        let kill_on = kill_on.map(str::to_string);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("READY") {
                    *ready.lock().unwrap() = Some(Instant::now());
                }
                if kill_on.as_ref().is_some_and(|text| line.contains(text.as_str())) {
                    let _ = child.lock().unwrap().kill();
                }
                lines.lock().unwrap().push(line);
            }
        })
    };
    let delay = Duration::from_millis(rng.in_range(1..delay_max_ms.max(2)));
    let after_ready = rng.in_range(0..2) == 0;
    let started = Instant::now();
    loop {
        let since = if after_ready { *ready.lock().unwrap() } else { Some(started) };
        if since.is_some_and(|since| since.elapsed() >= delay) || started.elapsed() > READY_WAIT_MAX
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut child = child.lock().unwrap();
    let _ = child.kill();
    child.wait().unwrap();
    drop(child);
    reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    lines
}
