//! The engine: what a run does with the starts and outcomes its backend reports, whatever runs
//! the tasks. It hands work to the backend through a queue, retries attempts as the policy says,
//! applies the halt policy and the deadline, stops the run on a signal, and hands everything to
//! the `Sink` in batches, acting on a batch (retries, halts, new tasks) only after the sink has
//! committed it.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use signal_hook::consts::{SIGCONT, SIGTSTP};

use crate::exec::Sink;
use crate::exec::dispenser::{Dispenser, Work};
use crate::exec::outcome::{TaskOutcome, TaskStatus};
use crate::exec::schedule::{PendingRetry, RetryQueue};
use crate::job::policy::{HaltMode, RetryOn};
use crate::plan::{Plan, Task, TaskId};

/// An attempt that started.
#[derive(Debug, Clone)]
pub struct Started {
    /// The task.
    pub id: TaskId,
    /// Its resume key.
    pub key: String,
    /// From 1.
    pub attempt: u32,
    /// What the backend knows the attempt by: the local pool's process group id (its direct
    /// child's pid), a Slurm array's job id.
    pub handle: u32,
    /// When it started.
    pub at: SystemTime,
}

/// What the engine hears: a backend's starts and outcomes, and the signals poolrun got.
pub enum Event {
    /// An attempt started.
    Started(Started),
    /// An attempt ended.
    Finished(Box<TaskOutcome>),
    /// A signal to poolrun.
    Signal(i32),
    /// Outcomes were delivered to the dispenser (`Dispenser::deliver`).
    Delivered,
}

/// A task to run and how many attempts it already had (in earlier, resumed runs).
pub struct Dispatch {
    /// The task.
    pub task: Task,
    /// Attempts made before this run.
    pub prior_attempts: u32,
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A signal to poolrun.
    Signal(i32),
    /// The halt policy.
    Halted,
    /// The run's deadline passed.
    Deadline,
    /// The sink failed: nothing more could be recorded.
    SinkFailed,
}

/// A run that is stopping: no new task starts; with `kill_at`, running tasks got SIGTERM and get
/// SIGKILL then.
struct Stop {
    reason: StopReason,
    kill_at: Option<Instant>,
}

/// How a run ended.
pub struct PoolEnd<E> {
    /// Why the run stopped early, if it did.
    pub stop: Option<StopReason>,
    /// The sink's error, if it failed.
    pub sink_error: Option<E>,
    /// Processes the tasks left that only the sweep at the end found, killed.
    pub swept: u32,
}

/// What runs the tasks: it starts attempts that it takes from the engine's queue and reports
/// them as `Event`s on the engine's channel (see `run`), and stops them when the engine says.
pub trait Backend: Sync {
    /// Takes attempts from `queue` (retries first, then new tasks, until it is closed) and starts
    /// them, sending each one's `Event::Started` and `Event::Finished`, while `engine` runs on the
    /// calling thread; returns once `engine` returned and no attempt is left.
    fn serve<I: Iterator<Item = Dispatch> + Send>(
        &self,
        queue: &Dispenser<I>,
        engine: &mut dyn FnMut(),
    );
    /// Starts no attempt it already took but has not started (a soft halt: running ones
    /// finish). The local pool starts what it takes at once: nothing to do.
    fn hold(&self) {}
    /// Asks every running attempt to stop (the first step of the kill sequence).
    fn terminate(&self);
    /// Stops every running attempt now.
    fn kill(&self);
    /// Pauses the running attempts and poolrun with them (Ctrl-Z).
    fn pause(&self);
    /// Continues them.
    fn resume(&self);
    /// How many attempts are running.
    fn running(&self) -> usize;
}

/// The engine's channel, with `signals` forwarded into it: the sender for the backend, the
/// receiver for `run`, and the signals that came before (for `run`'s `early`).
pub fn channel(signals: &crate::exec::SignalWatch) -> (Sender<Event>, Receiver<Event>, Vec<i32>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let events = tx.clone();
    let early = signals.forward(Box::new(move |s| events.send(Event::Signal(s)).is_ok()));
    (tx, rx, early)
}

