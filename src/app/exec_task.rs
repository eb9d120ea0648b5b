//! `poolrun exec-task RUN_DIR TASK_ID --attempt N` (hidden): what each element of a Slurm array
//! runs. It runs one attempt of one task of the run as the local pool would (its process group,
//! timeout, kill sequence and output files) and writes the attempt's outcome file, which the
//! engine folds into the run. Retries, halts and the deadline are the engine's, not the
//! element's.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, exit};
use crate::exec::slurm::outcome::{ElementSink, OutcomeFile};
use crate::exec::{Dispatch, LocalPool, SignalWatch, TaskStatus};
use crate::job::Overrides;
use crate::job::policy::Halt;
use crate::plan::{Plan, RunInfo, TaskId};
use crate::report::{ReportError, RunDir, RunState};

pub(super) fn exec_task(run_dir: &Path, id: u64, attempt: u32) -> Result<u8, Error> {
    let signals = SignalWatch::install()?;
    let path = std::fs::canonicalize(run_dir).map_err(ReportError::unreadable(run_dir))?;
    let dir = super::resume::open_run(RunDir { path })?;
    let state = RunState::read(&dir)?;
    let mut job = super::show::run_job(&dir, state.last.as_ref(), &Overrides::default())?;
    let run_id = state
        .last
        .as_ref()
        .map(|s| s.run_id.clone())
        .unwrap_or_default();
    // One attempt, now: whether another follows, and when the run stops, the engine decides.
    job.pool.retry.retries = 0;
    job.pool.halt = Halt::Never;
    job.pool.deadline = None;
    job.pool.processes = std::num::NonZeroUsize::MIN;
    let plan = Plan::new(
        Arc::new(job),
        RunInfo {
            id: run_id,
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
    let slurm_job_id = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(array), Ok(index)) => Some(format!("{array}_{index}")),
        _ => None,
    };
    let mut sink = ElementSink {
        path: OutcomeFile::path(&tasks_dir, &task, attempt),
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
        &signals,
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
