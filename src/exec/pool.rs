//! The local backend: a dedicated rayon pool of `processes` threads, each running one task's
//! child process at a time, fed in plan order by the calling thread, which also receives every
//! outcome and every signal and decides when the run stops.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::exec::ExecError;
use crate::exec::attempt::run_attempt_guarded;
use crate::exec::outcome::TaskOutcome;
use crate::exec::unix::{self, UnixSignal};
use crate::plan::{Plan, Task, TaskId};

/// Told about tasks as they start, from the worker threads.
pub trait Observer: Sync {
    /// `task`'s attempt `attempt` started as process `pid`.
    fn task_started(&self, task: &Task, attempt: u32, pid: u32, at: SystemTime);
}

/// Settings for one local run.
#[derive(Debug, Clone)]
pub struct LocalPool<'a> {
    /// Where `<id>.out` and `<id>.err` go.
    pub tasks_dir: &'a Path,
    /// How far past the lowest unfinished task dispatch may run ahead. It bounds the memory of
    /// the report's reorder buffer: outcomes wait there only until every earlier task is done.
    pub window: u64,
}

/// How a run of the pool ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolEnd {
    /// The signal that interrupted the run, if one did.
    pub signal: Option<i32>,
    /// Tasks `0..dispatched` were started (or failed to start); the rest never were.
    pub dispatched: u64,
}

/// What every worker shares.
pub(crate) struct Context<'a> {
    pub tasks_dir: &'a Path,
    pub timeout: Option<Duration>,
    pub grace_period: Duration,
    pub job_name: &'a str,
    pub run_id: &'a str,
    pub run_dir: &'a Path,
    pub running: Running,
    pub observer: &'a dyn Observer,
}

/// The process groups of the tasks running now, so a stop can reach them all.
#[derive(Default)]
pub(crate) struct Running {
    state: Mutex<RunningState>,
}

#[derive(Default)]
struct RunningState {
    stopping: bool,
    /// Task -> (process group, whether the stop reached it).
    groups: HashMap<TaskId, (u32, bool)>,
}

impl Running {
    /// Registers a started task; true when the run is already stopping, so the caller must stop
    /// it at once.
    pub fn insert(&self, id: TaskId, pgid: u32) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stopping = state.stopping;
        state.groups.insert(id, (pgid, stopping));
        stopping
    }

    /// Unregisters a finished task; true when the stop reached it.
    pub fn remove(&self, id: TaskId) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.groups.remove(&id).is_some_and(|(_, stopped)| stopped)
    }

    /// Marks the run as stopping and sends `signal` to every running task's group.
    fn signal_all(&self, signal: UnixSignal) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.stopping = true;
        for (pgid, stopped) in state.groups.values_mut() {
            *stopped = true;
            unix::signal_group(*pgid, signal);
            if signal == UnixSignal::SIGTERM {
                unix::signal_group(*pgid, UnixSignal::SIGCONT);
            }
        }
    }
}

enum Event {
    Finished(Box<TaskOutcome>),
    Signal(i32),
}

/// The lowest task not yet finished, and those above it that are.
#[derive(Default)]
struct Watermark {
    low: u64,
    done_above: BTreeSet<u64>,
}

impl Watermark {
    fn finish(&mut self, id: u64) {
        self.done_above.insert(id);
        while self.done_above.remove(&self.low) {
            self.low += 1;
        }
    }
}

impl LocalPool<'_> {
    /// Runs every task of `plan`, handing each outcome to `sink` on this thread, in completion
    /// order. A sink error stops the run like a signal (running tasks are stopped, no new one
    /// starts) and is returned with how far the run got.
    pub fn run<E>(
        &self,
        plan: &Plan,
        observer: &dyn Observer,
        mut sink: impl FnMut(TaskOutcome) -> Result<(), E>,
    ) -> Result<(PoolEnd, Option<E>), ExecError> {
        let job = plan.job();
        let processes = job.pool.processes.get();
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(processes)
            .thread_name(|i| format!("poolrun-worker-{i}"))
            .build()
            .map_err(ExecError::ThreadPool)?;
        let ctx = Context {
            tasks_dir: self.tasks_dir,
            timeout: job.pool.timeout,
            grace_period: job.pool.grace_period,
            job_name: &job.name,
            run_id: &plan.run().id,
            run_dir: &plan.run().dir,
            running: Running::default(),
            observer,
        };
        unix::become_subreaper();
        let (tx, rx) = mpsc::channel();
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(ExecError::Signals)?;
        let signal_handle = signals.handle();
        let forward = tx.clone();
        let forwarder = std::thread::spawn(move || {
            for signal in signals.forever() {
                if forward.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        });

        let mut next = 0;
        let mut in_flight = 0usize;
        let mut watermark = Watermark::default();
        let mut stop: Option<Stop> = None;
        let mut sink_error = None;
        threads.in_place_scope(|scope| {
            loop {
                while stop.is_none()
                    && in_flight < processes
                    && next < plan.len()
                    && next < watermark.low.saturating_add(self.window)
                {
                    let task = plan.task(TaskId(next));
                    next += 1;
                    in_flight += 1;
                    let (tx, ctx) = (tx.clone(), &ctx);
                    scope.spawn(move |_| {
                        let outcome = run_attempt_guarded(task, ctx);
                        // The receiver outlives every worker: it returns only when none is left.
                        let _ = tx.send(Event::Finished(Box::new(outcome)));
                    });
                }
                if in_flight == 0 {
                    break;
                }
                let event = match stop.as_ref().and_then(|s| s.kill_at) {
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                };
                match event {
                    Ok(Event::Finished(outcome)) => {
                        in_flight -= 1;
                        watermark.finish(outcome.task.id.0);
                        if sink_error.is_none()
                            && let Err(e) = sink(*outcome)
                        {
                            sink_error = Some(e);
                            stop.get_or_insert_with(|| Stop::begin(&ctx, None));
                        }
                    }
                    Ok(Event::Signal(signal)) => match &mut stop {
                        None => stop = Some(Stop::begin(&ctx, Some(signal))),
                        // A second Ctrl-C: no more grace.
                        Some(s) if signal == SIGINT => s.kill_now(&ctx),
                        Some(_) => {}
                    },
                    Err(RecvTimeoutError::Timeout) => {
                        if let Some(s) = &mut stop {
                            s.kill_now(&ctx);
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        unreachable!("this thread holds a sender")
                    }
                }
            }
        });
        signal_handle.close();
        unix::reap_orphans();
        let _ = forwarder.join();
        let end = PoolEnd {
            signal: stop.and_then(|s| s.signal),
            dispatched: next,
        };
        Ok((end, sink_error))
    }
}

/// A run that is stopping: running tasks got SIGTERM and get SIGKILL at `kill_at`.
struct Stop {
    signal: Option<i32>,
    kill_at: Option<Instant>,
}

impl Stop {
    fn begin(ctx: &Context<'_>, signal: Option<i32>) -> Self {
        ctx.running.signal_all(UnixSignal::SIGTERM);
        Self {
            signal,
            kill_at: Some(Instant::now() + ctx.grace_period),
        }
    }

    fn kill_now(&mut self, ctx: &Context<'_>) {
        ctx.running.signal_all(UnixSignal::SIGKILL);
        self.kill_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::Watermark;

    #[test]
    fn watermark_advances_over_finished_runs() {
        let mut w = Watermark::default();
        w.finish(2);
        w.finish(1);
        assert_eq!(w.low, 0);
        w.finish(0);
        assert_eq!(w.low, 3);
        assert!(w.done_above.is_empty());
    }
}