/// Runs `tasks` on `backend`: the engine reads the backend's events (and the signals forwarded
/// to it, `early` first) from `events`, reporting to `sink`. `began` is when the run began, for
/// the deadline; `grace_period` how long `terminate` has before `kill`.
pub fn run<S: Sink, B: Backend>(
    plan: &Plan,
    tasks: impl Iterator<Item = Dispatch> + Send,
    sink: &mut S,
    backend: &B,
    events: &Receiver<Event>,
    early: Vec<i32>,
    began: Instant,
) -> PoolEnd<S::Error> {
    let job = plan.job();
    let dispenser = Dispenser::new(tasks);
    let mut engine = Engine {
        plan,
        backend,
        grace_period: job.pool.grace_period,
        dispenser: &dispenser,
        attempts_done: 0,
        retries: RetryQueue::default(),
        handed: HashMap::new(),
        stop: None,
        deadline: job.pool.deadline.map(|d| began + d),
        finished: 0,
        failed: 0,
        sink,
        sink_error: None,
        last_commit: Instant::now(),
        commit_due: None,
    };
    // A signal that came before the run started stops it before any task starts.
    for signal in early {
        engine.on_signal(signal);
    }
    backend.serve(&dispenser, &mut || engine.drive(events));
    let Engine {
        stop, sink_error, ..
    } = engine;
    PoolEnd {
        stop: stop.map(|s| s.reason),
        sink_error,
        swept: 0,
    }
}

pub(crate) struct Engine<'a, 'p, I: Iterator<Item = Dispatch>, S: Sink, B: Backend> {
    plan: &'p Plan,
    backend: &'a B,
    grace_period: Duration,
    dispenser: &'a Dispenser<I>,
    /// Attempts whose outcome arrived.
    attempts_done: u64,
    /// Retries waiting for their delay.
    retries: RetryQueue,
    /// The previous outcome of each retry handed to the dispenser, final if it is never run.
    handed: HashMap<u64, TaskOutcome>,
    stop: Option<Stop>,
    deadline: Option<Instant>,
    /// Tasks with a final outcome, and how many of those did not succeed (for the halt policy).
    finished: u64,
    failed: u64,
    sink: &'a mut S,
    sink_error: Option<S::Error>,
    last_commit: Instant,
    /// When the batch under way is to be committed.
    commit_due: Option<Instant>,
}

/// The longest a batch of outcomes waits for its commit.
const COMMIT_INTERVAL: Duration = Duration::from_millis(5);

