//! A sub-millisecond timer for injected delays.
//!
//! tokio's timer works in whole milliseconds and rounds deadlines up, which
//! adds about 1 ms to every sleep: too coarse when a canary config must tell
//! +50 ms from +51 ms. This timer keeps deadlines in a heap served by one
//! thread that waits on a condition variable (a futex with a nanosecond
//! timeout) and wakes the sleeping request through a oneshot channel.
//!
//! Not a general timer: no cancellation (a dropped sleeper's entry fires
//! into the void at its deadline).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::oneshot;

#[derive(Debug)]
pub(crate) struct PreciseTimer {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    sequence: u64,
    stopped: bool,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    sequence: u64,
    sender: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

impl PreciseTimer {
    /// Starts the timer thread; it ends when the timer is dropped.
    pub(crate) fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Inner::default());
        let thread_inner = inner.clone();
        std::thread::Builder::new()
            .name("goldengoose-timer".to_string())
            .spawn(move || thread_inner.serve())?;
        Ok(PreciseTimer { inner })
    }

    /// Completes at `at`, typically within tens of microseconds after it.
    pub(crate) async fn sleep_until(&self, at: Instant) {
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.inner.lock();
            let sequence = state.sequence;
            state.sequence += 1;
            let earliest = state.heap.peek().is_none_or(|Reverse(first)| at < first.at);
            state.heap.push(Reverse(Entry {
                at,
                sequence,
                sender,
            }));
            if earliest {
                self.inner.wake.notify_one();
            }
        }
        // An error only means the timer stopped: the server is going away.
        let _ = receiver.await;
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.inner.lock().stopped = true;
        self.inner.wake.notify_one();
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn serve(&self) {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return;
            }
            let now = Instant::now();
            while state
                .heap
                .peek()
                .is_some_and(|Reverse(first)| first.at <= now)
            {
                if let Some(Reverse(due)) = state.heap.pop() {
                    let _ = due.sender.send(());
                }
            }
            state = match state.heap.peek() {
                Some(Reverse(first)) => {
                    let wait = first.at.saturating_duration_since(now);
                    self.wake
                        .wait_timeout(state, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sleepers_wake_in_deadline_order_not_before() {
        let timer = Arc::new(PreciseTimer::start().expect("thread"));
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for ms in [30u64, 10, 20] {
            let timer = timer.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let at = start + Duration::from_millis(ms);
                timer.sleep_until(at).await;
                assert!(Instant::now() >= at);
                let _ = tx.send(ms);
            });
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(ms) = rx.recv().await {
            order.push(ms);
        }
        assert_eq!(order, [10, 20, 30]);
    }
}
