//! The Slurm backend: the engine's attempts run as elements of Slurm job arrays. Each element
//! runs `poolrun exec-task RUN_DIR TASK_ID --attempt N`, which runs the task as the local pool
//! would (process group, timeout, kill sequence, output files) and writes its outcome file; a
//! thread of this backend submits what the engine's queue holds, folds outcome files into events
//! and asks Slurm (`squeue`, with back-off; never `sbatch --wait`) only about elements that ended
//! without one. Elements are keyed by array job id and index, never by a plain job id.

mod commands;
pub mod outcome;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::exec::engine::{self, Backend, Dispatch, Event, PoolEnd, Started};
use crate::exec::{Dispenser, ExecError, SignalWatch, Sink, TaskOutcome, TaskStatus, Work};
use crate::job::Job;
use crate::plan::Plan;

pub use commands::{ElementState, scancel};
pub use outcome::OutcomeFile;

/// The quickest and slowest poll of the outcome files and of `squeue`.
const POLL_MIN: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);
/// `sbatch` tries before its failure is the tasks' outcome, and the wait before the first retry.
const SBATCH_TRIES: u32 = 4;
const SBATCH_BACKOFF: Duration = Duration::from_millis(500);
/// How long an element that ended may take for its outcome file to show (a shared file system
/// that caches directory entries) before Slurm's state is its outcome.
const OUTCOME_GRACE: Duration = Duration::from_secs(3);
/// `squeue` failures in a row after which the elements without an outcome file end as lost.
const SQUEUE_TRIES: u32 = 10;

/// Waits, at most `limit`, until no element of the arrays `ids` is queued, running or
/// completing (after a `scancel`, their outcome files are then final); false when `limit`
/// passed first.
pub fn wait_until_ended(ids: &[String], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let going =
            commands::squeue(ids).map_or(true, |states| states.values().any(|s| !s.ended()));
        if !going {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Settings for one run on Slurm.
pub struct SlurmPool<'a> {
    /// The run directory, on storage the compute nodes share.
    pub run_dir: &'a Path,
    /// When the run began (for the deadline).
    pub began: Instant,
}

/// One submitted element.
struct Element {
    work: Work,
    /// `<array job id>_<index>`.
    job_id: String,
    array: String,
    submitted: Instant,
    /// When `squeue` first said it ended (without its outcome file there yet).
    ended: Option<(Instant, ElementState)>,
    /// Polls in a row in which `squeue` did not know it.
    unknown: u32,
    /// Whether `squeue` ever said it runs.
    ran: bool,
}

#[derive(Default)]
struct State {
    /// By task id.
    elements: BTreeMap<u64, Element>,
    running: usize,
    /// No element starts any more (a halt, a stop): new work is not submitted, and queued
    /// elements are cancelled.
    stopping: bool,
    /// Running elements were told to stop (`terminate`, `kill`): a task a signal ended was
    /// stopped with the run.
    terminated: bool,
    /// `squeue` failures in a row.
    squeue_failures: u32,
    /// Each submitted array and its throttle, oldest first.
    throttles: Vec<(String, usize)>,
    /// Whether any element's outcome file was seen: if none ever is, the run directory is not
    /// shared with the compute nodes.
    seen_outcome: bool,
    /// Set when an element ran to its end and no outcome file was ever seen: the compute nodes
    /// cannot write the run directory, and every task fails with why.
    unshared: Option<String>,
}

struct SlurmBackend<'a> {
    plan: &'a Plan,
    events: Sender<Event>,
    tasks_dir: PathBuf,
    run_dir: PathBuf,
    poolrun: PathBuf,
    max_array: u64,
    state: Mutex<State>,
}

impl SlurmPool<'_> {
    /// Runs `tasks` of `plan` as Slurm arrays, reporting to `sink`, with `signals` forwarded to
    /// the engine. Whatever happens, no array of the run is left behind when it returns.
    pub fn run<S: Sink>(
        &self,
        plan: &Plan,
        tasks: impl Iterator<Item = Dispatch> + Send,
        sink: &mut S,
        signals: &SignalWatch,
    ) -> Result<PoolEnd<S::Error>, ExecError> {
        let (tx, rx, early) = engine::channel(signals);
        let backend = SlurmBackend {
            plan,
            events: tx,
            tasks_dir: self.run_dir.join("tasks"),
            run_dir: self.run_dir.to_owned(),
            poolrun: std::env::current_exe().map_err(ExecError::Program)?,
            max_array: commands::max_array_size().max(1),
            state: Mutex::new(State::default()),
        };
        let end = engine::run(plan, tasks, sink, &backend, &rx, early, self.began);
        signals.stop_forwarding();
        backend.cancel_all(None);
        Ok(end)
    }
}

