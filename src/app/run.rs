//! `poolrun run`: a fresh run, or a resumed one, from the lock to the final report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{RunArgs, RunOptions};
use crate::error::{Error, exit};
use crate::exec::{Dispatch, LocalPool, PoolEnd, SignalWatch, StopReason, TaskOutcome, TaskStatus};
use crate::job::policy::Overlap;
use crate::job::{self, Job, Overrides};
use crate::plan::{Plan, RunInfo};
use crate::report::Provenance;
use crate::report::journal::{Record, RunFinished, RunStarted};
use crate::report::model::timestamp;
use crate::report::{
    Holder, JobRecord, Journal, Recorder, ReportError, ReportWriter, RunDir, RunLock, RunRecord,
    RunState, RunStatus, TaskRecord, Wait, render,
};
use signal_hook::consts::SIGINT;

/// Failure lines logged before the rest are left to the report, so cron mail stays short.
const MAX_FAILURE_LINES: u64 = 20;

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
    start(job, &signals, &args.options)
}

/// Runs `job` as a new run: its run directory, with the job file's copy and the input
/// snapshot, then every task.
pub(super) fn start(
    job: Arc<Job>,
    signals: &SignalWatch,
    options: &RunOptions,
) -> Result<u8, Error> {
    super::plan::check_size(&job, options.allow_huge)?;
    let run = RunInfo::new(&job);
    let root = RunDir::prepare_root(&run)?;
    let _lock = lock(&job, &root, &run.id, signals)?;
    if let Some(signal) = signals.last() {
        return Err(Error::Interrupted {
            signal,
            when: "before the run started",
        });
    }
    let dir = RunDir::create(&run, &job)?;
    let snapshot = match job.source.as_ref().filter(|s| s.is_snapshotted()) {
        Some(source) => {
            let list = source.list().expect("snapshotted sources are lists");
            Some(dir.write_snapshot(list.items.bytes())?)
        }
        None => None,
    };
    let plan = Plan::new(job, run);
    execute(
        &plan,
        &dir,
        &RunState::default(),
        BTreeMap::new(),
        snapshot.as_deref(),
        options,
        signals,
    )
}

/// Takes the job's lock in the run root, per `[pool] overlap`; a signal ends a wait for it.
pub(super) fn lock(
    job: &Job,
    root: &Path,
    run_id: &str,
    signals: &SignalWatch,
) -> Result<RunLock, Error> {
    let path = RunLock::path(root, &job.name);
    let keep_waiting = || signals.last().is_none();
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
    match RunLock::acquire(&path, run_id, &wait) {
        Err(ReportError::Locked { .. }) if let Some(signal) = signals.last() => {
            Err(Error::Interrupted {
                signal,
                when: "while waiting for the job's lock",
            })
        }
        result => Ok(result?),
    }
}

/// Runs every task of `plan` that `state` does not record as succeeded, with `carried` (the rows
/// of those that did) written into the report in their place.
pub(super) fn execute(
    plan: &Plan,
    dir: &RunDir,
    state: &RunState,
    carried: BTreeMap<u64, TaskRecord>,
    snapshot: Option<&str>,
    options: &RunOptions,
    signals: &SignalWatch,
) -> Result<u8, Error> {
    let job = plan.job();
    let session = Session {
        started_at: SystemTime::now(),
        clock: Instant::now(),
        provenance: Provenance::collect(job, snapshot),
    };
    let resumed = state.first.is_some();
    let containment = LocalPool::contain(plan);
    let identity = containment.identity();
    let mut journal = Journal::open(&dir.journal_path(), resumed)?;
    journal.write(&Record::RunStarted(RunStarted {
        at: timestamp(session.started_at),
        run_id: plan.run().id.clone(),
        job: Some(job.name.clone()),
        job_file: job.origin.absolute.display().to_string(),
        base_dir: Some(job.base_dir.display().to_string()),
        job_sha256: job.origin.sha256.clone(),
        tasks: plan.len(),
        processes: job.pool.processes.get(),
        resumed,
        pid: std::process::id(),
        token: Some(identity.token),
        cgroup: identity.cgroup.map(|c| c.display().to_string()),
        provenance: Some(Box::new(session.provenance.clone())),
    }))?;
    let done_before = carried.len() as u64;
    let writer = ReportWriter::create(&dir.report_path(), &job_record(job), carried)?;
    tracing::info!(
        "{}: {} tasks, {} at once, run directory {}",
        job.name,
        plan.len(),
        job.pool.processes,
        dir.path.display()
    );
    let progress = progress_bar(plan.len(), options.quiet);
    progress.inc(done_before);
    let mut failures_logged = 0;
    let mut recorder = Recorder::new(journal, writer, |outcome: &TaskOutcome, retry: bool| {
        progress.suspend(|| log_attempt(outcome, retry, &mut failures_logged));
        if !retry {
            progress.inc(1);
        }
    });
    let tasks = plan
        .tasks()
        .filter(|t| !state.succeeded(&t.key))
        .map(|task| Dispatch {
            prior_attempts: state.attempts.get(&task.key).copied().unwrap_or(0),
            task,
        });
    let tasks_dir = dir.tasks_dir();
    let pool = LocalPool {
        tasks_dir: &tasks_dir,
    };
    let end = pool.run(plan, tasks, &mut recorder, signals, &containment)?;
    progress.finish_and_clear();
    if let Some(e) = end.sink_error {
        return Err(e.into());
    }
    let Recorder {
        journal, writer, ..
    } = recorder;
    let wall_seconds = state.seconds() + session.clock.elapsed().as_secs_f64();
    let end = PoolEnd {
        sink_error: None,
        ..end
    };
    finish(
        plan,
        dir,
        state,
        (journal, writer),
        &end,
        &session,
        wall_seconds,
        options,
        signals,
    )
}

