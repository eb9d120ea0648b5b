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