impl SlurmBackend<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The arrays with elements not yet ended.
    fn arrays(&self) -> Vec<String> {
        let mut arrays: Vec<String> = self
            .lock()
            .elements
            .values()
            .map(|e| e.array.clone())
            .collect();
        arrays.sort();
        arrays.dedup();
        arrays
    }

    fn cancel_all(&self, signal: Option<&str>) {
        let arrays = self.arrays();
        match scancel(&arrays, signal) {
            // Every element of those arrays already ended.
            Err(e) if e.contains("Invalid job id") => {}
            Err(e) => tracing::warn!(
                "cannot cancel the run's Slurm arrays {}: {e}",
                arrays.join(",")
            ),
            Ok(()) => {}
        }
    }

    /// The `sbatch` arguments every array of the run gets.
    fn sbatch_args(&self, job: &Job) -> Vec<String> {
        let log_dir = self.run_dir.join("slurm");
        let mut args = vec![
            format!("--job-name=poolrun-{}", job.name),
            format!("--output={}/%A_%a.log", log_dir.display()),
            format!("--chdir={}", self.run_dir.display()),
            "--export=ALL".to_owned(),
        ];
        if let Some(timeout) = job.pool.timeout {
            // Slurm's limit is in whole minutes, and past it Slurm kills: leave the task's own
            // timeout and kill sequence room to happen first.
            let seconds = (timeout + job.pool.grace_period).as_secs_f64();
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "minutes of a duration of at most ten years"
            )]
            let minutes = (seconds / 60.0).ceil().max(1.0) as u64;
            args.push(format!("--time={minutes}"));
        }
        if let Some(slurm) = &job.slurm {
            for (flag, value) in [
                ("partition", &slurm.partition),
                ("account", &slurm.account),
                ("qos", &slurm.qos),
            ] {
                if let Some(value) = value {
                    args.push(format!("--{flag}={value}"));
                }
            }
            args.extend(slurm.extra_args.iter().cloned());
        }
        args
    }

    /// Submits the next array from `backlog` (sorted by attempt and task id): the attempts of
    /// one attempt number whose task ids span less than `MaxArraySize`, with `%throttle`.
    fn submit_next(&self, backlog: &mut Vec<Work>, throttle: usize) {
        let job = self.plan.job();
        let _ = std::fs::create_dir_all(self.run_dir.join("slurm"));
        let common = self.sbatch_args(job);
        let Some(first) = backlog.first() else {
            return;
        };
        let (attempt, offset) = (first.attempt, first.task.id.0);
        let take = backlog
            .iter()
            .take_while(|w| w.attempt == attempt && w.task.id.0 - offset < self.max_array)
            .count();
        let group: Vec<Work> = backlog.drain(..take).collect();
        {
            let group = group.as_slice();
            let first = &group[0];
            let indexes: Vec<u64> = group.iter().map(|w| w.task.id.0 - offset).collect();
            let mut args = common.clone();
            args.push(format!(
                "--array={}%{throttle}",
                commands::array_spec(&indexes)
            ));
            // The timeout as the run has it, `--timeout` included (the job file's copy has the
            // file's).
            let timeout = job
                .pool
                .timeout
                .map_or_else(String::new, |t| format!(" --timeout {}ms", t.as_millis()));
            let script = format!(
                "#!/bin/sh\n# poolrun {} attempt {}\nexec {} exec-task {} $(({offset} + SLURM_ARRAY_TASK_ID)) --attempt {}{timeout}\n",
                job.name,
                first.attempt,
                shell_word(&self.poolrun.to_string_lossy()),
                shell_word(&self.run_dir.to_string_lossy()),
                first.attempt
            );
            match submit_with_retries(&args, &script) {
                Ok(array) => {
                    self.submitted(&array, offset, group);
                    self.lock().throttles.push((array, throttle));
                }
                Err(e) => {
                    tracing::error!("cannot submit to Slurm: {e}");
                    for work in group {
                        self.finish(spawn_failed(work, &format!("sbatch failed: {e}")));
                    }
                }
            }
        }
    }

    /// Once the arrays before the newest have ended, lets the newest run `processes` at once
    /// (it was submitted with what they left free).
    fn raise_throttle(&self) {
        let processes = self.plan.job().pool.processes.get();
        let mut state = self.lock();
        let Some((newest, throttle)) = state.throttles.last().cloned() else {
            return;
        };
        let alone = state.elements.values().all(|e| e.array == newest);
        if throttle >= processes || !alone {
            return;
        }
        match commands::set_throttle(&newest, processes) {
            Ok(()) => {
                if let Some(last) = state.throttles.last_mut() {
                    last.1 = processes;
                }
            }
            Err(e) => tracing::debug!("cannot raise the throttle of {newest}: {e}"),
        }
    }

    fn submitted(&self, array: &str, offset: u64, group: &[Work]) {
        let mut state = self.lock();
        // The run began to stop while sbatch ran: nothing of this array may start (its
        // elements end as cancelled or never run, like the others).
        if state.stopping {
            let ids = [array.to_owned()];
            let cancelled = if state.terminated {
                scancel(&ids, None)
            } else {
                commands::scancel_pending(&ids)
            };
            if let Err(e) = cancelled {
                tracing::warn!("cannot cancel the Slurm array {array}: {e}");
            }
        }
        for work in group {
            let job_id = format!("{array}_{}", work.task.id.0 - offset);
            let _ = self.events.send(Event::Started(Started {
                id: work.task.id,
                key: work.task.key.clone(),
                attempt: work.attempt,
                handle: array.parse().unwrap_or(0),
                at: SystemTime::now(),
            }));
            state.elements.insert(
                work.task.id.0,
                Element {
                    work: Work {
                        task: work.task.clone(),
                        attempt: work.attempt,
                        tries: work.tries,
                    },
                    job_id,
                    array: array.to_owned(),
                    submitted: Instant::now(),
                    ended: None,
                    unknown: 0,
                    ran: false,
                },
            );
        }
    }

    fn finish(&self, outcome: TaskOutcome) {
        let _ = self.events.send(Event::Finished(Box::new(outcome)));
    }

    /// The outcome files that appeared, by task id.
    fn outcome_files(&self) -> Vec<(u64, Option<OutcomeFile>)> {
        let elements: Vec<(u64, crate::plan::Task, u32)> = self
            .lock()
            .elements
            .iter()
            .map(|(&id, e)| (id, e.work.task.clone(), e.work.attempt))
            .collect();
        let mut found = Vec::new();
        for (id, task, attempt) in elements {
            match OutcomeFile::read(&OutcomeFile::path(&self.tasks_dir, &task, attempt)) {
                Ok(Some(file)) => found.push((id, Some(file))),
                Ok(None) => {}
                Err(e) => tracing::warn!("task {id}: cannot read its outcome file: {e}"),
            }
        }
        found
    }

    /// Notes what `squeue` says of each element, and adds to `ended` those that ended without
    /// an outcome file (after a grace for a shared file system to show one) or that Slurm no
    /// longer knows.
    fn note_states(
        state: &mut State,
        states: &HashMap<String, ElementState>,
        ended: &mut Vec<(u64, Option<OutcomeFile>)>,
    ) {
        state.running = states.values().filter(|s| s.state == "RUNNING").count();
        let now = Instant::now();
        for (&id, e) in &mut state.elements {
            let listed = ended.iter().any(|(i, _)| *i == id);
            match states.get(&e.job_id) {
                Some(s) if s.ended() => {
                    let since = e.ended.get_or_insert_with(|| (now, s.clone()));
                    // An element that ran to its end wrote its outcome file; give a shared file
                    // system time to show it. One Slurm stopped may have none.
                    let expected = matches!(s.state.as_str(), "COMPLETED" | "FAILED");
                    if (!expected || now.duration_since(since.0) >= OUTCOME_GRACE) && !listed {
                        ended.push((id, None));
                    }
                }
                Some(s) => {
                    e.unknown = 0;
                    e.ran |= matches!(s.state.as_str(), "RUNNING" | "COMPLETING" | "SUSPENDED");
                }
                // A pending element cancelled alone leaves no record without accounting.
                None if now.duration_since(e.submitted) > OUTCOME_GRACE => {
                    e.unknown += 1;
                    if e.unknown >= 3 && !listed {
                        ended.push((id, None));
                    }
                }
                None => {}
            }
        }
    }

    /// Folds the outcome files that appeared, and for elements that ended without one, Slurm's
    /// state; returns whether anything ended.
    fn collect(&self, ask_slurm: bool) -> bool {
        let mut ended = self.outcome_files();
        let ask = ask_slurm || ended.iter().any(|(_, f)| f.as_ref().is_some_and(killed));
        let asked = ask.then(|| commands::squeue(&self.arrays()));
        let mut state = self.lock();
        let states = match asked {
            Some(Ok(states)) => {
                state.squeue_failures = 0;
                Some(states)
            }
            Some(Err(e)) => {
                state.squeue_failures += 1;
                tracing::warn!("cannot ask Slurm about the run's arrays: {e}");
                // Slurm cannot be asked for long: the elements without an outcome file end
                // here, rather than poolrun waiting for ever.
                if state.squeue_failures >= SQUEUE_TRIES {
                    let ids: Vec<u64> = state.elements.keys().copied().collect();
                    for id in ids {
                        if !ended.iter().any(|(i, _)| *i == id) {
                            ended.push((id, None));
                        }
                    }
                }
                None
            }
            None => None,
        };
        if let Some(states) = &states {
            Self::note_states(&mut state, states, &mut ended);
        }
        let any = !ended.is_empty();
        let mut unshared_now = false;
        for (id, file) in ended {
            let slurm = state
                .elements
                .get(&id)
                .and_then(|e| states.as_ref()?.get(&e.job_id))
                .cloned();
            if let Some(file) = &file
                && Self::wait_for_verdict(&mut state, id, file, slurm.as_ref())
            {
                continue;
            }
            let Some(e) = state.elements.remove(&id) else {
                continue;
            };
            let outcome = if let Some(file) = file {
                state.seen_outcome = true;
                Self::from_file(&state, &e, file, slurm.as_ref())
            } else {
                let lost = state.squeue_failures >= SQUEUE_TRIES;
                let outcome = self.without_outcome(&e, slurm.as_ref(), state.stopping, lost);
                let completed = slurm
                    .as_ref()
                    .is_some_and(|s| matches!(s.state.as_str(), "COMPLETED" | "FAILED"));
                if completed && !state.seen_outcome && state.unshared.is_none() {
                    let message = outcome.error.clone().unwrap_or_default();
                    tracing::error!("{message}; stopping the run");
                    state.unshared = Some(message);
                    state.stopping = true;
                    unshared_now = true;
                }
                outcome
            };
            let _ = self.events.send(Event::Finished(Box::new(outcome)));
        }
        drop(state);
        if unshared_now {
            // Every other element would end the same way: none of them runs.
            self.cancel_all(None);
        }
        any
    }

    /// A task killed by a signal poolrun did not send: Slurm's time limit, or a scancel from
    /// outside, signals every process of the element. Slurm's state says which once it has
    /// one: whether to wait for it a little longer.
    fn wait_for_verdict(
        state: &mut State,
        id: u64,
        file: &OutcomeFile,
        slurm: Option<&ElementState>,
    ) -> bool {
        let stopping = state.terminated;
        let Some(e) = state.elements.get_mut(&id) else {
            return false;
        };
        if stopping || !killed(file) || slurm.is_some_and(|s| verdict(s).is_some()) {
            return false;
        }
        let now = Instant::now();
        let since = e
            .ended
            .get_or_insert_with(|| (now, slurm.cloned().unwrap_or_else(unknown_state)));
        now.duration_since(since.0) < OUTCOME_GRACE
    }

    /// The outcome an element's file records, with what Slurm says of a task that a signal
    /// ended.
    fn from_file(
        state: &State,
        e: &Element,
        file: OutcomeFile,
        slurm: Option<&ElementState>,
    ) -> TaskOutcome {
        let was_killed = killed(&file);
        let mut outcome = file.into_outcome(e.work.task.clone(), e.work.tries + 1);
        outcome.slurm_job_id.get_or_insert_with(|| e.job_id.clone());
        if state.terminated && outcome.status == TaskStatus::Failed && was_killed {
            // Slurm's scancel signals every process of the element, the task's too: a task
            // that died of it while the run stopped was stopped with the run.
            outcome.status = TaskStatus::Cancelled;
            outcome.error = Some("stopped: the run was stopped".to_owned());
        } else if !state.terminated
            && was_killed
            && let Some((status, error)) = slurm.and_then(verdict)
        {
            outcome.status = status;
            outcome.error = Some(error);
        }
        outcome
    }

    /// The outcome of an element that ended without writing its outcome file: Slurm's state
    /// says how (and if it completed, the compute node could not write the run directory).
    fn without_outcome(
        &self,
        e: &Element,
        slurm: Option<&ElementState>,
        stopping: bool,
        lost: bool,
    ) -> TaskOutcome {
        let tries = e.work.tries + 1;
        let mut outcome = spawn_failed(&e.work, "");
        outcome.tries = tries;
        outcome.slurm_job_id = Some(e.job_id.clone());
        // Queued when poolrun stopped the run, and cancelled by it: it never started.
        let cancelled = slurm.is_none_or(|s| s.state == "CANCELLED");
        if stopping && !e.ran && cancelled && !lost {
            outcome.status = TaskStatus::NotRun;
            outcome.error = None;
            return outcome;
        }
        match slurm {
            Some(s) if matches!(s.state.as_str(), "COMPLETED" | "FAILED") => {
                let message = format!(
                    "the Slurm element {} ended ({}) without writing its outcome in {}: is the run directory on storage the compute nodes share? (its log: {}/slurm/{}.log)",
                    e.job_id,
                    s.state,
                    self.tasks_dir.display(),
                    self.run_dir.display(),
                    e.job_id
                );
                outcome.status = TaskStatus::Failed;
                outcome.exit_code = s.exit.0;
                outcome.signal = s.exit.1;
                outcome.error = Some(message);
            }
            Some(s) => {
                outcome.status = status_of(&s.state);
                outcome.exit_code = s.exit.0.filter(|_| s.state != "CANCELLED");
                outcome.signal = s.exit.1;
                outcome.error = Some(slurm_error(s));
            }
            // With accounting, sacct remembers what squeue forgot.
            None if lost => {
                outcome.status = TaskStatus::Failed;
                outcome.error = Some(format!(
                    "Slurm could not be asked how {} ended ({SQUEUE_TRIES} squeue failures in a row)",
                    e.job_id
                ));
            }
            None => {
                if let Some(s) = commands::sacct(&e.job_id) {
                    outcome.status = status_of(&s.state);
                    outcome.error = Some(slurm_error(&s));
                } else {
                    outcome.status = TaskStatus::Cancelled;
                    outcome.error = Some(format!(
                        "Slurm has no record of {} (cancelled before it started?)",
                        e.job_id
                    ));
                }
            }
        }
        outcome
    }

    /// Submits, folds and polls until the queue is closed and every element ended.
    fn poll_loop<I: Iterator<Item = Dispatch>>(&self, queue: &Dispenser<I>) {
        let processes = self.plan.job().pool.processes.get();
        let mut interval = POLL_MIN;
        let mut last_ask = Instant::now();
        // Attempts taken from the queue and not yet submitted: arrays go to Slurm one at a
        // time, each with the slots the others leave free, so that no more than `processes`
        // elements run at once across the run's arrays.
        let mut backlog: Vec<Work> = Vec::new();
        loop {
            let before = backlog.len();
            while let Some(work) = queue.try_take() {
                backlog.push(work);
            }
            if backlog.len() != before {
                backlog.sort_by_key(|w| (w.attempt, w.task.id.0));
            }
            let (stopping, unshared, outstanding) = {
                let state = self.lock();
                (state.stopping, state.unshared.clone(), state.elements.len())
            };
            if stopping && !backlog.is_empty() {
                for work in backlog.drain(..) {
                    let mut o = spawn_failed(&work, unshared.as_deref().unwrap_or(""));
                    if unshared.is_some() {
                        o.status = TaskStatus::Failed;
                    } else {
                        // Never submitted: it never ran.
                        o.status = TaskStatus::NotRun;
                        o.error = None;
                    }
                    self.finish(o);
                }
            } else if !backlog.is_empty() && outstanding < processes {
                self.submit_next(&mut backlog, processes - outstanding);
                interval = POLL_MIN;
            }
            self.raise_throttle();
            let ask = last_ask.elapsed() >= interval;
            if ask {
                last_ask = Instant::now();
            }
            let changed = self.collect(ask);
            let idle = self.lock().elements.is_empty() && backlog.is_empty();
            if idle && queue.is_closed() {
                return;
            }
            interval = if changed {
                POLL_MIN
            } else {
                (interval.mul_f64(1.5)).min(POLL_MAX)
            };
            std::thread::sleep(if idle {
                Duration::from_millis(20)
            } else {
                POLL_MIN
            });
        }
    }
}