/// When this session of a run began, and on what.
struct Session {
    started_at: SystemTime,
    clock: Instant,
    provenance: Provenance,
}

/// Writes the report, then records in the journal that the run ended, then says how it went.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each argument a different part"
)]
fn finish(
    plan: &Plan,
    dir: &RunDir,
    state: &RunState,
    (mut journal, writer): (Journal, ReportWriter),
    end: &PoolEnd<ReportError>,
    session: &Session,
    wall_seconds: f64,
    options: &RunOptions,
    signals: &SignalWatch,
) -> Result<u8, Error> {
    let job = plan.job();
    let stop = end.stop;
    let status = match stop {
        None => RunStatus::Completed,
        Some(StopReason::Signal(_)) => RunStatus::Interrupted,
        Some(_) => RunStatus::Halted,
    };
    let finished_at = SystemTime::now();
    let record = RunRecord {
        id: plan.run().id.clone(),
        dir: dir.path.display().to_string(),
        host: host(),
        poolrun_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: state
            .first
            .as_ref()
            .map_or_else(|| timestamp(session.started_at), |f| f.at.clone()),
        finished_at: timestamp(finished_at),
        processes: job.pool.processes.get(),
        status,
        leaked: end.swept,
        provenance: Some(session.provenance.clone()),
    };
    // A signal that arrives while the report is written (a huge plan's `not_run` rows) stops
    // the writing; the journal holds everything, and `poolrun report` rebuilds the report.
    let before = signals.count();
    let summary = match writer.finish(plan, &record, wall_seconds, &|| signals.count() > before) {
        Err(e @ ReportError::Interrupted { .. }) => {
            crate::console::line(&format!("poolrun: {e}"));
            return Ok(exit::signal(signals.last().unwrap_or(SIGINT)));
        }
        summary => summary?,
    };
    // Only now: `run_finished` says the report is written.
    journal.write(&Record::RunFinished(RunFinished {
        at: timestamp(finished_at),
        status,
        leaked: end.swept,
    }))?;
    if !options.quiet || !summary.all_succeeded() || stop.is_some() {
        crate::console::line(&render::summary_line(
            &job.name,
            &summary,
            &dir.report_path(),
        ));
    }
    Ok(match stop {
        Some(StopReason::Signal(signal)) => exit::signal(signal),
        _ if summary.all_succeeded() => exit::SUCCESS,
        _ => exit::TASKS_FAILED,
    })
}

/// The machine's name, for the report.
pub(super) fn host() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn job_record(job: &Job) -> JobRecord {
    JobRecord {
        name: job.name.clone(),
        file: job.origin.absolute.display().to_string(),
        sha256: job.origin.sha256.clone(),
        set: job.set.clone(),
    }
}

fn progress_bar(tasks: u64, quiet: bool) -> ProgressBar {
    // Nothing is drawn when stderr is not a terminal, so cron mail and logs stay clean; on one,
    // the bar goes through the console's queue and never blocks the engine.
    let term = crate::console::QueuedTerm::stderr().filter(|_| !quiet);
    let bar = match term {
        Some(term) => ProgressBar::with_draw_target(
            Some(tasks),
            ProgressDrawTarget::term_like_with_hz(Box::new(term), 20),
        ),
        None => ProgressBar::hidden(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} tasks {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn log_attempt(o: &TaskOutcome, retry: bool, failures_logged: &mut u64) {
    let id = o.task.id;
    let error = o.error.as_deref().unwrap_or("");
    match o.status {
        TaskStatus::Succeeded => tracing::info!("task {id} succeeded in {:?}", o.duration),
        _ if retry => tracing::info!(
            "task {id} attempt {} {}: {error}; retrying",
            o.attempt,
            o.status.as_str()
        ),
        status => {
            *failures_logged += 1;
            if *failures_logged <= MAX_FAILURE_LINES {
                tracing::warn!("task {id} {}: {error}", status.as_str());
            } else if *failures_logged == MAX_FAILURE_LINES + 1 {
                tracing::warn!("more tasks did not succeed; `poolrun report` lists them all");
            }
        }
    }
}