impl<I: Iterator<Item = Dispatch>, S: Sink, B: Backend> Engine<'_, '_, I, S, B> {
    pub(crate) fn drive(&mut self, rx: &Receiver<Event>) {
        loop {
            self.release_due_retries();
            let (taken, drained) = self.dispenser.progress();
            let idle = taken == self.attempts_done;
            if idle && (self.stop.is_some() || (drained && self.retries.is_empty())) {
                break;
            }
            let wake = [
                self.commit_due,
                // A sync waits for the next commit, which comes no sooner than its interval.
                self.sink
                    .sync_due()
                    .map(|due| due.max(self.last_commit + COMMIT_INTERVAL)),
                self.retries.next_due(),
                self.stop.as_ref().and_then(|s| s.kill_at),
                self.deadline.filter(|_| self.stop.is_none()),
            ]
            .into_iter()
            .flatten()
            .min();
            let first = match wake {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match first {
                Ok(event) => {
                    self.handle(event);
                    // Everything else already waiting goes into the same batch and commit.
                    while let Ok(event) = rx.try_recv() {
                        self.handle(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.on_timer(),
                Err(RecvTimeoutError::Disconnected) => unreachable!("the context holds a sender"),
            }
            self.collect();
            self.commit_soon();
        }
        self.settle_retries();
        // What is left unsynced is synced with `run_finished`, once the report is written.
        self.record(S::commit);
    }

    /// Group commit: a batch is committed at most `COMMIT_INTERVAL` after the previous commit,
    /// so a burst of short tasks costs a few fsyncs a second, not one per task. Nothing waits on
    /// it but retries, halts and report rows, which the engine only acts on once committed.
    fn commit_soon(&mut self) {
        let now = Instant::now();
        match self.commit_due {
            Some(due) if due > now => {}
            _ if self.last_commit + COMMIT_INTERVAL > now => {
                self.commit_due = Some(self.last_commit + COMMIT_INTERVAL);
            }
            _ => {
                self.record(S::commit);
                self.last_commit = Instant::now();
                self.commit_due = None;
            }
        }
    }

    /// Hands retries whose delay is over to the workers (only ever after a commit: a retry acts
    /// on the outcome before it).
    fn release_due_retries(&mut self) {
        while let Some(retry) = self.retries.pop_due(Instant::now()) {
            if self.commit_due.take().is_some() {
                self.record(S::commit);
                self.last_commit = Instant::now();
            }
            let PendingRetry {
                task,
                attempt,
                tries,
                last,
                ..
            } = retry;
            self.handed.insert(task.id.0, last);
            self.dispenser.retry(Work {
                task,
                attempt,
                tries,
            });
        }
    }

    /// A run that stops early does not wait for retries: the last attempt's outcome is final.
    fn settle_retries(&mut self) {
        for work in self.dispenser.close() {
            if let Some(last) = self.handed.remove(&work.task.id.0) {
                self.finalize(last);
            }
        }
        for retry in self.retries.drain() {
            self.finalize(retry.last);
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Started(started) => self.record(|sink| sink.started(&started)),
            Event::Finished(outcome) => {
                // What was delivered before it happened before it.
                self.collect_now();
                self.finished_attempt(*outcome);
            }
            Event::Signal(signal) => self.on_signal(signal),
            Event::Delivered => {}
        }
    }

    fn finished_attempt(&mut self, outcome: TaskOutcome) {
        self.attempts_done += 1;
        let id = outcome.task.id.0;
        self.handed.remove(&id);
        self.on_finished(outcome);
        self.dispenser.ack(id);
    }

    /// Takes the delivered successes when they can be committed: a wake for each would cost a
    /// pair of context switches per task, so until the next commit is due they wait, and the
    /// engine wakes once for all of them. Once every attempt handed out is in, or the run is
    /// stopping, they are taken at once.
    fn collect(&mut self) {
        let later = self.stop.is_none() && self.last_commit + COMMIT_INTERVAL > Instant::now();
        let (outcomes, left) = self.dispenser.collect(later, self.attempts_done);
        if left && self.commit_due.is_none() {
            self.commit_due = Some(self.last_commit + COMMIT_INTERVAL);
        }
        for outcome in outcomes {
            self.finished_attempt(outcome);
        }
    }

    fn collect_now(&mut self) {
        for outcome in self.dispenser.collect(false, self.attempts_done).0 {
            self.finished_attempt(outcome);
        }
    }

    fn on_finished(&mut self, outcome: TaskOutcome) {
        let retry = &self.plan.job().pool.retry;
        let again =
            self.stop.is_none() && outcome.tries <= retry.retries && retryable(&retry.on, &outcome);
        self.record(|sink| sink.attempt_finished(&outcome, again));
        if again {
            let delay = retry.delay.delay(outcome.tries, jitter_unit(&outcome));
            self.retries.push(PendingRetry {
                due: Instant::now() + delay,
                task: outcome.task.clone(),
                attempt: outcome.attempt + 1,
                tries: outcome.tries,
                last: outcome,
            });
        } else {
            self.finalize(outcome);
        }
    }

    /// Records a task's final outcome and applies the halt policy to it.
    fn finalize(&mut self, outcome: TaskOutcome) {
        self.finished += 1;
        if matches!(
            outcome.status,
            TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::SpawnFailed
        ) {
            self.failed += 1;
        }
        self.record(|sink| sink.task_done(outcome));
        let pool = &self.plan.job().pool;
        if self.stop.is_none() && pool.halt.triggered(self.failed, self.finished) {
            tracing::warn!(
                "halting: {} of {} finished tasks failed",
                self.failed,
                self.finished
            );
            self.begin_stop(StopReason::Halted, pool.halt_mode == HaltMode::Now);
        }
    }

    fn on_signal(&mut self, signal: i32) {
        match signal {
            SIGTSTP => self.backend.pause(),
            SIGCONT => self.backend.resume(),
            // A second Ctrl-C (or TERM, or HUP) while the tasks are being stopped: no more grace.
            _ if self.stop.as_ref().is_some_and(|s| s.kill_at.is_some()) => self.kill_now(),
            _ if self
                .stop
                .as_ref()
                .is_some_and(|s| matches!(s.reason, StopReason::Signal(_))) => {}
            // A signal during a soft halt (or with nothing running) is an interruption that stops
            // the tasks.
            _ => {
                self.stop = None;
                self.begin_stop(StopReason::Signal(signal), true);
            }
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self
            .stop
            .as_ref()
            .and_then(|s| s.kill_at)
            .is_some_and(|at| at <= now)
        {
            self.kill_now();
        }
        if self.stop.is_none() && self.deadline.is_some_and(|d| d <= now) {
            self.begin_stop(StopReason::Deadline, true);
        }
    }

    fn begin_stop(&mut self, reason: StopReason, stop_running: bool) {
        if self.stop.is_some() {
            return;
        }
        // Close the dispenser first: a worker whose task dies of the SIGTERM must find no work.
        self.stop = Some(Stop {
            reason,
            kill_at: None,
        });
        self.settle_retries();
        let running = self.backend.running();
        self.backend.hold();
        if stop_running {
            self.backend.terminate();
            if let Some(stop) = &mut self.stop {
                stop.kill_at = Some(Instant::now() + self.grace_period);
            }
        }
        if reason != StopReason::SinkFailed {
            let grace = stop_running.then_some(self.grace_period);
            self.sink.stopping(reason, running, grace);
        }
    }

    fn kill_now(&mut self) {
        self.backend.kill();
        if let Some(stop) = &mut self.stop {
            stop.kill_at = None;
        }
    }

    /// Calls the sink unless it already failed; a failure stops the run.
    fn record(&mut self, call: impl FnOnce(&mut S) -> Result<(), S::Error>) {
        if self.sink_error.is_some() {
            return;
        }
        if let Err(e) = call(self.sink) {
            self.sink_error = Some(e);
            self.stop = None;
            self.begin_stop(StopReason::SinkFailed, true);
        }
    }
}

/// Whether the retry policy covers this attempt's outcome.
fn retryable(on: &RetryOn, o: &TaskOutcome) -> bool {
    match o.status {
        TaskStatus::Failed => on.failed || o.exit_code.is_some_and(|c| on.exit_codes.contains(&c)),
        TaskStatus::TimedOut => on.timed_out,
        TaskStatus::SpawnFailed => on.spawn_failed,
        TaskStatus::Succeeded
        | TaskStatus::Cancelled
        | TaskStatus::NotRun
        | TaskStatus::Running => false,
    }
}

/// A number in 0..1 that differs from task to task and attempt to attempt, for jitter.
fn jitter_unit(o: &TaskOutcome) -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let bits = RandomState::new().hash_one((o.task.id.0, o.attempt, o.finished_at));
    #[allow(
        clippy::cast_precision_loss,
        reason = "53 bits of randomness are plenty"
    )]
    let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
    unit
}

#[cfg(test)]
mod tests {
    //! The engine against a fake backend (attempts end as a script says, on a thread of their
    //! own, one at a time) and a fake sink (it notes every call).

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc::{self, Sender};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::{Backend, Dispatch, Event, PoolEnd, StopReason, run};
    use crate::exec::dispenser::Dispenser;
    use crate::exec::{Sink, TaskOutcome, TaskStatus};
    use crate::job::{Overrides, parse};
    use crate::plan::{Plan, RunInfo};

    /// How attempt `attempt` of task `id` ends; `None`: it runs until stopped.
    type Script = fn(u64, u32) -> Option<TaskStatus>;

    struct FakeBackend {
        events: Sender<Event>,
        script: Script,
        running: AtomicUsize,
        terminated: AtomicBool,
        starts: Mutex<Vec<(u64, u32)>>,
    }

    impl Backend for FakeBackend {
        fn serve<I: Iterator<Item = Dispatch> + Send>(
            &self,
            queue: &Dispenser<I>,
            engine: &mut dyn FnMut(),
        ) {
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    while let Some(work) = queue.take() {
                        let id = work.task.id.0;
                        self.starts.lock().unwrap().push((id, work.attempt));
                        self.running.fetch_add(1, Ordering::SeqCst);
                        let status = loop {
                            if let Some(status) = (self.script)(id, work.attempt) {
                                break status;
                            }
                            if self.terminated.load(Ordering::SeqCst) {
                                break TaskStatus::Cancelled;
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        };
                        self.running.fetch_sub(1, Ordering::SeqCst);
                        let outcome = TaskOutcome {
                            status,
                            exit_code: (status == TaskStatus::Failed).then_some(1),
                            error: None,
                            ..TaskOutcome::not_started(
                                work.task,
                                work.attempt,
                                work.tries + 1,
                                String::new(),
                            )
                        };
                        let failed = status != TaskStatus::Succeeded;
                        if failed {
                            queue.expect_ack(id);
                        }
                        let _ = self.events.send(Event::Finished(Box::new(outcome)));
                        if failed {
                            queue.await_ack(id);
                        }
                    }
                });
                engine();
            });
        }

