//! Running test bodies on a fresh glommio executor thread, as every shard does.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;

/// Runs `body` on a fresh glommio executor thread; a panic there fails the test with its
/// message.
pub fn run<T, F, Fut>(body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    ufer_io::executor::run_on_new_thread(body).unwrap_or_else(|error| panic!("{error}"))
}
