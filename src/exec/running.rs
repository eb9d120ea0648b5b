//! The process groups of the tasks running now, so that a stop, a pause or a resume reaches them
//! all, including a task that registers while a stop is under way.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::exec::unix::{self, UnixSignal};
use crate::plan::TaskId;

/// Running tasks by id.
#[derive(Default)]
pub(crate) struct Running {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last stop signal sent to every group (SIGTERM, then SIGKILL), for late registrants.
    stopping: Option<UnixSignal>,
    paused: bool,
    /// Task -> (process group, whether the stop reached it).
    groups: HashMap<TaskId, (u32, bool)>,
}

/// What a newly registered task must do at once.
pub(crate) struct Registered {
    /// The run is stopping: send the task this.
    pub stop: Option<UnixSignal>,
    /// The run is paused: pause the task.
    pub pause: bool,
}

impl Running {
    /// Registers a started task.
    pub fn insert(&self, id: TaskId, pgid: u32) -> Registered {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let stop = state.stopping;
        state.groups.insert(id, (pgid, stop.is_some()));
        Registered {
            stop,
            pause: state.paused,
        }
    }

    /// Unregisters a finished task; true when the stop reached it.
    pub fn remove(&self, id: TaskId) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.groups.remove(&id).is_some_and(|(_, stopped)| stopped)
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
