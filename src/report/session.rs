//! A run session: the one place that makes a run directory, starts recording a run into it
//! (fresh or resumed), builds report rows from its journal (for `--resume`, for a report an
//! engine died before writing, and for a look at a run still going) and finishes the run.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::time::{Instant, SystemTime};

use crate::exec::{Identity, StopReason, TaskStatus, tail};
use crate::job::Job;
use crate::plan::{Plan, RunInfo, Task};
use crate::report::journal::{Record, RunFinished, RunStarted};
use crate::report::model::timestamp;
use crate::report::{
    JobRecord, Journal, Provenance, ReportError, ReportWriter, RunDir, RunRecord, RunState,
    RunStatus, Summary, TaskRecord,
};

/// Makes the run directory of a fresh run, with the job file's copy and, for `[lines]` and
/// `[glob]`, the input snapshot; returns it and the snapshot's SHA-256.
pub fn create(run: &RunInfo, job: &Job) -> Result<(RunDir, Option<String>), ReportError> {
    let dir = RunDir::create(run, job)?;
    let snapshot = match job.source.as_ref().filter(|s| s.is_snapshotted()) {
        Some(source) => {
            let list = source.list().expect("snapshotted sources are lists");
            Some(dir.write_snapshot(list.items.bytes())?)
        }
        None => None,
    };
    Ok((dir, snapshot))
}

/// A run being recorded: its directory, what the journal said before this session, and when
/// and on what this session began.
pub struct Session<'a> {
    plan: &'a Plan,
    /// The run directory.
    pub dir: &'a RunDir,
    prior: &'a RunState,
    backend: &'static str,
    started_at: SystemTime,
    clock: Instant,
    provenance: Provenance,
}

/// How the pool's run ended, for the report.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    /// Why the run stopped early.
    pub stop: Option<StopReason>,
    /// Processes the end-of-run sweep killed.
    pub swept: u32,
}

/// A finished run's report.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The run record.
    pub run: RunRecord,
    /// Its counts.
    pub summary: Summary,
}

impl<'a> Session<'a> {
    /// Starts recording a session of `plan` in `dir`: `run_started` in the journal (a new one,
    /// or appended to a resumed run's) and the report, into which `carried` (rows of tasks that
    /// already succeeded) go in their place.
    pub fn begin(
        plan: &'a Plan,
        dir: &'a RunDir,
        prior: &'a RunState,
        carried: BTreeMap<u64, TaskRecord>,
        snapshot: Option<&str>,
        identity: Identity,
        backend: &'static str,
    ) -> Result<(Self, Journal, ReportWriter), ReportError> {
        let job = plan.job();
        let session = Self {
            plan,
            dir,
            prior,
            backend,
            started_at: SystemTime::now(),
            clock: Instant::now(),
            provenance: Provenance::collect(job, snapshot),
        };
        let resumed = prior.first.is_some();
        let mut journal = Journal::open(&dir.journal_path(), resumed)?;
        journal.record(&Record::RunStarted(RunStarted {
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
            backend: Some(backend.to_owned()),
            provenance: Some(Box::new(session.provenance.clone())),
        }))?;
        let writer = ReportWriter::create(&dir.report_path(), &job_record(job), carried)?;
        Ok((session, journal, writer))
    }

    /// Seconds the run has run, over every session.
    pub fn seconds(&self) -> f64 {
        self.prior.seconds() + self.clock.elapsed().as_secs_f64()
    }

