//! [`Notifier`]: wakes every task waiting for "something changed" at once — a single-thread
//! condition variable (glommio has none). Used for group commit and for long-polling reads
//! waiting for the high watermark to move.

use std::cell::{Cell, RefCell};
use std::task::{Poll, Waker};

/// Tasks wait for the epoch to change; `notify_all` changes it and wakes them all.
#[derive(Default)]
pub struct Notifier {
    epoch: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("epoch", &self.epoch.get())
            .field("waiting", &self.wakers.borrow().len())
            .finish()
    }
}

impl Notifier {
    /// The current epoch: read it before checking the condition, then wait with it.
    pub fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    /// Resolves once `notify_all` was called after `seen` was read.
    pub async fn changed(&self, seen: u64) {
        // An epoch not yet reached would resolve at once and never mean "changed".
        assert!(seen <= self.epoch.get(), "waiting on epoch {seen}, which was never read");
        std::future::poll_fn(|context| {
            if self.epoch.get() != seen {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|waker| waker.will_wake(context.waker())) {
                wakers.push(context.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Moves the epoch and wakes every waiting task.
    pub fn notify_all(&self) {
        self.epoch.set(self.epoch.get() + 1);
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }
}
