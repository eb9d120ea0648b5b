//! An array element's outcome file: what `poolrun exec-task` writes when its attempt ends, and
//! what the engine's Slurm backend folds into the run. It is written under a temporary name and
//! renamed into place, so the backend never reads half of one: its existence is the outcome.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::exec::{TaskOutcome, TaskStatus};
use crate::plan::Task;

/// The outcome of one attempt, as a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeFile {
    /// The attempt, from 1.
    pub attempt: u32,
    /// How it ended.
    pub status: TaskStatus,
    /// The exit code.
    pub exit_code: Option<i32>,
    /// The signal.
    pub signal: Option<i32>,
    /// Milliseconds since the epoch.
    pub started_at_ms: u64,
    /// Milliseconds since the epoch.
    pub finished_at_ms: u64,
    /// How long it ran.
    pub duration_ms: u64,
    /// When the timeout's SIGTERM went out, ms since the epoch.
    pub terminated_at_ms: Option<u64>,
    /// Whether the output files exist.
    pub has_output: bool,
    /// Bytes of stdout.
    pub stdout_bytes: u64,
    /// SHA-256 of stdout.
    pub stdout_sha256: Option<String>,
    /// Bytes of stderr.
    pub stderr_bytes: u64,
    /// The end of stderr.
    pub stderr_tail: String,
    /// Processes left running, killed.
    pub leaked: u32,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// `<array job id>_<index>`.
    pub slurm_job_id: Option<String>,
}

fn ms(at: SystemTime) -> u64 {
    u64::try_from(
        at.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0)
}

fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl OutcomeFile {
    /// The file of `o`.
    pub fn of(o: &TaskOutcome) -> Self {
        Self {
            attempt: o.attempt,
            status: o.status,
            exit_code: o.exit_code,
            signal: o.signal,
            started_at_ms: ms(o.started_at),
            finished_at_ms: ms(o.finished_at),
            duration_ms: u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX),
            terminated_at_ms: o.terminated_at.map(ms),
            has_output: o.has_output,
            stdout_bytes: o.stdout_bytes,
            stdout_sha256: o.stdout_sha256.clone(),
            stderr_bytes: o.stderr_bytes,
            stderr_tail: o.stderr_tail.clone(),
            leaked: o.leaked,
            error: o.error.clone(),
            slurm_job_id: o.slurm_job_id.clone(),
        }
    }

    /// The outcome of `task` it records; `tries` is the attempts made in this run.
    pub fn into_outcome(self, task: Task, tries: u32) -> TaskOutcome {
        TaskOutcome {
            task,
            status: self.status,
            exit_code: self.exit_code,
            signal: self.signal,
            attempt: self.attempt,
            tries,
            started_at: time(self.started_at_ms),
            finished_at: time(self.finished_at_ms),
            duration: Duration::from_millis(self.duration_ms),
            terminated_at: self.terminated_at_ms.map(time),
            has_output: self.has_output,
            stdout_bytes: self.stdout_bytes,
            stdout_sha256: self.stdout_sha256,
            stderr_bytes: self.stderr_bytes,
            stderr_tail: self.stderr_tail,
            leaked: self.leaked,
            error: self.error,
            slurm_job_id: self.slurm_job_id,
        }
    }

    /// Where attempt `attempt` of `task` writes its outcome: `tasks/0007.2.outcome.json`.
    pub fn path(tasks_dir: &Path, task: &Task, attempt: u32) -> PathBuf {
        tasks_dir.join(task.output_file(&format!("{attempt}.outcome.json")))
    }

    /// Writes it at `path`: a new file under a temporary name, synced, renamed into place.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let temp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp)?;
        let mut bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    }

    /// Reads the file at `path`: `None` while there is none.
    pub fn read(path: &Path) -> std::io::Result<Option<Self>> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The sink of `poolrun exec-task`: the attempt's outcome goes to its outcome file (the run's
/// journal and report are the engine's).
pub struct ElementSink {
    /// Where the outcome goes.
    pub path: PathBuf,
    /// `<array job id>_<index>`, from Slurm's environment.
    pub slurm_job_id: Option<String>,
    /// The outcome written, if one was.
    pub status: Option<TaskStatus>,
}

impl crate::exec::Sink for ElementSink {
    type Error = std::io::Error;

    fn started(&mut self, _: &crate::exec::Started) -> std::io::Result<()> {
        Ok(())
    }

    fn attempt_finished(&mut self, _: &TaskOutcome, _: bool) -> std::io::Result<()> {
        Ok(())
    }

    fn task_done(&mut self, mut outcome: TaskOutcome) -> std::io::Result<()> {
        outcome.slurm_job_id.clone_from(&self.slurm_job_id);
        OutcomeFile::of(&outcome).write(&self.path)?;
        self.status = Some(outcome.status);
        Ok(())
    }

    fn commit(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
