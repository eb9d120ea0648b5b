//! `poolrun run`: a fresh run, or a resumed one, from the lock to the final report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::{BackendChoice, OutputMode, RunArgs, RunOptions};
use crate::error::{Error, exit};
use crate::exec::slurm::SlurmPool;
use crate::exec::{Containment, Dispatch, Identity, LocalPool, SignalWatch, StopReason};
use crate::job::policy::Overlap;
use crate::job::{self, Job, Overrides};
use crate::plan::{Plan, RunInfo};
use crate::report::progress::Progress;
use crate::report::session::{self, Ending, Session};
use crate::report::stream::{OutputOrder, OutputStream};
use crate::report::{
    Holder, Observer, Recorder, ReportError, RunDir, RunLock, RunState, TaskRecord, Wait, render,
};
use signal_hook::consts::SIGINT;

/// The job-file overrides of a command line.
pub(super) fn overrides(options: &RunOptions, set: &[String]) -> Overrides {
    Overrides {
        processes: options.processes.clone(),
        timeout: options.timeout,
        run_dir: options.run_dir.clone(),
        set: set.to_vec(),
        ..Overrides::default()
    }
}

/// A fresh run.
pub(super) fn run(args: &RunArgs) -> Result<u8, Error> {
    // Before anything is made on disk: from here on a signal is noted and acted on, never the
    // default death that would leave a half-made run behind.
    let signals = SignalWatch::install()?;
    let job = Arc::new(job::load(&args.job, &overrides(&args.options, &args.set))?);
    start(&job, &signals, &args.options)
}

/// Runs `job` as a new run: waits for the job's lock if it must, then makes its run directory
/// (with the job file's copy and the input snapshot) and runs every task. The run's id and
/// start are when it started running, not when it began waiting.
pub(super) fn start(
    job: &Arc<Job>,
    signals: &SignalWatch,
    options: &RunOptions,
) -> Result<u8, Error> {
    let began = Instant::now();
    super::plan::check_size(job, options.allow_huge)?;
    let waiting = RunInfo::new(job);
    let root = RunDir::prepare_root(&waiting)?;
    let mut lock = lock(job, &root, signals, began)?;
    if let Some(signal) = signals.last() {
        return Err(Error::Interrupted {
            signal,
            when: "before the run started",
        });
    }
    // The id says when the run started running. (A `[report] dir` with `{run-id}` above the
    // run's own folder puts every run in a root of its own: that run keeps the root it locked.)
    let run = Some(RunInfo::new(job))
        .filter(|fresh| fresh.dir.parent() == Some(root.as_path()))
        .unwrap_or(waiting);
    lock.claim(&run.id)?;
    let (dir, snapshot) = session::create(&run, job)?;
    let plan = Plan::new(Arc::clone(job), run);
    execute(
        &plan,
        &dir,
        &RunState::default(),
        BTreeMap::new(),
        snapshot.as_deref(),
        options,
        signals,
        began,
    )
}

/// `poolrun: job: run ID started: 40 tasks, 4 at once, in runs/job/ID`.
fn start_line(plan: &Plan, dir: &RunDir, done_before: u64, slurm: bool) {
    let job = plan.job();
    let resumed = if done_before > 0 {
        format!(" ({done_before} already done)")
    } else {
        String::new()
    };
    let on = if slurm { " on Slurm" } else { "" };
    crate::console::line(&format!(
        "poolrun: {}: run {} started{on}: {} tasks{resumed}, {} at once, in {}",
        render::clean(&job.name),
        plan.run().id,
        plan.len(),
        job.pool.processes,
        render::shown_path(&dir.path)
    ));
}

