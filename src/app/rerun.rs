//! `poolrun rerun RUN_DIR`: a past run's job, `--set` values and input snapshot, run again as a
//! new run.

use std::sync::Arc;

use crate::app::run;
use crate::app::show::run_job;
use crate::cli::RerunArgs;
use crate::error::Error;
use crate::exec::SignalWatch;
use crate::report::{ReportError, RunDir, RunState};

pub(super) fn rerun(args: &RerunArgs) -> Result<u8, Error> {
    let signals = SignalWatch::install()?;
    let path = std::fs::canonicalize(&args.past).map_err(ReportError::unreadable(&args.past))?;
    let dir = super::resume::open_run(RunDir { path })?;
    let state = RunState::read(&dir)?;
    let extra = run::overrides(&args.run, &[]);
    let job = run_job(&dir, state.first.as_ref(), &extra)?;
    let first = state.first.as_ref().expect("run_job checked");
    tracing::info!("rerunning {} (run {}) as a new run", job.name, first.run_id);
    run::start(&Arc::new(job), &signals, &args.run)
}
