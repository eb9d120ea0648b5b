//! The local backend: a dedicated rayon pool of `processes` threads, each running one task's
//! child process at a time, fed in plan order by the calling thread. That thread also receives
//! every start, outcome and signal, hands them to the `Sink` in batches, and only after the sink
//! has committed a batch acts on it: retries, halts, new tasks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGCONT, SIGTSTP};

use crate::exec::attempt::run_attempt_guarded;
use crate::exec::containment::{self, Containment, Identity};
use crate::exec::context::{Context, Event};
use crate::exec::dispenser::{Dispenser, Work};
use crate::exec::outcome::{TaskOutcome, TaskStatus};
use crate::exec::pause::PauseClock;
use crate::exec::running::Running;
use crate::exec::schedule::{PendingRetry, RetryQueue};
use crate::exec::signals::{SignalWatch, stop_self};
use crate::exec::unix::{self, UnixSignal};
use crate::exec::{ExecError, Sink};
use crate::job::policy::{Halt, HaltMode, RetryOn};
use crate::plan::{Plan, Task};

/// A task to run and how many attempts it already had (in earlier, resumed runs).
pub struct Dispatch {
    /// The task.
    pub task: Task,
    /// Attempts made before this run.
    pub prior_attempts: u32,
}

/// Settings for one local run.
#[derive(Debug, Clone)]
pub struct LocalPool<'a> {
    /// Where `0007.out` and `0007.err` go.
    pub tasks_dir: &'a Path,
    /// When the run began, for `[pool] deadline`: before a wait for the job's lock, which
    /// counts against it.
    pub began: Instant,
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

/// How a pool's run ended.
pub struct PoolEnd<E> {
    /// Why the run stopped early, if it did.
    pub stop: Option<StopReason>,
    /// The sink's error, if it failed.
    pub sink_error: Option<E>,
    /// Processes the tasks left that only the sweep at the end found, killed.
    pub swept: u32,
}

impl LocalPool<'_> {
    /// Sets up the containment of a session of run `run_id` (before its identity is recorded).
    pub fn contain(plan: &Plan) -> Containment {
        Containment::new(&plan.run().id, plan.job().pool.max_processes.is_some())
    }

    /// Kills what the killed sessions of run `run_id` left running; see
    /// `containment::kill_leftovers`.
    pub fn kill_leftovers(run_id: &str, identities: &[Identity]) -> u32 {
        containment::kill_leftovers(run_id, identities)
    }

    /// Runs `tasks` (a subset of `plan`'s, in plan order) inside `containment`, reporting to
    /// `sink`, with `signals` forwarded to the engine.
    pub fn run<S: Sink>(
        &self,
        plan: &Plan,
        tasks: impl Iterator<Item = Dispatch> + Send,
        sink: &mut S,
        signals: &SignalWatch,
        containment: &Containment,
    ) -> Result<PoolEnd<S::Error>, ExecError> {
        let job = plan.job();
        let threads = rayon::ThreadPoolBuilder::new()
            // No more threads than tasks: a huge limit on a small plan costs nothing.
            .num_threads(
                job.pool
                    .processes
                    .get()
                    .min(usize::try_from(plan.len()).unwrap_or(usize::MAX))
                    .max(1),
            )
            .thread_name(|i| format!("poolrun-worker-{i}"))
            .build()
            .map_err(ExecError::ThreadPool)?;
        unix::become_subreaper();
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let early = signals.forward(Box::new(move |s| events.send(Event::Signal(s)).is_ok()));
        let ctx = Context {
            tasks_dir: self.tasks_dir,
            timeout: job.pool.timeout,
            grace_period: job.pool.grace_period,
            job_name: &job.name,
            run_id: &plan.run().id,
            run_dir: &plan.run().dir,
            running: Running::default(),
            pause: PauseClock::default(),
            env_clear: job.env_clear,
            env_pass: &job.env_pass,
            memory_limit: job.pool.memory_limit,
            max_processes: job.pool.max_processes,
            containment,
            events: tx,
            start_log: sink.start_log(),
            halt_on_rate: matches!(job.pool.halt, Halt::MaxFailureRate { .. }),
        };
        if job.pool.max_processes.is_some() && !containment.limits_processes() {
            tracing::warn!(
                "no pids cgroup can be made here: `max-processes` falls back to RLIMIT_NPROC, which counts all of the user's processes and does not bind root"
            );
        }
        let threads_count = threads.current_num_threads();
        containment.make_slots(threads_count, job.pool.max_processes);
        let dispenser = Dispenser::new(tasks);
        let mut engine = Engine {
            plan,
            ctx: &ctx,
            dispenser: &dispenser,
            attempts_done: 0,
            retries: RetryQueue::default(),
            handed: HashMap::new(),
            stop: None,
            deadline: job.pool.deadline.map(|d| self.began + d),
            finished: 0,
            failed: 0,
            sink,
            sink_error: None,
            last_commit: Instant::now(),
            commit_due: None,
        };
        // A signal that came before the pool started stops it before any task starts.
        for signal in early {
            engine.on_signal(signal);
        }
        threads.in_place_scope(|scope| {
            for _ in 0..threads_count {
                let (dispenser, ctx) = (&dispenser, &ctx);
                scope.spawn(move |_| work(dispenser, ctx));
            }
            engine.drive(&rx);
        });
        let Engine {
            stop, sink_error, ..
        } = engine;
        signals.stop_forwarding();
        let swept = containment.sweep();
        if swept > 0 {
            tracing::warn!("killed {swept} processes that tasks left running");
        }
        Ok(PoolEnd {
            stop: stop.map(|s| s.reason),
            sink_error,
            swept,
        })
    }
}

