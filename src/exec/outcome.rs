//! What happened to a task.

use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::Task;

/// A task's final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Exited 0.
    Succeeded,
    /// Exited non-zero, or was killed by a signal poolrun did not send.
    Failed,
    /// Ran past the timeout and was stopped.
    TimedOut,
    /// Could not be started.
    SpawnFailed,
    /// Was running when the run was stopped.
    Cancelled,
    /// Never started.
    NotRun,
    /// An attempt is under way: only in a view of a run still going, never in a report file.
    Running,
}

impl TaskStatus {
    /// The spelling used in the report and journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::SpawnFailed => "spawn_failed",
            Self::Cancelled => "cancelled",
            Self::NotRun => "not_run",
            Self::Running => "running",
        }
    }
}

impl TaskOutcome {
    /// The outcome of attempt `attempt` of `task` that never ran (`spawn_failed`, with
    /// `error`); `tries` is the attempts made in this run, this one included.
    pub fn not_started(task: Task, attempt: u32, tries: u32, error: String) -> Self {
        let now = SystemTime::now();
        Self {
            task,
            status: TaskStatus::SpawnFailed,
            exit_code: None,
            signal: None,
            attempt,
            tries,
            started_at: now,
            finished_at: now,
            duration: Duration::ZERO,
            terminated_at: None,
            has_output: false,
            stdout_bytes: 0,
            stdout_sha256: None,
            stderr_bytes: 0,
            stderr_tail: String::new(),
            leaked: 0,
            error: Some(error),
            slurm_job_id: None,
        }
    }
}

/// The outcome of one task's (last) attempt.
#[derive(Debug, Clone)]
pub struct TaskOutcome {
    /// The task as planned.
    pub task: Task,
    /// How it ended.
    pub status: TaskStatus,
    /// The direct child's exit code.
    pub exit_code: Option<i32>,
    /// The signal that ended the direct child.
    pub signal: Option<i32>,
    /// This attempt's number, from 1 (counting attempts of earlier, resumed runs).
    pub attempt: u32,
    /// Attempts made in this run, this one included (what the retry limit counts).
    pub tries: u32,
    /// When the attempt started.
    pub started_at: SystemTime,
    /// When it ended.
    pub finished_at: SystemTime,
    /// How long it ran.
    pub duration: Duration,
    /// When poolrun sent SIGTERM because the attempt ran out of time.
    pub terminated_at: Option<SystemTime>,
    /// Whether the output files exist (not for a task whose files could not be created).
    pub has_output: bool,
    /// Bytes written to stdout.
    pub stdout_bytes: u64,
    /// Hex SHA-256 of stdout; `None` when the attempt never ran.
    pub stdout_sha256: Option<String>,
    /// Bytes written to stderr.
    pub stderr_bytes: u64,
    /// The last 4 KiB of stderr, lossily decoded.
    pub stderr_tail: String,
    /// Processes the task left running (in its group, or escaped with `setsid`), killed after
    /// it exited.
    pub leaked: u32,
    /// Why it did not succeed, for people: the spawn error, the timeout, the signal.
    pub error: Option<String>,
    /// The Slurm array element that ran it, `<array job id>_<index>` (Slurm backend only).
    pub slurm_job_id: Option<String>,
}