impl Backend for SlurmBackend<'_> {
    fn serve<I: Iterator<Item = Dispatch> + Send>(
        &self,
        queue: &Dispenser<I>,
        engine: &mut dyn FnMut(),
    ) {
        std::thread::scope(|scope| {
            scope.spawn(|| self.poll_loop(queue));
            engine();
        });
    }

    fn hold(&self) {
        self.lock().stopping = true;
        // Elements still queued never start; running ones finish.
        let arrays = self.arrays();
        if let Err(e) = commands::scancel_pending(&arrays)
            && !e.contains("Invalid job id")
        {
            tracing::warn!("cannot cancel the run's queued Slurm elements: {e}");
        }
    }

    fn terminate(&self) {
        {
            let mut state = self.lock();
            state.stopping = true;
            state.terminated = true;
        }
        // Pending elements are removed; running ones get SIGTERM (then SIGKILL after Slurm's
        // KillWait), which `exec-task` passes to its task's group like a local stop.
        self.cancel_all(None);
    }

    fn kill(&self) {
        {
            let mut state = self.lock();
            state.stopping = true;
            state.terminated = true;
        }
        self.cancel_all(Some("KILL"));
        self.cancel_all(None);
    }

    fn pause(&self) {
        tracing::warn!("Ctrl-Z does not pause Slurm arrays: they go on; `fg` to come back");
        crate::exec::signals::stop_self();
    }

    fn resume(&self) {}

    fn running(&self) -> usize {
        self.lock().running
    }
}