        fn terminate(&self) {
            self.terminated.store(true, Ordering::SeqCst);
        }

        fn kill(&self) {
            self.terminated.store(true, Ordering::SeqCst);
        }

        fn pause(&self) {}

        fn resume(&self) {}

        fn running(&self) -> usize {
            self.running.load(Ordering::SeqCst)
        }
    }

    #[derive(Default)]
    struct FakeSink {
        attempts: Vec<(u64, u32, TaskStatus, bool)>,
        done: Vec<(u64, TaskStatus)>,
        commits: usize,
        stops: Vec<(StopReason, usize)>,
    }

    impl Sink for FakeSink {
        type Error = ();

        fn started(&mut self, _: &crate::exec::Started) -> Result<(), ()> {
            Ok(())
        }

        fn attempt_finished(&mut self, o: &TaskOutcome, will_retry: bool) -> Result<(), ()> {
            self.attempts
                .push((o.task.id.0, o.attempt, o.status, will_retry));
            Ok(())
        }

        fn task_done(&mut self, o: TaskOutcome) -> Result<(), ()> {
            self.done.push((o.task.id.0, o.status));
            Ok(())
        }

        fn commit(&mut self) -> Result<(), ()> {
            self.commits += 1;
            Ok(())
        }

        fn stopping(&mut self, reason: StopReason, running: usize, _: Option<Duration>) {
            self.stops.push((reason, running));
        }
    }

    /// Runs a job of `n` tasks with `pool` settings through the fake backend.
    fn drive(n: u64, pool: &str, script: Script) -> (PoolEnd<()>, FakeSink, Arc<FakeBackend>) {
        let tmp = tempfile::tempdir().unwrap();
        let text = format!(
            "command = \"true\"\n[range]\nstart = 0\nend = {n}\n[pool]\nprocesses = 1\n{pool}"
        );
        let job = parse(&tmp.path().join("job.toml"), &text, &Overrides::default()).unwrap();
        let plan = Plan::new(
            Arc::new(job),
            RunInfo {
                id: "r".into(),
                dir: tmp.path().into(),
            },
        );
        let (tx, rx) = mpsc::channel();
        let backend = Arc::new(FakeBackend {
            events: tx,
            script,
            running: AtomicUsize::new(0),
            terminated: AtomicBool::new(false),
            starts: Mutex::new(Vec::new()),
        });
        let mut sink = FakeSink::default();
        let tasks = plan.tasks().map(|task| Dispatch {
            task,
            prior_attempts: 0,
        });
        let end = run(
            &plan,
            tasks,
            &mut sink,
            &*backend,
            &rx,
            Vec::new(),
            Instant::now(),
        );
        (end, sink, backend)
    }

    #[test]
    fn a_failed_attempt_is_retried_and_only_the_last_is_the_outcome() {
        let (end, sink, _) = drive(3, "retries = 1\n", |id, attempt| {
            Some(if id == 1 && attempt == 1 {
                TaskStatus::Failed
            } else {
                TaskStatus::Succeeded
            })
        });
        assert!(end.stop.is_none());
        assert!(sink.attempts.contains(&(1, 1, TaskStatus::Failed, true)));
        assert!(
            sink.attempts
                .contains(&(1, 2, TaskStatus::Succeeded, false))
        );
        let mut done = sink.done.clone();
        done.sort_by_key(|d| d.0);
        assert_eq!(
            done,
            [0, 1, 2].map(|id| (id, TaskStatus::Succeeded)).to_vec()
        );
        assert!(sink.commits >= 1);
    }

    #[test]
    fn the_halt_policy_stops_new_tasks_after_the_failure_it_counts() {
        let (end, sink, backend) = drive(10, "halt = \"first-failure\"\n", |id, _| {
            Some(if id == 2 {
                TaskStatus::Failed
            } else {
                TaskStatus::Succeeded
            })
        });
        assert_eq!(end.stop, Some(StopReason::Halted));
        // One slot: nothing starts after the failed task 2 until the engine has seen it.
        let starts = backend.starts.lock().unwrap().clone();
        assert_eq!(starts, [(0, 1), (1, 1), (2, 1)]);
        assert_eq!(sink.done.len(), 3);
        assert_eq!(sink.stops, [(StopReason::Halted, 0)]);
    }

    #[test]
    fn the_deadline_asks_the_backend_to_stop_what_runs() {
        let (end, sink, backend) = drive(3, "deadline = \"200ms\"\n", |_, _| None);
        assert_eq!(end.stop, Some(StopReason::Deadline));
        assert!(backend.terminated.load(Ordering::SeqCst));
        assert_eq!(sink.stops, [(StopReason::Deadline, 1)]);
        assert_eq!(sink.done, [(0, TaskStatus::Cancelled)]);
    }
}
