//! The process groups of the tasks running now, so that a stop, a pause or a resume reaches them
//! all, including a task that registers while a stop is under way.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::exec::local::unix::{self, UnixSignal};
use crate::plan::TaskId;

/// Running tasks by id.
#[derive(Default)]
pub(crate) struct Running {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Workers between `spawning(1)` and `insert`: their task runs but is not registered yet.
    spawning: usize,
    /// The last stop signal sent to every group (SIGTERM, then SIGKILL), for late registrants.
    stopping: Option<UnixSignal>,
    paused: bool,
    /// Task -> (process group, whether the stop reached it).
    groups: HashMap<TaskId, (u32, bool)>,
}

impl Running {
    /// Registers a started task.
    ///
    /// A run that is paused or stopping reaches the task here, under the same lock as
    /// `set_paused` and `stop_all`: no task can slip between them and run on unpaused or
    /// unstopped.
    pub fn insert(&self, id: TaskId, pgid: u32) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.spawning = state.spawning.saturating_sub(1);
        let stop = state.stopping;
        state.groups.insert(id, (pgid, stop.is_some()));
        if state.paused {
            unix::signal_group(pgid, UnixSignal::SIGSTOP);
        }
        if let Some(signal) = stop {
            unix::signal_group(pgid, signal);
            unix::signal_group(pgid, UnixSignal::SIGCONT);
        }
    }

    /// A worker is about to start a task (`1`), or failed to (`-1`); `insert` ends a start.
    pub fn spawning(&self, delta: isize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.spawning = state.spawning.saturating_add_signed(delta);
    }

    /// Waits (briefly: a start takes microseconds) until no worker is between starting a task and
    /// registering it, so pausing poolrun cannot leave such a task running.
    pub fn wait_for_spawns(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spawning
            > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// Unregisters a finished task; true when the stop reached it.
    pub fn remove(&self, id: TaskId) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.groups.remove(&id).is_some_and(|(_, stopped)| stopped)
    }

    /// How many tasks are running.
    pub fn count(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .groups
            .len()
    }

    /// Whether `pgid` leads a running task's group.
    pub fn is_task_group(&self, pgid: u32) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.groups.values().any(|&(g, _)| g == pgid)
    }

    /// Marks the run as stopping and sends `signal` to every running task's group.
    pub fn stop_all(&self, signal: UnixSignal) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.stopping = Some(signal);
        for (pgid, stopped) in state.groups.values_mut() {
            *stopped = true;
            unix::signal_group(*pgid, signal);
            if signal == UnixSignal::SIGTERM {
                unix::signal_group(*pgid, UnixSignal::SIGCONT);
            }
        }
    }

    /// Pauses (SIGSTOP) or continues (SIGCONT) every running task's group.
    pub fn set_paused(&self, paused: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.paused = paused;
        let signal = if paused {
            UnixSignal::SIGSTOP
        } else {
            UnixSignal::SIGCONT
        };
        for (pgid, _) in state.groups.values() {
            unix::signal_group(*pgid, signal);
        }
    }
}
