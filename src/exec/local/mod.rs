//! The local backend: a dedicated rayon pool of `processes` threads, each running one task's
//! child process at a time, taking its next attempt from the engine's queue itself. The calling
//! thread runs the engine (`exec::engine`), which receives every start, outcome and signal.

use std::path::Path;
use std::time::Instant;

mod attempt;
mod cgroup;
pub mod containment;
mod context;
mod exit_watch;
pub mod output;
mod pause;
mod procfs;
mod running;
mod spawn;
pub mod unix;

use crate::exec::Event;
use crate::exec::dispenser::{Dispenser, Work};
use crate::exec::engine::{self, Backend, Dispatch, PoolEnd};
use crate::exec::local::attempt::{Worker, run_attempt_guarded};
use crate::exec::local::containment::{Containment, Identity};
use crate::exec::local::context::Context;
use crate::exec::local::output::Spools;
use crate::exec::local::pause::PauseClock;
use crate::exec::local::running::Running;
use crate::exec::local::spawn::{Environment, RunVariables, Spawner};
use crate::exec::local::unix::UnixSignal;
use crate::exec::outcome::TaskStatus;
use crate::exec::signals::{SignalWatch, stop_self};
use crate::exec::{ExecError, Sink};
use crate::job::policy::Halt;
use crate::plan::Plan;

/// Settings for one local run.
#[derive(Debug, Clone)]
pub struct LocalPool<'a> {
    /// Where `0007.out` and `0007.err` go.
    pub tasks_dir: &'a Path,
    /// When the run began, for `[pool] deadline`: before a wait for the job's lock, which
    /// counts against it.
    pub began: Instant,
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
        let (tx, rx, early) = engine::channel(signals);
        let ctx = Context {
            tasks_dir: self.tasks_dir,
            timeout: job.pool.timeout,
            grace_period: job.pool.grace_period,
            running: Running::default(),
            pause: PauseClock::default(),
            env: Environment::new(
                job.env_clear,
                &job.env_pass,
                &RunVariables {
                    job_name: &job.name,
                    run_id: &plan.run().id,
                    token_name: containment::TOKEN_VARIABLE,
                    token: containment.token(),
                    run_dir: &plan.run().dir,
                },
            ),
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
        let backend = LocalBackend { ctx: &ctx, threads };
        let end = engine::run(plan, tasks, sink, &backend, &rx, early, self.began);
        signals.stop_forwarding();
        let swept = containment.sweep();
        if swept > 0 {
            tracing::warn!("killed {swept} processes that tasks left running");
        }
        Ok(PoolEnd { swept, ..end })
    }
}

/// The local backend: a rayon pool of `processes` threads, each running one attempt's child
/// process at a time.
struct LocalBackend<'a> {
    ctx: &'a Context<'a>,
    threads: rayon::ThreadPool,
}

impl Backend for LocalBackend<'_> {
    fn serve<I: Iterator<Item = Dispatch> + Send>(
        &self,
        queue: &Dispenser<I>,
        engine: &mut dyn FnMut(),
    ) {
        let ctx = self.ctx;
        self.threads.in_place_scope(|scope| {
            for _ in 0..self.threads.current_num_threads() {
                scope.spawn(move |_| work(queue, ctx));
            }
            engine();
        });
    }

    fn terminate(&self) {
        self.ctx.running.stop_all(UnixSignal::SIGTERM);
    }

    fn kill(&self) {
        self.ctx.running.stop_all(UnixSignal::SIGKILL);
    }

    fn pause(&self) {
        self.ctx.pause.pause();
        self.ctx.running.set_paused(true);
        // A task started but not yet registered pauses itself on registering; wait for those
        // registrations before poolrun stops.
        self.ctx.running.wait_for_spawns();
        stop_self();
    }

    fn resume(&self) {
        self.ctx.running.set_paused(false);
        self.ctx.pause.resume();
    }

    fn running(&self) -> usize {
        self.ctx.running.count()
    }
}

/// A worker: takes attempts from the dispenser and runs them until it is closed.
fn work<I: Iterator<Item = Dispatch>>(dispenser: &Dispenser<I>, ctx: &Context<'_>) {
    ctx.containment.enter_slot();
    let mut worker = Worker {
        spools: Spools::new(ctx.tasks_dir),
        spawner: Spawner::new(),
    };
    while let Some(Work {
        task,
        attempt,
        tries,
    }) = dispenser.take()
    {
        let mut outcome = run_attempt_guarded(task, attempt, ctx, &mut worker);
        outcome.tries = tries + 1;
        let id = outcome.task.id.0;
        // Only an outcome that may halt the run holds the slot: a failure, or with a failure-rate
        // policy any outcome (it moves the rate, and may be the one that makes it count).
        let failed = outcome.status != TaskStatus::Succeeded || ctx.halt_on_rate;
        // The receiver outlives every worker: the engine returns only when none is left.
        if failed {
            dispenser.expect_ack(id);
            let _ = ctx.events.send(Event::Finished(Box::new(outcome)));
            dispenser.await_ack(id);
        } else if dispenser.deliver(outcome) {
            let _ = ctx.events.send(Event::Delivered);
        }
    }
    ctx.containment.leave_slot();
}
