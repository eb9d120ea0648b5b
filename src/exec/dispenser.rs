//! Hands tasks to the workers. Each worker takes its next task itself as soon as its last one
//! ended, so a slot never waits for the engine's thread: retries made ready by the engine first,
//! then new tasks in plan order. Nothing holds dispatch back for a slow task: the report's reorder
//! buffer spills to disk instead (`report::ReportWriter`).

use std::collections::{BTreeSet, VecDeque};
use std::iter::Peekable;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::exec::{Dispatch, TaskOutcome};
use crate::plan::Task;

/// One attempt to make: the task, its attempt number, and attempts made in this run before it.
pub struct Work {
    pub task: Task,
    pub attempt: u32,
    pub tries: u32,
}

/// The shared queue of work.
pub struct Dispenser<I: Iterator<Item = Dispatch>> {
    state: Mutex<State<I>>,
    changed: Condvar,
}

struct State<I: Iterator<Item = Dispatch>> {
    tasks: Peekable<I>,
    retries: VecDeque<Work>,
    /// Attempts handed out so far.
    taken: u64,
    /// No more work is handed out; idle workers leave.
    closed: bool,
    /// Tasks whose worker waits for the engine to have seen their failed attempt.
    awaiting: BTreeSet<u64>,
    /// Outcomes the engine acts on only by recording them (successes), waiting for it to look.
    delivered: Vec<TaskOutcome>,
    /// The engine will look at `delivered` without being woken (it has a commit due).
    engine_looks: bool,
}

impl<I: Iterator<Item = Dispatch>> Dispenser<I> {
    pub fn new(tasks: I) -> Self {
        Self {
            state: Mutex::new(State {
                tasks: tasks.peekable(),
                retries: VecDeque::new(),
                taken: 0,
                closed: false,
                awaiting: BTreeSet::new(),
                delivered: Vec::new(),
                engine_looks: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<I>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next attempt for a worker, waiting until there is one; `None` once closed.
    pub fn take(&self) -> Option<Work> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(work) = state.retries.pop_front() {
                state.taken += 1;
                return Some(work);
            }
            if let Some(next) = state.tasks.next() {
                state.taken += 1;
                return Some(Work {
                    attempt: next.prior_attempts + 1,
                    task: next.task,
                    tries: 0,
                });
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The next attempt if there is one now, without waiting; `None` when there is none or the
    /// dispenser is closed (see `is_closed`).
    pub fn try_take(&self) -> Option<Work> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        if let Some(work) = state.retries.pop_front() {
            state.taken += 1;
            return Some(work);
        }
        let next = state.tasks.next()?;
        state.taken += 1;
        Some(Work {
            attempt: next.prior_attempts + 1,
            task: next.task,
            tries: 0,
        })
    }

    /// Whether it hands out nothing more.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// A worker whose attempt failed holds its slot until the engine has seen the failure: it
    /// may halt the run, and then no task may start after it. Call before sending the outcome.
    pub fn expect_ack(&self, id: u64) {
        self.lock().awaiting.insert(id);
    }

    /// Waits for `ack(id)` (or for the dispenser to close).
    pub fn await_ack(&self, id: u64) {
        let mut state = self.lock();
        while state.awaiting.contains(&id) && !state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The engine has acted on task `id`'s failed attempt.
    pub fn ack(&self, id: u64) {
        if self.lock().awaiting.remove(&id) {
            self.changed.notify_all();
        }
    }

    /// Leaves an outcome the engine need not act on at once (a success) for it to collect with
    /// others; returns whether the engine must be woken to look (it has no commit due).
    pub fn deliver(&self, outcome: TaskOutcome) -> bool {
        let mut state = self.lock();
        state.delivered.push(outcome);
        !std::mem::replace(&mut state.engine_looks, true)
    }

    /// The outcomes delivered so far, now or, with `later`, when it is the engine's turn. With
    /// `later` nothing is collected unless every attempt handed out is accounted for once `done`
    /// ones are (the end of the run waits for nobody); the second value then says whether any
    /// outcome was left, which the engine must come back for (it has a commit due).
    pub fn collect(&self, later: bool, done: u64) -> (Vec<TaskOutcome>, bool) {
        let mut state = self.lock();
        let all_in = done + state.delivered.len() as u64 == state.taken;
        if later && !all_in {
            let left = !state.delivered.is_empty();
            state.engine_looks = left;
            return (Vec::new(), left);
        }
        state.engine_looks = false;
        (std::mem::take(&mut state.delivered), false)
    }

    /// Queues a retry ahead of new tasks.
    pub fn retry(&self, work: Work) {
        self.lock().retries.push_back(work);
        self.changed.notify_one();
    }

    /// Attempts handed out so far, and whether every task has been handed out with no retry
    /// waiting.
    pub fn progress(&self) -> (u64, bool) {
        let mut state = self.lock();
        let drained = state.tasks.peek().is_none() && state.retries.is_empty();
        (state.taken, drained)
    }

    /// Hands out nothing more; returns the retries that were waiting, for the engine to settle.
    pub fn close(&self) -> Vec<Work> {
        let mut state = self.lock();
        state.closed = true;
        let left = state.retries.drain(..).collect();
        drop(state);
        self.changed.notify_all();
        left
    }
}
