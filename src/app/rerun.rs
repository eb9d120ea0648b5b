//! `poolrun rerun RUN_DIR`: a past run's job, `--set` values and input snapshot, run again as a
//! new run.

use std::path::Path;
use std::sync::Arc;

use crate::app::run;
use crate::app::show::load_run_job;
use crate::cli::RerunArgs;
use crate::error::Error;
use crate::exec::SignalWatch;
use crate::report::{ReportError, RunDir, RunState};

pub(super) fn rerun(args: &RerunArgs) -> Result<u8, Error> {
    let signals = SignalWatch::install()?;
    let path = std::fs::canonicalize(&args.past).map_err(ReportError::unreadable(&args.past))?;
    let dir = super::resume::open_run(RunDir { path })?;
    let state = RunState::read(&dir)?;
    let Some(first) = &state.first else {
        return Err(Error::Usage(format!(
            "{}: the journal records no run",
            dir.path.display()
        )));
    };
    let original = Path::new(&first.job_file);
    let base_dir = first
        .base_dir
        .as_deref()
        .map_or_else(|| original.parent().unwrap_or(Path::new("/")), Path::new);
    let extra = run::overrides(&args.run, &[]);
    let job = load_run_job(
        &dir,
        original,
        base_dir,
        first.provenance.as_deref(),
        &extra,
    )?;
    tracing::info!("rerunning {} (run {}) as a new run", job.name, first.run_id);
    run::start(&Arc::new(job), &signals, &args.run)
}
