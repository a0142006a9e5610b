//! Running a benchmark body on a fresh glommio executor thread, optionally pinned to one
//! CPU, so that every case of a comparison runs with the same core placement.

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};

/// How the benchmark executor is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// Pin the executor to this CPU; unpinned if `None`.
    pub cpu: Option<usize>,
    /// I/O buffer memory glommio preallocates and registers with io_uring; buffers beyond it
    /// come from the ordinary allocator.
    pub io_memory_bytes: usize,
}

impl Default for ExecutorOptions {
    /// Unpinned, with the I/O memory of `ufer_io::executor` (what tests and tools use).
    fn default() -> Self {
        Self { cpu: None, io_memory_bytes: ufer_io::executor::IO_MEMORY_BYTES_DEFAULT }
    }
}

/// Runs `body` on a new executor on a new thread and returns its output. Fails if the
/// executor cannot be made (e.g. no such CPU) or the body panics; the message says which.
pub fn run_on_new_thread<T, F, Fut>(options: ExecutorOptions, body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let placement = options.cpu.map_or(Placement::Unbound, Placement::Fixed);
    let thread = std::thread::Builder::new()
        .name("ufer-perf".into())
        .spawn(move || {
            let executor = LocalExecutorBuilder::new(placement)
                .io_memory(options.io_memory_bytes)
                .make()
                .map_err(|error| format!("could not start a glommio executor: {error}"))?;
            Ok(executor.run(body()))
        })
        .map_err(|error| format!("could not start a thread: {error}"))?;
    match thread.join() {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            Err(format!("the executor thread panicked: {message}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_output_and_reports_panics() {
        assert_eq!(run_on_new_thread(ExecutorOptions::default(), || async { 7 }).unwrap(), 7);
        let panicking = || async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
        };
        let error = run_on_new_thread(ExecutorOptions::default(), panicking).unwrap_err();
        assert!(error.contains("boom"), "{error}");
    }
}
