//! Running a benchmark body on a fresh glommio executor thread, optionally pinned to one
//! CPU, so that every case of a comparison runs with the same core placement: `ufer_io`'s
//! executor runner, under the names the benchmarks use.

use std::future::Future;

pub use ufer_io::executor::ExecutorOptions;

/// Runs `body` on a new executor on a new thread and returns its output. Fails if the
/// executor cannot be made (e.g. no such CPU) or the body panics; the message says which.
pub fn run_on_new_thread<T, F, Fut>(options: ExecutorOptions, body: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    ufer_io::executor::run_on_new_thread_with(options, body)
}