/// A worker: takes attempts from the dispenser and runs them until it is closed.
fn work<I: Iterator<Item = Dispatch>>(dispenser: &Dispenser<I>, ctx: &Context<'_>) {
    ctx.containment.enter_slot();
    while let Some(Work {
        task,
        attempt,
        tries,
    }) = dispenser.take()
    {
        let mut outcome = run_attempt_guarded(task, attempt, ctx);
        outcome.tries = tries + 1;
        let id = outcome.task.id.0;
        // Only an outcome that may halt the run holds the slot: a failure, or with a failure-rate
        // policy any outcome (it moves the rate, and may be the one that makes it count).
        let failed = outcome.status != TaskStatus::Succeeded || ctx.halt_on_rate;
        if failed {
            dispenser.expect_ack(id);
        }
        // The receiver outlives every worker: the engine returns only when none is left.
        let _ = ctx.events.send(Event::Finished(Box::new(outcome)));
        if failed {
            dispenser.await_ack(id);
        }
    }
    ctx.containment.leave_slot();
}

struct Engine<'a, 'p, I: Iterator<Item = Dispatch>, S: Sink> {
    plan: &'p Plan,
    ctx: &'a Context<'a>,
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

impl<I: Iterator<Item = Dispatch>, S: Sink> Engine<'_, '_, I, S> {
    fn drive(&mut self, rx: &Receiver<Event>) {
        loop {
            self.release_due_retries();
            let (taken, drained) = self.dispenser.progress();
            let idle = taken == self.attempts_done;
            if idle && (self.stop.is_some() || (drained && self.retries.is_empty())) {
                break;
            }
            let wake = [
                self.commit_due,
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
            self.commit_soon();
        }
        self.settle_retries();
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
                self.attempts_done += 1;
                let id = outcome.task.id.0;
                self.handed.remove(&id);
                self.on_finished(*outcome);
                self.dispenser.ack(id);
            }
            Event::Signal(signal) => self.on_signal(signal),
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
            SIGTSTP => {
                self.ctx.pause.pause();
                self.ctx.running.set_paused(true);
                // A task started but not yet registered pauses itself on registering; wait for
                // those registrations before poolrun stops.
                self.ctx.running.wait_for_spawns();
                stop_self();
            }
            SIGCONT => {
                self.ctx.running.set_paused(false);
                self.ctx.pause.resume();
            }
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
        let running = self.ctx.running.count();
        if stop_running {
            self.ctx.running.stop_all(UnixSignal::SIGTERM);
            if let Some(stop) = &mut self.stop {
                stop.kill_at = Some(Instant::now() + self.ctx.grace_period);
            }
        }
        if reason != StopReason::SinkFailed {
            let grace = stop_running.then_some(self.ctx.grace_period);
            self.sink.stopping(reason, running, grace);
        }
    }

    fn kill_now(&mut self) {
        self.ctx.running.stop_all(UnixSignal::SIGKILL);
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