    /// Writes the report (with a `not_run` row for every task without one), then records in
    /// the journal that the run ended. `interrupted` is polled while the report is written.
    pub fn finish(
        self,
        mut journal: Journal,
        writer: ReportWriter,
        ending: Ending,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Finished, ReportError> {
        let job = self.plan.job();
        let status = match ending.stop {
            None => RunStatus::Completed,
            Some(StopReason::Signal(_)) => RunStatus::Interrupted,
            Some(_) => RunStatus::Halted,
        };
        let stop_reason = ending.stop.map(stop_reason);
        let finished_at = SystemTime::now();
        let record = RunRecord {
            id: self.plan.run().id.clone(),
            dir: self.dir.path.display().to_string(),
            host: host(),
            poolrun_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self
                .prior
                .first
                .as_ref()
                .map_or_else(|| timestamp(self.started_at), |f| f.at.clone()),
            finished_at: timestamp(finished_at),
            processes: job.pool.processes.get(),
            status,
            backend: self.backend.to_owned(),
            stop_reason: stop_reason.clone(),
            leaked: ending.swept,
            provenance: Some(self.provenance.clone()),
        };
        let summary = writer.finish(self.plan, &record, self.seconds(), interrupted)?;
        // Only now: `run_finished` says the report is written.
        journal.write(&Record::RunFinished(RunFinished {
            at: timestamp(finished_at),
            status,
            stop_reason,
            leaked: ending.swept,
        }))?;
        Ok(Finished {
            run: record,
            summary,
        })
    }
}

/// `run.stop_reason` for a stop.
pub fn stop_reason(stop: StopReason) -> String {
    match stop {
        StopReason::Signal(signal) => crate::exec::unix::signal_name(signal),
        StopReason::Halted => "halt-policy".to_owned(),
        StopReason::Deadline => "deadline".to_owned(),
        StopReason::SinkFailed => "error".to_owned(),
    }
}

/// The machine's name, for the report.
pub fn host() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `job` in the report.
pub fn job_record(job: &Job) -> JobRecord {
    JobRecord {
        name: job.name.clone(),
        file: job.origin.absolute.display().to_string(),
        sha256: job.origin.sha256.clone(),
        set: job.set.clone(),
    }
}

/// A task's report row as its run directory's journal and output files tell it. An attempt
/// that started and never finished is `running` when `live` (the run is still going), and
/// otherwise `cancelled`: the engine died under it.
pub fn journal_row(task: &Task, state: &RunState, dir: &RunDir, live: bool) -> TaskRecord {
    let file = |ext: &str| dir.tasks_dir().join(task.output_file(ext));
    let finished = state.finished.get(&task.key);
    // An attempt under way is newer than any finished one (a killed `--resume` leaves attempt
    // 2 open after attempt 1's outcome): it is the task's state.
    let open = state
        .open
        .get(&task.key)
        .filter(|s| finished.is_none_or(|f| s.attempt > f.attempt));
    if let Some(s) = open {
        let stdout = fs::metadata(file("out")).map_or(0, |m| m.len());
        let mut row = TaskRecord::lost(task, s, stdout, tail(&file("err")).unwrap_or_default());
        if live {
            row.status = TaskStatus::Running;
            row.error = None;
        }
        row
    } else if let Some(f) = finished {
        let stderr = tail(&file("err")).map(|(_, t)| t).unwrap_or_default();
        let mut row = TaskRecord::finished(task, f, stderr);
        if live && f.retry {
            // Its next attempt waits for the retry delay: not an outcome yet.
            row.status = TaskStatus::Running;
            row.error = Some(format!(
                "attempt {} {}; waiting to retry",
                f.attempt,
                f.status.as_str()
            ));
        }
        row
    } else {
        TaskRecord::not_run(task)
    }
}

/// The rows of the tasks of `plan` that already succeeded, by id: what a resumed run carries.
pub fn carried_rows(plan: &Plan, state: &RunState, dir: &RunDir) -> BTreeMap<u64, TaskRecord> {
    plan.tasks()
        .filter(|task| state.succeeded(&task.key))
        .map(|task| (task.id.0, journal_row(&task, state, dir, false)))
        .collect()
}

/// The run record of a run as its journal tells it: for a rebuilt report, and for a look at a
/// run still going (`live`).
pub fn journal_run(dir: &RunDir, state: &RunState, live: bool) -> Option<RunRecord> {
    let (first, last) = (state.first.as_ref()?, state.last.as_ref()?);
    let ended = state.ended.as_ref();
    let status = match ended {
        _ if live => RunStatus::Running,
        Some(e) => e.status,
        None => RunStatus::Interrupted,
    };
    Some(RunRecord {
        id: first.run_id.clone(),
        dir: dir.path.display().to_string(),
        host: last
            .provenance
            .as_ref()
            .map_or_else(host, |p| p.host.clone()),
        poolrun_version: last.provenance.as_ref().map_or_else(
            || env!("CARGO_PKG_VERSION").to_owned(),
            |p| p.poolrun_version.clone(),
        ),
        started_at: first.at.clone(),
        finished_at: if live {
            String::new()
        } else {
            state.last_at.clone().unwrap_or_else(|| first.at.clone())
        },
        processes: last.processes,
        status,
        backend: last.backend.clone().unwrap_or_else(|| "local".to_owned()),
        stop_reason: match ended {
            _ if live => None,
            Some(e) => e.stop_reason.clone(),
            None => Some("killed".to_owned()),
        },
        leaked: ended.map_or(0, |e| e.leaked),
        provenance: last.provenance.as_deref().cloned(),
    })
}

/// Writes `report.json` for a run whose engine died before writing it: the report is a function
/// of the plan (from the run's copy of the job file) and the journal. Tasks that started and
/// never finished are `cancelled`, tasks never started `not_run`, and the run `interrupted`.
pub fn rebuild(dir: &RunDir, plan: &Plan, state: &RunState) -> Result<Summary, ReportError> {
    tracing::info!(
        "rebuilding the report of {} from its journal",
        dir.path.display()
    );
    let record = journal_run(dir, state, false).ok_or_else(|| {
        ReportError::unreadable(dir.journal_path())(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the journal records no run",
        ))
    })?;
    // Outputs of a run of poolrun 0.2, named without padding, get their padded names first.
    relocate_outputs(plan, state, dir)?;
    let mut writer =
        ReportWriter::create(&dir.report_path(), &job_record(plan.job()), BTreeMap::new())?;
    // A run that finished meanwhile wrote the true report: never replace it.
    writer.keep_existing();
    for task in plan.tasks() {
        writer.push(journal_row(&task, state, dir, false))?;
    }
    writer.finish(plan, &record, state.seconds(), &|| false)
}

