//! Running a future on a fresh glommio executor on its own thread: for tools, benchmarks
//! and tests that need one executor outside a node (the node places and pins its own).

use std::future::Future;

/// Memory glommio reserves per executor for I/O buffers (registered with io_uring when the
/// memlock limit allows). Small enough for 8 MiB memlock with a few executors alive.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// How an executor made by [`run_on_new_thread_with`] is placed and sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// Pin the executor to this CPU; unpinned if `None`.
    pub cpu: Option<usize>,
    /// I/O buffer memory glommio preallocates and registers with io_uring; buffers beyond it
    /// come from the ordinary allocator.
    pub io_memory_bytes: usize,
}

impl Default for ExecutorOptions {
    /// Unpinned, with [`IO_MEMORY_BYTES_DEFAULT`].
    fn default() -> Self {
        Self { cpu: None, io_memory_bytes: IO_MEMORY_BYTES_DEFAULT }
    }
}

/// Runs `body` on a new unpinned executor on a new thread and returns its output. Fails if
/// the executor cannot be made or the body panics (the message says which).
pub fn run_on_new_thread<T, F, Fut>(body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    run_on_new_thread_with(ExecutorOptions::default(), body)
}

/// [`run_on_new_thread`] with the executor placed and sized by `options`. Fails also if
/// there is no such CPU.
pub fn run_on_new_thread_with<T, F, Fut>(options: ExecutorOptions, body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let placement = options.cpu.map_or(glommio::Placement::Unbound, glommio::Placement::Fixed);
    let thread = std::thread::Builder::new()
        .name("ufer-executor".into())
        .spawn(move || {
            let executor = glommio::LocalExecutorBuilder::new(placement)
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
        assert_eq!(run_on_new_thread(|| async { 7 }).unwrap(), 7);
        let pinned = ExecutorOptions { cpu: Some(0), ..ExecutorOptions::default() };
        assert_eq!(run_on_new_thread_with(pinned, || async { 8 }).unwrap(), 8);
        let panicking = || async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
        };
        let error = run_on_new_thread(panicking).unwrap_err();
        assert!(error.contains("boom"), "{error}");
    }
}