/// Whether an outcome file says its task may have died of a signal: it was stopped, a signal
/// ended it, or it exited as a shell does whose command a signal ended (128 + the signal).
fn killed(file: &OutcomeFile) -> bool {
    file.status == TaskStatus::Cancelled
        || file.status == TaskStatus::Failed
            && (file.signal.is_some() || file.exit_code.is_some_and(|c| c > 128))
}

/// What Slurm's state says about a task that died of a signal: its time limit or a cancel.
fn verdict(s: &ElementState) -> Option<(TaskStatus, String)> {
    if matches!(s.state.as_str(), "TIMEOUT" | "DEADLINE") || s.reason == "TimeLimit" {
        return Some((
            TaskStatus::TimedOut,
            "Slurm: TIMEOUT (its time limit)".to_owned(),
        ));
    }
    match s.state.as_str() {
        "CANCELLED" | "PREEMPTED" => Some((TaskStatus::Cancelled, slurm_error(s))),
        "OUT_OF_MEMORY" | "NODE_FAIL" => Some((TaskStatus::Failed, slurm_error(s))),
        _ => None,
    }
}

fn unknown_state() -> ElementState {
    ElementState {
        state: String::new(),
        reason: String::new(),
        exit: (None, None),
    }
}

/// A task status for a Slurm state.
fn status_of(state: &str) -> TaskStatus {
    match state {
        "TIMEOUT" | "DEADLINE" => TaskStatus::TimedOut,
        "CANCELLED" | "PREEMPTED" => TaskStatus::Cancelled,
        _ => TaskStatus::Failed,
    }
}