/// Folds into the journal the outcome files of attempts that a killed Slurm session left open:
/// array elements that ended after poolrun died, while nobody was watching. Each file is a
/// whole outcome (written under a temporary name and renamed), so its task is done and a
/// resumed run does not run it again. Call after the session's arrays were cancelled; returns
/// how many were folded.
pub fn fold_orphan_outcomes(
    plan: &Plan,
    state: &RunState,
    dir: &RunDir,
) -> Result<usize, ReportError> {
    use crate::exec::slurm::OutcomeFile;
    use crate::report::journal::AttemptFinished;
    let slurm = state
        .last
        .as_ref()
        .is_some_and(|s| s.backend.as_deref() == Some("slurm"));
    if !slurm || state.open.is_empty() {
        return Ok(0);
    }
    let mut journal: Option<Journal> = None;
    let mut folded = 0;
    for task in plan.tasks() {
        let Some(started) = state.open.get(&task.key).filter(|s| s.task == task.id.0) else {
            continue;
        };
        let path = OutcomeFile::path(&dir.tasks_dir(), &task, started.attempt);
        let Ok(Some(file)) = OutcomeFile::read(&path) else {
            continue;
        };
        let outcome = file.into_outcome(task, 1);
        let journal = match &mut journal {
            Some(journal) => journal,
            None => journal.insert(Journal::open(&dir.journal_path(), true)?),
        };
        journal.append(&Record::Finished(AttemptFinished::new(&outcome, false)));
        folded += 1;
    }
    if let Some(mut journal) = journal {
        journal.commit()?;
    }
    Ok(folded)
}

/// Moves task output files to their task's name in the new plan when a changed job file moved
/// the task (a new chunk size or template) or changed the width of the ids; outputs of tasks
/// that are gone from the plan go to `tasks/superseded/`. Two phases through temporary names,
/// so no move overwrites another.
pub fn relocate_outputs(plan: &Plan, state: &RunState, dir: &RunDir) -> Result<(), ReportError> {
    let tasks_dir = dir.tasks_dir();
    let mut old_ids: HashMap<&str, u64> = HashMap::new();
    for f in state.finished.values() {
        old_ids.insert(&f.key, f.task);
    }
    for s in state.open.values() {
        old_ids.insert(&s.key, s.task);
    }
    // Old id -> the new task's file name without extension.
    let mut new_names: HashMap<u64, String> = HashMap::new();
    for task in plan.tasks() {
        if let Some(&old) = old_ids.get(task.key.as_str()) {
            let name = task.output_file("");
            new_names.insert(old, name.trim_end_matches('.').to_owned());
        }
    }
    let files = output_files(&tasks_dir)?;
    let moves: Vec<_> = files
        .iter()
        .filter(|(old, stem, _)| new_names.get(old) != Some(stem))
        .collect();
    if moves.is_empty() {
        return Ok(());
    }
    let staging = tasks_dir.join(".moving");
    let superseded = tasks_dir.join("superseded");
    for folder in [&staging, &superseded] {
        fs::create_dir_all(folder).map_err(ReportError::io("create", folder))?;
    }
    let mut staged = Vec::new();
    for (old, stem, rest) in moves {
        let from = tasks_dir.join(format!("{stem}.{rest}"));
        let to = if let Some(new) = new_names.get(old) {
            let temp = staging.join(format!("{new}.{rest}"));
            staged.push(temp.clone());
            temp
        } else {
            superseded.join(format!("{stem}.{rest}"))
        };
        fs::rename(&from, &to).map_err(ReportError::io("move task output", &from))?;
    }
    for temp in staged {
        let to = tasks_dir.join(temp.file_name().expect("staged files have names"));
        fs::rename(&temp, &to).map_err(ReportError::io("move task output", &temp))?;
    }
    let _ = fs::remove_dir(&staging);
    let _ = fs::remove_dir(&superseded);
    Ok(())
}

/// `(id, stem, rest)` for every `tasks/<stem>.<rest>` file whose stem is a task id.
fn output_files(tasks_dir: &Path) -> Result<Vec<(u64, String, String)>, ReportError> {
    let entries = fs::read_dir(tasks_dir).map_err(ReportError::io("list", tasks_dir))?;
    Ok(entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (stem, rest) = name.split_once('.')?;
            Some((stem.parse().ok()?, stem.to_owned(), rest.to_owned()))
        })
        .collect())
}
