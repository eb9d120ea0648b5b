//! Retries waiting for their delay.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::exec::TaskOutcome;
use crate::plan::Task;

/// A task waiting for its next attempt.
pub(crate) struct PendingRetry {
    pub due: Instant,
    pub task: Task,
    /// The attempt to make.
    pub attempt: u32,
    /// Attempts made in this run so far.
    pub tries: u32,
    /// The last attempt's outcome, final if the run stops before the retry.
    pub last: TaskOutcome,
}

/// Retries by due time, then task order.
#[derive(Default)]
pub(crate) struct RetryQueue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    waiting: std::collections::HashMap<u64, PendingRetry>,
}

impl RetryQueue {
    pub fn push(&mut self, retry: PendingRetry) {
        self.heap.push(Reverse((retry.due, retry.task.id.0)));
        self.waiting.insert(retry.task.id.0, retry);
    }

    /// The earliest due time.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// The earliest retry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<PendingRetry> {
        let &Reverse((due, id)) = self.heap.peek()?;
        if due > now {
            return None;
        }
        self.heap.pop();
        self.waiting.remove(&id)
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Every waiting retry, in task order, for a run that stops before they are due.
    pub fn drain(&mut self) -> Vec<PendingRetry> {
        self.heap.clear();
        let mut all: Vec<PendingRetry> = self.waiting.drain().map(|(_, r)| r).collect();
        all.sort_by_key(|r| r.task.id);
        all
    }
}
