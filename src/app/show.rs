//! `poolrun validate` and `poolrun report`, which rebuilds the report of a run whose engine died.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::run::{host, job_record};
use crate::error::{Error, exit};
use crate::exec::tail;
use crate::job::{self, Job, Overrides};
use crate::plan::{Plan, RunInfo};
use crate::report::{
    self, Provenance, ReportError, ReportWriter, RunDir, RunLock, RunRecord, RunState, RunStatus,
    TaskRecord, render,
};

pub(super) fn validate(paths: &[PathBuf], set: &[String]) -> u8 {
    let mut code = exit::SUCCESS;
    let overrides = Overrides {
        set: set.to_vec(),
        ..Overrides::default()
    };
    for path in paths {
        if let Err(e) = job::load(path, &overrides) {
            Error::from(e).print();
            code = exit::USAGE;
        }
    }
    code
}

pub(super) fn report(dir: &Path, json: bool, output: bool) -> Result<u8, Error> {
    if !dir.join("report.json").exists() && dir.join("journal.jsonl").exists() {
        rebuild(dir)?;
    }
    let report = report::read_report(dir)?;
    let mut out = io::stdout().lock();
    let written = if json {
        std::fs::read(dir.join("report.json")).and_then(|bytes| out.write_all(&bytes))
    } else if output {
        report
            .tasks
            .iter()
            .filter_map(|t| t.stdout.as_ref())
            .try_for_each(|file| {
                let mut f = std::fs::File::open(dir.join(file))?;
                io::copy(&mut f, &mut out).map(drop)
            })
    } else {
        out.write_all(render::report_text(&report).as_bytes())
    };
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(ReportError::io("print the report from", dir)(e).into()),
    }
    Ok(if report.summary.all_succeeded() {
        exit::SUCCESS
    } else {
        exit::TASKS_FAILED
    })
}

/// Writes `report.json` for a run whose engine died before writing it: the report is a function
/// of the plan (from the run's copy of the job file) and the journal. Tasks that started and
/// never finished are `cancelled`, tasks never started `not_run`, and the run `interrupted`.
fn rebuild(path: &Path) -> Result<(), Error> {
    let state = RunState::read(path)?;
    let (Some(first), Some(last)) = (&state.first, &state.last) else {
        return Err(Error::Usage(format!(
            "{}: the journal records no run",
            path.display()
        )));
    };
    let original = Path::new(&last.job_file);
    let base_dir = last
        .base_dir
        .as_deref()
        .map_or_else(|| original.parent().unwrap_or(Path::new("/")), Path::new);
    let provenance = last.provenance.as_deref();
    let dir = RunDir {
        path: std::fs::canonicalize(path).map_err(ReportError::unreadable(path))?,
    };
    let job = Arc::new(load_run_job(
        &dir,
        original,
        base_dir,
        provenance,
        &Overrides::default(),
    )?);
    let root = path.parent().unwrap_or(Path::new("/"));
    if let Some(holder) = RunLock::holder(&RunLock::path(root, &job.name))
        && holder.run_id == first.run_id
    {
        // Still running: its report is written when it ends.
        let path = RunLock::path(root, &job.name);
        return Err(ReportError::Locked {
            path,
            run_id: holder.run_id,
            pid: holder.pid,
        }
        .into());
    }
    tracing::info!(
        "rebuilding the report of {} from its journal",
        path.display()
    );
    let plan = Plan::new(
        Arc::clone(&job),
        RunInfo {
            id: first.run_id.clone(),
            dir: dir.path.clone(),
        },
    );
    let tasks_dir = dir.tasks_dir();
    let mut writer = ReportWriter::create(
        &dir.report_path(),
        &job_record(&job),
        std::collections::BTreeMap::new(),
    )?;
    for task in plan.tasks() {
        let file = |ext: &str| tasks_dir.join(format!("{}.{ext}", task.id));
        let finished = state.finished.get(&task.key);
        // An attempt under way when the engine died is newer than any finished one (a killed
        // `--resume` leaves attempt 2 open after attempt 1's outcome): it is the task's state.
        let open = state
            .open
            .get(&task.key)
            .filter(|s| finished.is_none_or(|f| s.attempt > f.attempt));
        let row = if let Some(s) = open {
            let stdout = std::fs::metadata(file("out")).map_or(0, |m| m.len());
            TaskRecord::lost(&task, s, stdout, tail(&file("err")).unwrap_or_default())
        } else if let Some(f) = finished {
            TaskRecord::finished(
                &task,
                f,
                tail(&file("err")).map(|(_, t)| t).unwrap_or_default(),
            )
        } else {
            TaskRecord::not_run(&task)
        };
        writer.push(row)?;
    }
    let status = state
        .ended
        .as_ref()
        .map_or(RunStatus::Interrupted, |e| e.status);
    let finished_at = state.last_at.clone().unwrap_or_else(|| first.at.clone());
    let record = RunRecord {
        id: first.run_id.clone(),
        dir: dir.path.display().to_string(),
        host: host(),
        poolrun_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: first.at.clone(),
        finished_at,
        processes: last.processes,
        status,
        leaked: state.ended.as_ref().map_or(0, |e| e.leaked),
        provenance: provenance.cloned(),
    };
    writer.finish(&plan, &record, state.seconds(), &|| false)?;
    Ok(())
}

/// The job a run ran: its copy of the job file, as if still at `original` with relative paths
/// from `base_dir`, with the run's `--set` values and its input snapshot (`extra` adds
/// command-line settings that do not change what runs).
pub(super) fn load_run_job(
    dir: &RunDir,
    original: &Path,
    base_dir: &Path,
    provenance: Option<&Provenance>,
    extra: &Overrides,
) -> Result<Job, Error> {
    let snapshot = match provenance.and_then(|p| p.inputs.first()) {
        Some(input) => Some(Arc::new(dir.read_snapshot(&input.sha256)?)),
        None => None,
    };
    let overrides = Overrides {
        set: provenance.map(|p| p.set.clone()).unwrap_or_default(),
        snapshot,
        ..extra.clone()
    };
    Ok(job::load_copy(
        &dir.job_copy_path(),
        original,
        base_dir,
        &overrides,
    )?)
}