/// `Slurm: TIMEOUT (the time limit)`.
fn slurm_error(s: &ElementState) -> String {
    match s.reason.as_str() {
        "" | "None" => format!("Slurm: {}", s.state),
        reason => format!("Slurm: {} ({reason})", s.state),
    }
}

/// The outcome of an attempt that could not be started.
fn spawn_failed(work: &Work, error: &str) -> TaskOutcome {
    TaskOutcome::not_started(
        work.task.clone(),
        work.attempt,
        work.tries + 1,
        error.to_owned(),
    )
}

/// `sbatch`, tried again with back-off when it fails (a busy controller refuses submissions).
fn submit_with_retries(args: &[String], script: &str) -> Result<String, String> {
    let mut wait = SBATCH_BACKOFF;
    let mut tries = 0;
    loop {
        tries += 1;
        match commands::sbatch(args, script) {
            Ok(id) => return Ok(id),
            // A request Slurm refuses outright (a bad partition or option) fails the same
            // way every time.
            Err(e) if tries >= SBATCH_TRIES || refused(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(
                    "sbatch failed (try {tries} of {SBATCH_TRIES}), trying again in {wait:?}: {e}"
                );
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
    }
}

/// Whether an `sbatch` error is a refusal of the request rather than a passing failure.
fn refused(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    [
        "invalid partition",
        "invalid account",
        "invalid qos",
        "unrecognized option",
        "invalid option",
        "unknown option",
        "batch job submission failed: invalid",
        "requested node configuration is not available",
        "invalid job array specification",
    ]
    .iter()
    .any(|e| error.contains(e))
}

/// `word` quoted for the element's `/bin/sh` when it needs to be.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:+@%=,".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