/// `[report] keep = N`: after a run (fresh or resumed), removes the oldest runs of the job beside
/// it. Called under the job's lock.
fn prune(job: &Job, dir: &RunDir) {
    let (Some(keep), Some(root)) = (job.keep, dir.path.parent()) else {
        return;
    };
    match crate::report::prune(root, &job.name, &dir.path, keep) {
        Ok(removed) if !removed.is_empty() => tracing::info!(
            "removed {} old runs of {} ([report] keep = {keep})",
            removed.len(),
            job.name
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot prune old runs: {e}"),
    }
}

/// Takes the job's lock in the run root, per `[pool] overlap`; a signal, or the job's deadline
/// passing (counted from `began`), ends a wait for it.
pub(super) fn lock(
    job: &Job,
    root: &Path,
    signals: &SignalWatch,
    began: Instant,
) -> Result<RunLock, Error> {
    let path = RunLock::path(root, &job.name);
    let expired = || job.pool.deadline.is_some_and(|d| began.elapsed() >= d);
    let keep_waiting = || signals.last().is_none() && !expired();
    let on_wait = |holder: &Holder| {
        tracing::warn!(
            "waiting for run {} (pid {}) of job {} to end",
            holder.run_id,
            holder.pid,
            job.name
        );
    };
    let wait = match job.pool.overlap {
        Overlap::Wait => Wait::While {
            keep_waiting: &keep_waiting,
            on_wait: &on_wait,
        },
        Overlap::Skip => Wait::No,
    };
    match RunLock::acquire(&path, &wait) {
        Err(ReportError::Locked { .. }) if let Some(signal) = signals.last() => {
            Err(Error::Interrupted {
                signal,
                when: "while waiting for the job's lock",
            })
        }
        Err(ReportError::Locked { run_id, pid, .. })
            if matches!(job.pool.overlap, Overlap::Wait) && expired() =>
        {
            let deadline = job.pool.deadline.unwrap_or_default();
            Err(Error::GaveUp(format!(
                "gave up waiting for run {run_id} (pid {pid}) of job {} to end: the run's deadline ({}) passed; nothing ran",
                job.name,
                humantime::format_duration(deadline)
            )))
        }
        result => Ok(result?),
    }
}

/// Runs every task of `plan` that `state` does not record as succeeded, with `carried` (the rows
/// of those that did) written into the report in their place.
#[allow(
    clippy::too_many_arguments,
    reason = "fresh and resumed runs differ in each"
)]
pub(super) fn execute(
    plan: &Plan,
    dir: &RunDir,
    state: &RunState,
    carried: BTreeMap<u64, TaskRecord>,
    snapshot: Option<&str>,
    options: &RunOptions,
    signals: &SignalWatch,
    began: Instant,
) -> Result<u8, Error> {
    let job = plan.job();
    let slurm = match options.backend {
        Some(BackendChoice::Slurm) => true,
        Some(BackendChoice::Local) => false,
        None => job.slurm.is_some(),
    };
    // Containment is the local pool's: Slurm contains its own jobs.
    let containment = (!slurm).then(|| LocalPool::contain(plan));
    let identity = containment.as_ref().map_or_else(
        || Identity {
            token: String::new(),
            cgroup: None,
        },
        Containment::identity,
    );
    let backend = if slurm { "slurm" } else { "local" };
    let done_before = carried.len() as u64;
    let (session, journal, writer) =
        Session::begin(plan, dir, state, carried, snapshot, identity, backend)?;
    if !options.quiet {
        start_line(plan, dir, done_before, slurm);
    }
    let progress = Progress::new(plan.len(), done_before, options.quiet);
    let stream = options.output.map(|mode| {
        let order = match mode {
            OutputMode::Ordered => OutputOrder::Ordered,
            OutputMode::Completed => OutputOrder::Completed,
        };
        OutputStream::start(order, options.tag, dir.tasks_dir(), plan.id_width())
    });
    let mut observers: Vec<Arc<dyn Observer>> = vec![Arc::clone(&progress) as Arc<dyn Observer>];
    observers.extend(stream.as_ref().map(OutputStream::observer));
    let mut recorder = Recorder::new(journal, writer, observers);
    let tasks = plan
        .tasks()
        .filter(|t| !state.succeeded(&t.key))
        .map(|task| Dispatch {
            prior_attempts: state.attempts.get(&task.key).copied().unwrap_or(0),
            task,
        });
    let tasks_dir = dir.tasks_dir();
    let end = match &containment {
        Some(containment) => LocalPool {
            tasks_dir: &tasks_dir,
            began,
        }
        .run(plan, tasks, &mut recorder, signals, containment)?,
        None => SlurmPool {
            run_dir: &dir.path,
            began,
        }
        .run(plan, tasks, &mut recorder, signals)?,
    };
    // Its tasks are done and swept: the run's cgroups go while the report is written, and are
    // gone before this returns.
    let _released = containment.map(Containment::release);
    progress.finish();
    if let Some(e) = end.sink_error {
        return Err(e.into());
    }
    let Recorder {
        journal, writer, ..
    } = recorder;
    // A signal that arrives while the report is written (a huge plan's `not_run` rows) stops
    // the writing; the journal holds everything, and `poolrun report` rebuilds the report.
    let before = signals.count();
    let ending = Ending {
        stop: end.stop,
        swept: end.swept,
    };
    let finished = match session.finish(journal, writer, ending, &|| signals.count() > before) {
        Err(e @ ReportError::Interrupted { .. }) => {
            crate::console::line(&format!("poolrun: {e}"));
            return Ok(exit::signal(signals.last().unwrap_or(SIGINT)));
        }
        finished => finished?,
    };
    if let Some(stream) = stream {
        stream.finish(plan.len());
    }
    prune(job, dir);
    let summary = &finished.summary;
    let stop = end.stop;
    let succeeded = summary.all_succeeded() && stop.is_none();
    if !options.quiet || !succeeded {
        crate::console::line(&render::summary_line(
            &job.name,
            summary,
            finished.run.stop_reason.as_deref(),
        ));
    }
    if !succeeded && !options.quiet {
        for line in render::next_steps(&dir.path, Some(&job.origin.path)) {
            crate::console::line(&line);
        }
    }
    Ok(match stop {
        Some(StopReason::Signal(signal)) => exit::signal(signal),
        _ if summary.all_succeeded() => exit::SUCCESS,
        _ => exit::TASKS_FAILED,
    })
}
