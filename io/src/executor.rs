//! Running a future on a fresh glommio executor on its own thread: for tools, benchmarks
//! and tests that need one executor outside a node (the node places and pins its own).

use std::future::Future;

/// Memory glommio reserves per executor for I/O buffers (registered with io_uring when the
/// memlock limit allows). Small enough for 8 MiB memlock with a few executors alive.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// Runs `body` on a new unpinned executor on a new thread and returns its output. Fails if
/// the executor cannot be made or the body panics (the message says which).
pub fn run_on_new_thread<T, F, Fut>(body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    let thread = std::thread::Builder::new()
        .name("ufer-executor".into())
        .spawn(move || {
            let executor = glommio::LocalExecutorBuilder::default()
                .io_memory(IO_MEMORY_BYTES_DEFAULT)
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
