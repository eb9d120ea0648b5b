//! `poolrun exec-task RUN_DIR TASK_ID --attempt N` (hidden): what each element of a Slurm array
//! runs. It runs one attempt of one task of the run as the local pool would (its process group,
//! timeout, kill sequence and output files) and writes the attempt's outcome file, which the
//! engine folds into the run. Retries, halts and the deadline are the engine's, not the
//! element's. When it cannot run the task at all, the outcome file says why (`spawn_failed`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, chain, exit};
use crate::exec::slurm::outcome::{ElementSink, OutcomeFile};
use crate::exec::{Dispatch, LocalPool, SignalWatch, TaskStatus};
use crate::job::Overrides;
use crate::job::policy::Halt;
use crate::plan::{Plan, RunInfo, TaskId};
use crate::report::{ReportError, RunDir, RunState};

pub(super) fn exec_task(
    run_dir: &Path,
    id: u64,
    attempt: u32,
    timeout: Option<Duration>,
) -> Result<u8, Error> {
    let signals = SignalWatch::install()?;
    let path = std::fs::canonicalize(run_dir).map_err(ReportError::unreadable(run_dir))?;
    let dir = super::resume::open_run(RunDir { path })?;
    let state = RunState::read(&dir)?;
    let Some(last) = state.last.clone() else {
        return Err(Error::Usage(format!(
            "{}: the journal records no run",
            dir.path.display()
        )));
    };
    // Known before the job is loaded: where the outcome goes, so a failure below is one.
    let width = last.tasks.saturating_sub(1).to_string().len();
    let outcome_path = dir
        .tasks_dir()
        .join(TaskId(id).output_file(width, &format!("{attempt}.outcome.json")));
    let slurm_job_id = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(array), Ok(index)) => Some(format!("{array}_{index}")),
        _ => None,
    };
    let result = run(
        &dir,
        &state,
        id,
        attempt,
        timeout,
        &signals,
        &outcome_path,
        slurm_job_id.clone(),
    );
    if let Err(e) = &result
        && !outcome_path.exists()
    {
        let message = format!("poolrun exec-task could not run the task: {}", chain(e));
        let _ = cannot_run(attempt, message, slurm_job_id).write(&outcome_path);
    }
    result
}

#[allow(clippy::too_many_arguments, reason = "one call site")]
fn run(
    dir: &RunDir,
    state: &RunState,
    id: u64,
    attempt: u32,
    timeout: Option<Duration>,
    signals: &SignalWatch,
    outcome_path: &Path,
    slurm_job_id: Option<String>,
) -> Result<u8, Error> {
    let last = state.last.as_ref().expect("checked by the caller");
    let mut job = super::show::run_job(dir, Some(last), &Overrides::default())?;
    // One attempt, now: whether another follows, and when the run stops, the engine decides.
    job.pool.retry.retries = 0;
    job.pool.halt = Halt::Never;
    job.pool.deadline = None;
    job.pool.processes = std::num::NonZeroUsize::MIN;
    if timeout.is_some() {
        job.pool.timeout = timeout;
    }
    let plan = Plan::new(
        Arc::new(job),
        RunInfo {
            id: last.run_id.clone(),
            dir: dir.path.clone(),
        },
    );
    if id >= plan.len() {
        return Err(Error::Usage(format!(
            "the run in {} has no task {id}: its tasks are 0 to {}",
            dir.path.display(),
            plan.len().saturating_sub(1)
        )));
    }
    let task = plan.task(TaskId(id));
    let tasks_dir = dir.tasks_dir();
    let mut sink = ElementSink {
        path: PathBuf::from(outcome_path),
        slurm_job_id,
        status: None,
    };
    let containment = LocalPool::contain(&plan);
    let pool = LocalPool {
        tasks_dir: &tasks_dir,
        began: Instant::now(),
    };
    let task = Dispatch {
        task,
        prior_attempts: attempt.saturating_sub(1),
    };
    let end = pool.run(
        &plan,
        std::iter::once(task),
        &mut sink,
        signals,
        &containment,
    )?;
    if let Some(e) = end.sink_error {
        return Err(ReportError::io("write the outcome file", &sink.path)(e).into());
    }
    Ok(match sink.status {
        Some(TaskStatus::Succeeded) => exit::SUCCESS,
        _ => exit::TASKS_FAILED,
    })
}

/// The outcome file of an attempt that could not be run, saying why.
fn cannot_run(attempt: u32, error: String, slurm_job_id: Option<String>) -> OutcomeFile {
    let now = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    OutcomeFile {
        attempt,
        status: TaskStatus::SpawnFailed,
        exit_code: None,
        signal: None,
        started_at_ms: now,
        finished_at_ms: now,
        duration_ms: 0,
        terminated_at_ms: None,
        has_output: false,
        stdout_bytes: 0,
        stdout_sha256: None,
        stderr_bytes: 0,
        stderr_tail: String::new(),
        leaked: 0,
        error: Some(error),
        slurm_job_id,
    }
}
