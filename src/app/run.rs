//! `poolrun run`: a fresh run, or a resumed one, from the lock to the final report.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::RunArgs;
use crate::error::{Error, exit};
use crate::exec::{Dispatch, Interrupt, LocalPool, StopReason, TaskOutcome, TaskStatus};
use crate::job::policy::Overlap;
use crate::job::{self, Job, Overrides};
use crate::plan::{Plan, RunInfo};
use crate::report::journal::{Record, RunFinished, RunStarted};
use crate::report::model::timestamp;
use crate::report::{
    JobRecord, Journal, Recorder, ReportError, ReportWriter, RunDir, RunLock, RunRecord, RunState,
    RunStatus, TaskRecord, render,
};
use signal_hook::consts::SIGINT;

/// How far dispatch may run ahead of the lowest unfinished task, per process, and at least.
const WINDOW_PER_PROCESS: u64 = 64;
const MIN_WINDOW: u64 = 1024;

/// Failure lines logged before the rest are left to the report, so cron mail stays short.
const MAX_FAILURE_LINES: u64 = 20;

pub(super) fn run(args: &RunArgs) -> Result<u8, Error> {
    let overrides = Overrides {
        processes: args.processes.clone(),
        timeout: args.timeout,
        run_dir: args.run_dir.clone(),
    };
    let job = Arc::new(job::load(&args.job, &overrides)?);
    super::plan::check_size(&job, args.allow_huge)?;
    if let Some(target) = &args.resume {
        return super::resume::resume(&job, target, args);
    }
    let run = RunInfo::new(&job);
    let _lock = lock(&job, &run.dir, &run.id)?;
    let dir = RunDir::create(&run, &job)?;
    let plan = Plan::new(job, run);
    execute(&plan, &dir, &RunState::default(), BTreeMap::new(), args)
}

/// Takes the job's lock in the run root (the run directory's parent), per `[pool] overlap`.
pub(super) fn lock(job: &Job, run_dir: &Path, run_id: &str) -> Result<RunLock, Error> {
    let root = run_dir.parent().unwrap_or(Path::new("/"));
    let path = RunLock::path(root, &job.name);
    let wait = job.pool.overlap == Overlap::Wait;
    let lock = RunLock::acquire(&path, run_id, wait, |holder| {
        tracing::warn!(
            "waiting for run {} (pid {}) of job {} to end",
            holder.run_id,
            holder.pid,
            job.name
        );
    })?;
    Ok(lock)
}

/// Runs every task of `plan` that `state` does not record as succeeded, with `carried` (the rows
/// of those that did) written into the report in their place.
pub(super) fn execute(
    plan: &Plan,
    dir: &RunDir,
    state: &RunState,
    carried: BTreeMap<u64, TaskRecord>,
    args: &RunArgs,
) -> Result<u8, Error> {
    let job = plan.job();
    let processes = job.pool.processes.get();
    let started_at = SystemTime::now();
    let clock = Instant::now();
    let resumed = state.first.is_some();
    let mut journal = Journal::open(&dir.journal_path(), resumed)?;
    journal.write(&Record::RunStarted(RunStarted {
        at: timestamp(started_at),
        run_id: plan.run().id.clone(),
        job_file: job.source.absolute.display().to_string(),
        job_sha256: job.source.sha256.clone(),
        tasks: plan.len(),
        processes,
        resumed,
        pid: std::process::id(),
    }))?;
    let done_before = carried.len() as u64;
    let writer = ReportWriter::create(&dir.report_path(), &job_record(job), carried)?;
    tracing::info!(
        "{}: {} tasks, {processes} at once, run directory {}",
        job.name,
        plan.len(),
        dir.path.display()
    );

    let progress = progress_bar(plan.len(), args.quiet);
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
        window: (WINDOW_PER_PROCESS * processes as u64).max(MIN_WINDOW),
    };
    let (stop, sink_error) = pool.run(plan, tasks, &mut recorder)?;
    let interrupt = Interrupt::watch()?;
    progress.finish_and_clear();
    if let Some(e) = sink_error {
        return Err(e.into());
    }
    let status = match stop {
        None => RunStatus::Completed,
        Some(StopReason::Signal(_)) => RunStatus::Interrupted,
        Some(_) => RunStatus::Halted,
    };
    let finished_at = SystemTime::now();
    let Recorder {
        mut journal,
        writer,
        ..
    } = recorder;
    journal.write(&Record::RunFinished(RunFinished {
        at: timestamp(finished_at),
        status,
    }))?;
    let record = RunRecord {
        id: plan.run().id.clone(),
        dir: dir.path.display().to_string(),
        host: host(),
        poolrun_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: state
            .first
            .as_ref()
            .map_or_else(|| timestamp(started_at), |f| f.at.clone()),
        finished_at: timestamp(finished_at),
        processes,
        status,
    };
    let summary = match writer.finish(plan, &record, clock.elapsed().as_secs_f64(), &|| {
        interrupt.signal().is_some()
    }) {
        Err(e @ ReportError::Interrupted { .. }) => {
            crate::console::line(&format!("poolrun: {e}"));
            return Ok(exit::signal(interrupt.signal().unwrap_or(SIGINT)));
        }
        summary => summary?,
    };
    if !args.quiet || !summary.all_succeeded() || stop.is_some() {
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
        file: job.source.absolute.display().to_string(),
        sha256: job.source.sha256.clone(),
    }
}

fn progress_bar(tasks: u64, quiet: bool) -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal, so cron mail and logs stay clean.
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(tasks)
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
