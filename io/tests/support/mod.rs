//! Running test bodies on a fresh glommio executor thread, as every shard does.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;

/// Runs `body` on a new executor on its own thread and returns its result. Every call is a
/// fresh thread, so glommio's per-thread device probe starts from scratch.
pub fn run<T, F, Fut>(body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default()
            .io_memory(4 << 20)
            .make()
            .expect("executor")
            .run(body())
    })
    .join()
    .expect("executor thread panicked")
}
