//! A minimal deterministic discrete-event queue: events fire in order of
//! time, then of scheduling (a sequence number breaks ties), so a run is a
//! pure function of its seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Virtual time, milliseconds since the commit (the release controllers'
/// time).
pub use release::{Millis, ms, secs};

/// The event queue.
#[derive(Debug)]
pub struct Queue<E> {
    now: Millis,
    seq: u64,
    heap: BinaryHeap<Reverse<(Millis, u64, Slot<E>)>>,
}

/// Events are compared only by (time, sequence); this wrapper keeps `E`
/// out of the ordering.
#[derive(Debug)]
struct Slot<E>(E);

impl<E> PartialEq for Slot<E> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<E> Eq for Slot<E> {}
impl<E> PartialOrd for Slot<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Slot<E> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
        }
    }
}

impl<E> Queue<E> {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The time of the event last popped.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Schedule `event` `delay` after now.
    pub fn after(&mut self, delay: Millis, event: E) {
        self.at(self.now + delay, event);
    }

    /// Schedule `event` at time `t` (not before now).
    pub fn at(&mut self, t: Millis, event: E) {
        self.seq += 1;
        self.heap
            .push(Reverse((t.max(self.now), self.seq, Slot(event))));
    }

    /// The next event, advancing time to it.
    pub fn pop(&mut self) -> Option<E> {
        let Reverse((t, _, Slot(e))) = self.heap.pop()?;
        self.now = t;
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_then_sequence() {
        let mut q = Queue::new();
        q.at(20, "c");
        q.at(10, "a");
        q.at(10, "b");
        let mut seen = Vec::new();
        while let Some(e) = q.pop() {
            seen.push((q.now(), e));
            if e == "a" {
                q.after(0, "a2");
            }
        }
        assert_eq!(seen, vec![(10, "a"), (10, "b"), (10, "a2"), (20, "c")]);
    }
}
